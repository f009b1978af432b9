/**
 * Simulated CloudWatch: metrics (PutMetricData, GetMetricData, GetMetricStatistics, ListMetrics),
 * metric alarms evaluated on the cloud clock every period (PutMetricAlarm, DescribeAlarms,
 * DeleteAlarms, SetAlarmState, DescribeAlarmHistory, Enable/DisableAlarmActions), and the
 * in-process `putDatapoint` the ALB feeds.
 *
 * Not simulated: composite alarms, anomaly-detection alarms (ThresholdMetricId is accepted, not
 * evaluated), dashboards, metric streams, insight rules; metric math covers arithmetic, FILL, ABS,
 * MAX/MIN/SUM/AVG only. Alarms evaluate at each period boundary (`monitoring.evaluationDelayMs`,
 * default 0, shifts the tick); SNS alarm actions publish through the simulated SNS when present.
 *
 * Wire: the current JS SDK speaks awsJson 1.0 (`X-Amz-Target: GraniteServiceVersion20100801.<Op>`,
 * awsQueryCompatible); older clients (AWS CLI v1, boto3 before 2024) speak awsQuery with
 * `Version=2010-08-01`. Both definitions share the actions. Errors carry the awsQuery codes
 * (`InvalidParameterValue`, `ResourceNotFound`, …): the awsQueryCompatible JSON client maps them to
 * its exception classes (`InvalidParameterValueException`, …) through the `awsQueryError` trait.
 */
import type { Cloud } from "../../cloud.ts";
import type { CloudWatchApi } from "../../contracts.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { Action, RequestContext, ServiceDefinition } from "../../protocol/types.ts";
import {
  type AlarmState,
  alarmPeriod,
  awsTime,
  COMPARISONS,
  type Comparison,
  evaluate,
  type MetricAlarm,
  type MetricDataQuery,
  queryValue,
  TREAT_MISSING,
  type TreatMissing,
} from "./alarms.ts";
import { parseExpression } from "./math.ts";
import { type Dimension, isPercentile, isStatistic, MetricStore, SIMPLE_STATS, sortDims, statistic } from "./store.ts";

export const CLOUDWATCH_XMLNS = "http://monitoring.amazonaws.com/doc/2010-08-01/";

/** History items kept per alarm (DescribeAlarmHistory). */
interface HistoryItem {
  AlarmName: string;
  AlarmType: "MetricAlarm";
  Timestamp: Date;
  HistoryItemType: "ConfigurationUpdate" | "StateUpdate" | "Action";
  HistorySummary: string;
  HistoryData: string;
}

interface AlarmRecord {
  alarm: MetricAlarm;
  tags: { Key: string; Value: string }[];
  timer?: ReturnType<Cloud["clock"]["setTimeout"]>;
}

const err = {
  invalid: (msg: string) => new AwsError("InvalidParameterValue", msg),
  combination: (msg: string) => new AwsError("InvalidParameterCombination", msg),
  missing: (name: string) => new AwsError("MissingParameter", `The parameter ${name} is required.`),
  notFound: (msg: string) => new AwsError("ResourceNotFound", msg, 404),
  token: () => new AwsError("InvalidNextToken", "The service can not decode the NextToken."),
};

/** The CloudWatch backend: metric store, alarms and their timers. */
export class CloudWatchBackend implements CloudWatchApi {
  readonly definition: ServiceDefinition;
  /** The awsQuery definition for older clients (registered on the router beside the JSON one). */
  readonly queryDefinition: ServiceDefinition;
  readonly store = new MetricStore();
  private readonly alarms = new Map<string, AlarmRecord>();
  private readonly history: HistoryItem[] = [];

  constructor(private readonly cloud: Cloud) {
    const actions = wrapErrors(this.actions());
    this.definition = {
      signingName: "monitoring",
      protocol: "json",
      jsonVersion: "1.0",
      targetPrefix: "GraniteServiceVersion20100801",
      actions,
    };
    this.queryDefinition = {
      signingName: "monitoring",
      protocol: "query",
      version: "2010-08-01",
      xmlns: CLOUDWATCH_XMLNS,
      actions,
    };
  }

  putDatapoint(p: {
    namespace: string;
    metricName: string;
    dimensions: Record<string, string>;
    value: number;
    unit?: string;
    timestamp?: number;
  }): void {
    const dims = Object.entries(p.dimensions).map(([Name, Value]) => ({ Name, Value }));
    this.store.put(p.namespace, p.metricName, dims, p.timestamp ?? this.cloud.clock.now(), { value: p.value }, p.unit);
  }

  /** Current state of an alarm (tests, other services). */
  alarmState(name: string): AlarmState | undefined {
    return this.alarms.get(name)?.alarm.StateValue;
  }

  stop(): void {
    for (const r of this.alarms.values()) this.cloud.clock.clearTimeout(r.timer);
  }

  snapshot(): unknown {
    return {
      alarms: [...this.alarms.values()].map(({ alarm: a }) => ({
        name: a.AlarmName,
        state: a.StateValue,
        reason: a.StateReason,
        since: a.StateUpdatedTimestamp.toISOString(),
      })),
      metrics: this.store.all().length,
    };
  }

  private now(): number {
    return this.cloud.clock.now();
  }

  private arn(name: string): string {
    return `arn:aws:cloudwatch:${this.cloud.region}:${this.cloud.accountId}:alarm:${name}`;
  }

  /** Evaluates at every period boundary on the cloud clock. */
  private schedule(r: AlarmRecord): void {
    this.cloud.clock.clearTimeout(r.timer);
    const p = alarmPeriod(r.alarm) * 1000;
    const delay = this.cloud.setting("monitoring.evaluationDelayMs", 0);
    const now = this.now();
    const next = Math.floor((now - delay) / p) * p + p + delay;
    r.timer = this.cloud.clock.setTimeout(() => {
      if (this.alarms.get(r.alarm.AlarmName) !== r) return;
      this.evaluateNow(r);
      this.schedule(r);
    }, next - now);
  }

  /** Evaluates an alarm now, outside its schedule (tests, operators). */
  evaluateAlarm(name: string): AlarmState | undefined {
    const r = this.alarms.get(name);
    if (r) this.evaluateNow(r);
    return r?.alarm.StateValue;
  }

  private evaluateNow(r: AlarmRecord): void {
    const e = evaluate(this.store, r.alarm, this.now());
    this.transition(r, e.state, e.reason, e.reasonData);
  }

  private transition(r: AlarmRecord, state: AlarmState, reason: string, reasonData?: string): void {
    const a = r.alarm;
    const prev = {
      value: a.StateValue,
      reason: a.StateReason,
      reasonData: a.StateReasonData,
      timestamp: a.StateUpdatedTimestamp,
    };
    if (prev.value === state) return;
    const at = this.cloud.clock.date();
    a.StateValue = state;
    a.StateReason = reason;
    a.StateReasonData = reasonData;
    a.StateUpdatedTimestamp = at;
    a.StateTransitionedTimestamp = at;
    this.history.push({
      AlarmName: a.AlarmName,
      AlarmType: "MetricAlarm",
      Timestamp: at,
      HistoryItemType: "StateUpdate",
      HistorySummary: `Alarm updated from ${prev.value} to ${state}`,
      HistoryData: JSON.stringify({
        version: "1.0",
        oldState: { stateValue: prev.value, stateReason: prev.reason },
        newState: { stateValue: state, stateReason: reason, ...(reasonData ? { stateReasonData: JSON.parse(reasonData) } : {}) },
      }),
    });
    this.cloud.emit({
      source: "aws.cloudwatch",
      detailType: "CloudWatch Alarm State Change",
      resources: [a.AlarmArn],
      detail: {
        alarmName: a.AlarmName,
        state: { value: state, reason, ...(reasonData ? { reasonData } : {}), timestamp: awsTime(at.getTime()) },
        previousState: {
          value: prev.value,
          reason: prev.reason,
          ...(prev.reasonData ? { reasonData: prev.reasonData } : {}),
          timestamp: awsTime(prev.timestamp.getTime()),
        },
        configuration: eventConfiguration(a),
      },
    });
    if (a.ActionsEnabled) this.runActions(a, prev.value, at);
  }

  /** Alarm actions: SNS topics get the JSON message CloudWatch publishes (other action types are recorded only). */
  private runActions(a: MetricAlarm, old: AlarmState, at: Date): void {
    const targets = a.StateValue === "ALARM" ? a.AlarmActions : a.StateValue === "OK" ? a.OKActions : a.InsufficientDataActions;
    for (const target of targets) {
      const summary = `Successfully executed action ${target}`;
      this.history.push({
        AlarmName: a.AlarmName,
        AlarmType: "MetricAlarm",
        Timestamp: at,
        HistoryItemType: "Action",
        HistorySummary: summary,
        HistoryData: JSON.stringify({ actionState: "Succeeded", notificationResource: target }),
      });
      if (!target.startsWith("arn:aws:sns:") || !this.cloud.router.service("sns")) continue;
      const message = JSON.stringify({
        AlarmName: a.AlarmName,
        AlarmDescription: a.AlarmDescription ?? null,
        AWSAccountId: this.cloud.accountId,
        NewStateValue: a.StateValue,
        NewStateReason: a.StateReason,
        StateChangeTime: at.toISOString().replace("Z", "+0000"),
        Region: this.cloud.region,
        AlarmArn: a.AlarmArn,
        OldStateValue: old,
        Trigger: {
          MetricName: a.MetricName,
          Namespace: a.Namespace,
          Statistic: a.Statistic?.toUpperCase(),
          Period: a.Period,
          EvaluationPeriods: a.EvaluationPeriods,
          ComparisonOperator: a.ComparisonOperator,
          Threshold: a.Threshold,
          TreatMissingData: a.TreatMissingData,
          Dimensions: a.Dimensions.map((d) => ({ name: d.Name, value: d.Value })),
        },
      });
      this.cloud.router
        .invoke("sns", "Publish", {
          TopicArn: target,
          Subject: `${a.StateValue}: "${a.AlarmName}" in ${this.cloud.region}`.slice(0, 100),
          Message: message,
        })
        .catch(() => undefined);
    }
  }

  private actions(): Record<string, Action> {
    return {
      PutMetricData: (input, ctx) => this.putMetricData(new Params(input, ctx)),
      GetMetricData: (input, ctx) => this.getMetricData(new Params(input, ctx)),
      GetMetricStatistics: (input, ctx) => this.getMetricStatistics(new Params(input, ctx)),
      ListMetrics: (input, ctx) => this.listMetrics(new Params(input, ctx)),
      PutMetricAlarm: (input, ctx) => this.putMetricAlarm(new Params(input, ctx)),
      DescribeAlarms: (input, ctx) => this.describeAlarms(new Params(input, ctx)),
      DeleteAlarms: (input, ctx) => this.deleteAlarms(new Params(input, ctx)),
      SetAlarmState: (input, ctx) => this.setAlarmState(new Params(input, ctx)),
      DescribeAlarmHistory: (input, ctx) => this.describeAlarmHistory(new Params(input, ctx)),
      EnableAlarmActions: (input, ctx) => this.setActionsEnabled(new Params(input, ctx), true),
      DisableAlarmActions: (input, ctx) => this.setActionsEnabled(new Params(input, ctx), false),
      ListTagsForResource: (input, ctx) => {
        const arn = new Params(input, ctx).str("ResourceARN", { required: true });
        const r = [...this.alarms.values()].find((x) => x.alarm.AlarmArn === arn);
        if (!r) throw err.notFound(`Alarm ${arn} not found`);
        return { Tags: r.tags };
      },
    };
  }

  private putMetricData(p: Params): unknown {
    const ns = p.str("Namespace", { required: true });
    // AWS reserves the AWS/ namespaces for its own services.
    if (ns.startsWith("AWS/")) throw err.invalid(`The value ${ns} for parameter Namespace is invalid.`);
    const data = p.list("MetricData", { required: true });
    if (data.length > 1000) throw err.invalid("The collection MetricData must not have a size greater than 1000.");
    const now = this.now();
    data.forEach((raw, i) => {
      const d = new Params(raw, "json");
      const field = `MetricData.member.${i + 1}`;
      const name = d.str("MetricName");
      if (!name) throw err.missing(`${field}.MetricName`);
      const dims = dimensions(d.list("Dimensions"));
      const at = d.has("Timestamp") ? toMs(d.raw.Timestamp, `${field}.Timestamp`) : now;
      const value = d.num("Value");
      const values = d.list("Values").map(Number);
      const counts = d.list("Counts").map(Number);
      const sv = d.obj("StatisticValues");
      if (values.length && counts.length && values.length !== counts.length)
        throw err.invalid(`The parameters ${field}.Values and ${field}.Counts must be of the same size.`);
      if ([value, ...values].some((v) => v !== undefined && !Number.isFinite(v)))
        throw err.invalid(`The value for parameter ${field}.Value is invalid.`);
      if (value === undefined && values.length === 0 && !sv) throw err.missing(`${field}.Value`);
      const set = sv
        ? {
            count: sv.num("SampleCount", { required: true })!,
            sum: sv.num("Sum", { required: true })!,
            min: sv.num("Minimum", { required: true })!,
            max: sv.num("Maximum", { required: true })!,
          }
        : undefined;
      this.store.put(ns, name, dims, at, { value, values, counts, set }, d.str("Unit"));
    });
    return {};
  }

  private getMetricData(p: Params): unknown {
    const queries = p
      .list("MetricDataQueries", { required: true })
      .map((q, i) => metricDataQuery(q, `MetricDataQueries.member.${i + 1}`));
    if (queries.length > 500) throw err.invalid("The collection MetricDataQueries must not have a size greater than 500.");
    const start = toMs(p.raw.StartTime, "StartTime", true);
    const end = toMs(p.raw.EndTime, "EndTime", true);
    if (end <= start) throw err.invalid("The parameter StartTime must be less than the parameter EndTime.");
    const descending = (p.str("ScanBy") ?? "TimestampDescending") === "TimestampDescending";
    const max = p.int("MaxDatapoints", { min: 1 }) ?? 100_800;
    const results = queries
      .filter((q) => q.ReturnData !== false)
      .map((q) => {
        const period = q.Period ?? q.MetricStat?.Period ?? inferPeriod(queries, q) ?? 60;
        const p0 = period * 1000;
        const points: { t: number; v: number }[] = [];
        for (let t = Math.floor(start / p0) * p0; t < end; t += p0) {
          const v = queryValue(this.store, queries, q.Id, t, period);
          if (v !== undefined) points.push({ t, v });
        }
        if (descending) points.reverse();
        const kept = points.slice(0, max);
        return {
          Id: q.Id,
          Label: q.Label ?? q.MetricStat?.Metric.MetricName ?? q.Id,
          Timestamps: kept.map((x) => new Date(x.t)),
          Values: kept.map((x) => x.v),
          StatusCode: kept.length < points.length ? "PartialData" : "Complete",
        };
      });
    return { MetricDataResults: results, Messages: [] };
  }

  private getMetricStatistics(p: Params): unknown {
    const ns = p.str("Namespace", { required: true });
    const name = p.str("MetricName", { required: true });
    const dims = dimensions(p.list("Dimensions"));
    const start = toMs(p.raw.StartTime, "StartTime", true);
    const end = toMs(p.raw.EndTime, "EndTime", true);
    const period = p.int("Period", { required: true, min: 1 });
    checkPeriod(period, "Period");
    const stats = p.list<string>("Statistics");
    const ext = p.list<string>("ExtendedStatistics");
    if (!stats.length && !ext.length) throw err.combination("Must specify either Statistics or ExtendedStatistics");
    for (const s of stats)
      if (!(SIMPLE_STATS as readonly string[]).includes(s))
        throw err.invalid(`The parameter Statistics contains an invalid value: ${s}`);
    for (const s of ext)
      if (!isPercentile(s)) throw err.invalid(`The parameter ExtendedStatistics contains an invalid value: ${s}`);
    if (end <= start) throw err.invalid("The parameter StartTime must be less than the parameter EndTime.");
    const n = Math.ceil((end - start) / (period * 1000));
    if (n > 1440)
      throw err.combination(
        `You have requested up to ${n} datapoints, which exceeds the limit of 1440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.`,
      );
    const unit = p.str("Unit");
    const series = this.store.series(this.store.get(ns, name, dims), start, end, period, unit);
    const full: Record<string, "SampleCount" | "Average" | "Sum" | "Minimum" | "Maximum"> = {
      SampleCount: "SampleCount",
      Average: "Average",
      Sum: "Sum",
      Minimum: "Minimum",
      Maximum: "Maximum",
    };
    return {
      Label: name,
      Datapoints: series.map(({ start: t, agg }) => {
        const out: Record<string, unknown> = { Timestamp: new Date(t) };
        for (const s of stats) out[full[s]!] = statistic(agg, s);
        if (ext.length) out.ExtendedStatistics = Object.fromEntries(ext.map((s) => [s, statistic(agg, s) ?? 0]));
        out.Unit = unit ?? agg.unit ?? "None";
        return out;
      }),
    };
  }

  private listMetrics(p: Params): unknown {
    const ns = p.str("Namespace");
    const name = p.str("MetricName");
    const filters = p
      .list("Dimensions")
      .map((d) => ({ Name: String(d.Name ?? ""), Value: d.Value === undefined ? undefined : String(d.Value) }));
    const recently = p.str("RecentlyActive");
    if (recently && recently !== "PT3H") throw err.invalid(`The value ${recently} for parameter RecentlyActive is invalid.`);
    const cutoff = this.now() - 3 * 3600_000;
    const all = this.store
      .all()
      .filter((m) => (!ns || m.namespace === ns) && (!name || m.name === name))
      .filter((m) =>
        filters.every((f) => m.dimensions.some((d) => d.Name === f.Name && (f.Value === undefined || d.Value === f.Value))),
      )
      .filter((m) => !recently || m.lastPut >= cutoff)
      .map((m) => ({ Namespace: m.namespace, MetricName: m.name, Dimensions: m.dimensions }));
    return paginate(all, p.str("NextToken"), 500, "Metrics");
  }

  private putMetricAlarm(p: Params): unknown {
    const name = p.str("AlarmName", { required: true, max: 255 });
    const metrics = p.list("Metrics").map((q, i) => metricDataQuery(q, `Metrics.member.${i + 1}`));
    const statistic = p.str("Statistic");
    const extended = p.str("ExtendedStatistic");
    const metricName = p.str("MetricName");
    const namespace = p.str("Namespace");
    const op = p.str("ComparisonOperator", { required: true });
    if (!(op in COMPARISONS)) throw err.invalid(`The value ${op} for parameter ComparisonOperator is invalid.`);
    const evaluationPeriods = p.int("EvaluationPeriods", { required: true });
    if (evaluationPeriods < 1) throw err.invalid("The value for parameter EvaluationPeriods must be at least 1.");
    const datapointsToAlarm = p.int("DatapointsToAlarm");
    if (datapointsToAlarm !== undefined && (datapointsToAlarm < 1 || datapointsToAlarm > evaluationPeriods)) {
      throw err.invalid("DatapointsToAlarm must be between 1 and EvaluationPeriods.");
    }
    const threshold = p.num("Threshold");
    if (threshold === undefined && !p.has("ThresholdMetricId")) throw err.missing("Threshold");
    const treat = p.str("TreatMissingData");
    if (treat !== undefined && !(TREAT_MISSING as readonly string[]).includes(treat))
      throw err.invalid(`The value ${treat} for parameter TreatMissingData is invalid.`);
    const period = p.int("Period");
    if (metrics.length) {
      if (metricName || namespace || statistic || extended || p.list("Dimensions").length || period !== undefined) {
        throw err.combination(
          "The parameters MetricName, Namespace, Statistic, ExtendedStatistic, Dimensions and Period cannot be used with Metrics.",
        );
      }
      const returned = metrics.filter((m) => m.ReturnData !== false);
      if (returned.length !== 1) throw err.invalid("Exactly one element of the metrics list should return data.");
      for (const m of metrics) {
        if (m.Expression)
          for (const id of parseExpression(m.Expression).ids)
            if (!metrics.some((x) => x.Id === id)) throw err.invalid(`Unknown metric id ${id} in expression ${m.Expression}.`);
      }
    } else {
      if (!metricName) throw err.missing("MetricName");
      if (!namespace) throw err.missing("Namespace");
      if (!statistic && !extended) throw err.combination("Exactly one of Statistic or ExtendedStatistic must be specified.");
      if (statistic && extended) throw err.combination("Exactly one of Statistic or ExtendedStatistic must be specified.");
      if (statistic && !(SIMPLE_STATS as readonly string[]).includes(statistic))
        throw err.invalid(`The value ${statistic} for parameter Statistic is invalid.`);
      if (extended && !isPercentile(extended))
        throw err.invalid(`The value ${extended} for parameter ExtendedStatistic is invalid.`);
      if (period === undefined) throw err.missing("Period");
      checkPeriod(period, "Period");
    }
    const now = this.cloud.clock.date();
    const existing = this.alarms.get(name);
    const alarm: MetricAlarm = {
      AlarmName: name,
      AlarmArn: this.arn(name),
      AlarmDescription: p.str("AlarmDescription"),
      AlarmConfigurationUpdatedTimestamp: now,
      ActionsEnabled: p.bool("ActionsEnabled", true) ?? true,
      OKActions: p.list<string>("OKActions"),
      AlarmActions: p.list<string>("AlarmActions"),
      InsufficientDataActions: p.list<string>("InsufficientDataActions"),
      // An update keeps the current state (AWS: "its state is left unchanged").
      StateValue: existing?.alarm.StateValue ?? "INSUFFICIENT_DATA",
      StateReason: existing?.alarm.StateReason ?? "Unchecked: Initial alarm creation",
      StateReasonData: existing?.alarm.StateReasonData,
      StateUpdatedTimestamp: existing?.alarm.StateUpdatedTimestamp ?? now,
      StateTransitionedTimestamp: existing?.alarm.StateTransitionedTimestamp ?? now,
      MetricName: metricName,
      Namespace: namespace,
      Statistic: statistic,
      ExtendedStatistic: extended,
      Dimensions: sortDims(dimensions(p.list("Dimensions"))),
      Period: period,
      Unit: p.str("Unit"),
      EvaluationPeriods: evaluationPeriods,
      DatapointsToAlarm: datapointsToAlarm,
      Threshold: threshold,
      ComparisonOperator: op as Comparison,
      TreatMissingData: treat as TreatMissing | undefined,
      EvaluateLowSampleCountPercentile: p.str("EvaluateLowSampleCountPercentile"),
      Metrics: metrics.length ? metrics : undefined,
    };
    const record: AlarmRecord = { alarm, tags: existing?.tags ?? p.tags("Tags") };
    if (existing) this.cloud.clock.clearTimeout(existing.timer);
    this.alarms.set(name, record);
    this.history.push({
      AlarmName: name,
      AlarmType: "MetricAlarm",
      Timestamp: now,
      HistoryItemType: "ConfigurationUpdate",
      HistorySummary: existing ? `Alarm "${name}" updated` : `Alarm "${name}" created`,
      HistoryData: JSON.stringify({ version: "1.0", type: existing ? "Update" : "Create" }),
    });
    this.schedule(record);
    return {};
  }

  private describeAlarms(p: Params): unknown {
    const names = p.list<string>("AlarmNames");
    const prefix = p.str("AlarmNamePrefix");
    if (names.length && prefix) throw err.combination("AlarmNames and AlarmNamePrefix cannot be specified together.");
    if (names.length > 100) throw err.invalid("The collection AlarmNames must not have a size greater than 100.");
    const state = p.str("StateValue");
    if (state && !["OK", "ALARM", "INSUFFICIENT_DATA"].includes(state))
      throw err.invalid(`The value ${state} for parameter StateValue is invalid.`);
    const actionPrefix = p.str("ActionPrefix");
    const types = p.list<string>("AlarmTypes");
    const max = p.int("MaxRecords", { min: 1, max: 100 }) ?? 50;
    const metricAlarms = [...this.alarms.values()]
      .map((r) => r.alarm)
      .filter((a) => (!names.length || names.includes(a.AlarmName)) && (!prefix || a.AlarmName.startsWith(prefix)))
      .filter((a) => !state || a.StateValue === state)
      .filter(
        (a) =>
          !actionPrefix ||
          [...a.AlarmActions, ...a.OKActions, ...a.InsufficientDataActions].some((x) => x.startsWith(actionPrefix)),
      )
      .sort((a, b) => (a.AlarmName < b.AlarmName ? -1 : 1));
    // Without AlarmTypes only metric alarms are returned; composite alarms are not simulated.
    const wanted = !types.length || types.includes("MetricAlarm") ? metricAlarms : [];
    const page = paginate(wanted, p.str("NextToken"), max, "MetricAlarms");
    return { ...page, CompositeAlarms: [] };
  }

  private deleteAlarms(p: Params): unknown {
    const names = p.list<string>("AlarmNames", { required: true });
    if (names.length > 100) throw err.invalid("The collection AlarmNames must not have a size greater than 100.");
    // Either all are deleted or none (AWS: "no alarms are deleted" on any error).
    const missing = names.filter((n) => !this.alarms.has(n));
    if (missing.length)
      throw err.notFound(`${missing.length === 1 ? "1 alarm" : `${missing.length} alarms`} not found: ${missing.join(", ")}`);
    for (const n of names) {
      this.cloud.clock.clearTimeout(this.alarms.get(n)?.timer);
      this.alarms.delete(n);
    }
    return {};
  }

  private setAlarmState(p: Params): unknown {
    const name = p.str("AlarmName", { required: true });
    const state = p.str("StateValue", { required: true });
    const reason = p.str("StateReason", { required: true, max: 1023 });
    const data = p.str("StateReasonData");
    if (!["OK", "ALARM", "INSUFFICIENT_DATA"].includes(state))
      throw err.invalid(`The value ${state} for parameter StateValue is invalid.`);
    if (data !== undefined) {
      try {
        JSON.parse(data);
      } catch {
        throw new AwsError("InvalidFormat", "StateReasonData is not valid JSON.");
      }
    }
    const r = this.alarms.get(name);
    if (!r) throw err.notFound(`Alarm ${name} not found`);
    // Temporary: the next evaluation (at the next period boundary) sets the real state again.
    this.transition(r, state as AlarmState, reason, data);
    return {};
  }

  private describeAlarmHistory(p: Params): unknown {
    const name = p.str("AlarmName");
    const type = p.str("HistoryItemType");
    const start = p.has("StartDate") ? toMs(p.raw.StartDate, "StartDate") : Number.NEGATIVE_INFINITY;
    const end = p.has("EndDate") ? toMs(p.raw.EndDate, "EndDate") : Number.POSITIVE_INFINITY;
    const asc = p.str("ScanBy") === "TimestampAscending";
    const items = this.history
      .filter((h) => (!name || h.AlarmName === name) && (!type || h.HistoryItemType === type))
      .filter((h) => h.Timestamp.getTime() >= start && h.Timestamp.getTime() <= end);
    const ordered = asc ? items : [...items].reverse();
    return paginate(ordered, p.str("NextToken"), p.int("MaxRecords", { min: 1, max: 100 }) ?? 100, "AlarmHistoryItems");
  }

  private setActionsEnabled(p: Params, enabled: boolean): unknown {
    for (const n of p.list<string>("AlarmNames", { required: true })) {
      const r = this.alarms.get(n);
      if (r) r.alarm.ActionsEnabled = enabled;
    }
    return {};
  }
}

/**
 * Registers CloudWatch as "monitoring": the awsJson 1.0 definition (current SDKs) and the
 * awsQuery one (older clients; routed by `Version=2010-08-01`).
 */
export function registerCloudWatch(cloud: Cloud): CloudWatchBackend {
  const backend = new CloudWatchBackend(cloud);
  // Query first: the router keeps one definition per signing name, and the JSON one must win it
  // (in-process `router.invoke("monitoring", …)` then speaks the current SDK's shapes).
  cloud.router.register(backend.queryDefinition);
  cloud.register("monitoring", backend);
  return backend;
}

function wrapErrors(actions: Record<string, Action>): Record<string, Action> {
  const out: Record<string, Action> = {};
  for (const [name, fn] of Object.entries(actions)) {
    out[name] = async (input: unknown, ctx: RequestContext) => {
      try {
        return await fn(input, ctx);
      } catch (e) {
        // Params speaks the generic protocol errors; CloudWatch's own codes are these.
        if (e instanceof AwsError && (e.code === "ValidationException" || e.code === "ValidationError")) {
          const m = /Value null at '([^']+)'|^(\w+) is required/.exec(e.message);
          if (m) throw err.missing(upperFirst(m[1] ?? m[2] ?? ""));
          throw err.invalid(e.message);
        }
        throw e;
      }
    };
  }
  return out;
}

function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Timestamps arrive as epoch seconds (JSON) or ISO-8601 strings (query). */
function toMs(v: unknown, name: string, required = false): number {
  if (v === undefined || v === null || v === "") {
    if (required) throw err.missing(name);
    return Number.NaN;
  }
  if (typeof v === "number") return v * 1000;
  if (typeof v === "string" && /^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(String(v));
  if (Number.isNaN(t)) throw err.invalid(`The parameter ${name} must be a valid timestamp.`);
  return t;
}

/** CloudWatch periods: 1, 5, 10, 30 or any multiple of 60 seconds. */
function checkPeriod(period: number, name: string): void {
  if (!([1, 5, 10, 30].includes(period) || (period > 0 && period % 60 === 0))) {
    throw err.invalid(`The parameter ${name} must be 1, 5, 10, 30, or a multiple of 60.`);
  }
}

function dimensions(raw: unknown[]): Dimension[] {
  return raw.map((d, i) => {
    const x = d as { Name?: unknown; Value?: unknown };
    if (typeof x?.Name !== "string" || x.Value === undefined)
      throw err.invalid(`The parameter Dimensions.member.${i + 1} needs a Name and a Value.`);
    return { Name: x.Name, Value: String(x.Value) };
  });
}

function metricDataQuery(raw: unknown, field: string): MetricDataQuery {
  const q = new Params(raw, "json");
  const id = q.str("Id");
  if (!id) throw err.missing(`${field}.Id`);
  if (!/^[a-z][a-zA-Z0-9_]*$/.test(id))
    throw err.invalid(`The value ${id} for parameter ${field}.Id is invalid: it must start with a lowercase letter.`);
  const expr = q.str("Expression");
  const ms = q.obj("MetricStat");
  if (!!expr === !!ms) throw err.invalid(`Exactly one of Expression and MetricStat must be set in ${field}.`);
  let metricStat: MetricDataQuery["MetricStat"];
  if (ms) {
    const metric = ms.obj("Metric");
    if (!metric) throw err.missing(`${field}.MetricStat.Metric`);
    const stat = ms.str("Stat");
    if (!stat) throw err.missing(`${field}.MetricStat.Stat`);
    if (!isStatistic(stat)) throw err.invalid(`The value ${stat} for parameter ${field}.MetricStat.Stat is invalid.`);
    const period = ms.int("Period");
    if (period === undefined) throw err.missing(`${field}.MetricStat.Period`);
    checkPeriod(period, `${field}.MetricStat.Period`);
    metricStat = {
      Metric: {
        Namespace: metric.str("Namespace") ?? "",
        MetricName: metric.str("MetricName") ?? "",
        Dimensions: sortDims(dimensions(metric.list("Dimensions"))),
      },
      Period: period,
      Stat: stat,
      Unit: ms.str("Unit"),
    };
  } else {
    try {
      parseExpression(expr!);
    } catch (e) {
      throw err.invalid(`${field}.Expression: ${(e as Error).message}`);
    }
  }
  return {
    Id: id,
    Expression: expr,
    MetricStat: metricStat,
    Label: q.str("Label"),
    ReturnData: q.bool("ReturnData", true),
    Period: q.int("Period"),
  };
}

/** An expression's period: the smallest period of the metrics it reads. */
function inferPeriod(queries: MetricDataQuery[], q: MetricDataQuery): number | undefined {
  if (!q.Expression) return undefined;
  const ps = parseExpression(q.Expression)
    .ids.map((id) => queries.find((x) => x.Id === id))
    .map((x) => x?.Period ?? x?.MetricStat?.Period ?? (x ? inferPeriod(queries, x) : undefined))
    .filter((x): x is number => !!x);
  return ps.length ? Math.min(...ps) : undefined;
}

/** Opaque NextToken pagination over an already ordered list. */
function paginate<T>(items: T[], token: string | undefined, size: number, key: string): Record<string, unknown> {
  let offset = 0;
  if (token) {
    const m = /^cw1:(\d+)$/.exec(Buffer.from(token, "base64").toString("utf8"));
    if (!m) throw err.token();
    offset = Number(m[1]);
  }
  const page = items.slice(offset, offset + size);
  const next = offset + size < items.length ? Buffer.from(`cw1:${offset + size}`).toString("base64") : undefined;
  return { [key]: page, ...(next ? { NextToken: next } : {}) };
}

/** The `configuration` block of the alarm state-change event. */
function eventConfiguration(a: MetricAlarm): Record<string, unknown> {
  const metrics = a.Metrics?.length
    ? a.Metrics.map((m) => ({
        id: m.Id,
        ...(m.Expression ? { expression: m.Expression } : {}),
        ...(m.MetricStat
          ? {
              metricStat: {
                metric: {
                  namespace: m.MetricStat.Metric.Namespace,
                  name: m.MetricStat.Metric.MetricName,
                  dimensions: Object.fromEntries(m.MetricStat.Metric.Dimensions.map((d) => [d.Name, d.Value])),
                },
                period: m.MetricStat.Period,
                stat: m.MetricStat.Stat,
              },
            }
          : {}),
        returnData: m.ReturnData !== false,
      }))
    : [
        {
          id: "m1",
          metricStat: {
            metric: {
              namespace: a.Namespace,
              name: a.MetricName,
              dimensions: Object.fromEntries(a.Dimensions.map((d) => [d.Name, d.Value])),
            },
            period: a.Period,
            stat: a.Statistic ?? a.ExtendedStatistic,
          },
          returnData: true,
        },
      ];
  return { ...(a.AlarmDescription ? { description: a.AlarmDescription } : {}), metrics };
}
