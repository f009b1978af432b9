/**
 * Metric alarms: their stored shape (the DescribeAlarms `MetricAlarm` members) and the evaluation of
 * one alarm at one instant, with the reasons CloudWatch writes.
 */
import { parseExpression } from "./math.ts";
import { type Dimension, type MetricStore, statistic } from "./store.ts";

export type AlarmState = "OK" | "ALARM" | "INSUFFICIENT_DATA";

export const COMPARISONS = {
  GreaterThanOrEqualToThreshold: { text: "greater than or equal to", test: (v: number, t: number) => v >= t },
  GreaterThanThreshold: { text: "greater than", test: (v: number, t: number) => v > t },
  LessThanThreshold: { text: "less than", test: (v: number, t: number) => v < t },
  LessThanOrEqualToThreshold: { text: "less than or equal to", test: (v: number, t: number) => v <= t },
} as const;
export type Comparison = keyof typeof COMPARISONS;

export const TREAT_MISSING = ["breaching", "notBreaching", "ignore", "missing"] as const;
export type TreatMissing = (typeof TREAT_MISSING)[number];

/** A `MetricDataQuery` as PutMetricAlarm and GetMetricData take it. */
export interface MetricDataQuery {
  Id: string;
  Expression?: string;
  MetricStat?: {
    Metric: { Namespace: string; MetricName: string; Dimensions: Dimension[] };
    Period: number;
    Stat: string;
    Unit?: string;
  };
  Label?: string;
  ReturnData?: boolean;
  Period?: number;
  AccountId?: string;
}

/** Stored alarm; wire members are the DescribeAlarms `MetricAlarm` names. */
export interface MetricAlarm {
  AlarmName: string;
  AlarmArn: string;
  AlarmDescription?: string;
  AlarmConfigurationUpdatedTimestamp: Date;
  ActionsEnabled: boolean;
  OKActions: string[];
  AlarmActions: string[];
  InsufficientDataActions: string[];
  StateValue: AlarmState;
  StateReason: string;
  StateReasonData?: string;
  StateUpdatedTimestamp: Date;
  StateTransitionedTimestamp: Date;
  MetricName?: string;
  Namespace?: string;
  Statistic?: string;
  ExtendedStatistic?: string;
  Dimensions: Dimension[];
  Period?: number;
  Unit?: string;
  EvaluationPeriods: number;
  DatapointsToAlarm?: number;
  Threshold?: number;
  ComparisonOperator: Comparison;
  TreatMissingData?: TreatMissing;
  EvaluateLowSampleCountPercentile?: string;
  Metrics?: MetricDataQuery[];
}

/** The outcome of one evaluation. */
export interface Evaluation {
  state: AlarmState;
  reason: string;
  reasonData: string;
  /** Newest first; undefined where the period had no data. */
  datapoints: { start: number; value: number | undefined }[];
}

/** The evaluation period of an alarm in seconds (metric-math alarms: the returned query's period). */
export function alarmPeriod(a: MetricAlarm): number {
  if (a.Period) return a.Period;
  const ret = a.Metrics?.find((m) => m.ReturnData !== false) ?? a.Metrics?.[0];
  const periods = (a.Metrics ?? []).map((m) => m.Period ?? m.MetricStat?.Period).filter((p): p is number => !!p);
  return ret?.Period ?? ret?.MetricStat?.Period ?? (periods.length ? Math.min(...periods) : 60);
}

/** Value of one query (and what it depends on) over the period starting at `start`. */
export function queryValue(
  store: MetricStore,
  queries: MetricDataQuery[],
  id: string,
  start: number,
  period: number,
  seen = new Set<string>(),
): number | undefined {
  const q = queries.find((x) => x.Id === id);
  if (!q || seen.has(id)) return undefined;
  if (q.MetricStat) {
    const m = q.MetricStat.Metric;
    const agg = store.window(store.get(m.Namespace, m.MetricName, m.Dimensions ?? []), start, period);
    return agg ? statistic(agg, q.MetricStat.Stat) : undefined;
  }
  if (!q.Expression) return undefined;
  const next = new Set(seen).add(id);
  return parseExpression(q.Expression).evaluate((ref) => queryValue(store, queries, ref, start, period, next));
}

/** Value of an alarm's metric (or returned expression) for the period starting at `start`. */
export function alarmValue(store: MetricStore, a: MetricAlarm, start: number): number | undefined {
  const period = alarmPeriod(a);
  if (a.Metrics?.length) {
    const ret = a.Metrics.find((m) => m.ReturnData !== false) ?? a.Metrics[0]!;
    return queryValue(store, a.Metrics, ret.Id, start, period);
  }
  const agg = store.window(store.get(a.Namespace ?? "", a.MetricName ?? "", a.Dimensions), start, period);
  return agg ? statistic(agg, a.Statistic ?? a.ExtendedStatistic ?? "Average") : undefined;
}

/**
 * Evaluates the `EvaluationPeriods` complete periods that end at `at` (aligned to the period):
 * ALARM when at least `DatapointsToAlarm` of them breach; missing periods follow TreatMissingData
 * (`missing`: not counted, all missing → INSUFFICIENT_DATA; `ignore`: all missing keeps the state;
 * `breaching`/`notBreaching`: counted as such).
 */
export function evaluate(store: MetricStore, a: MetricAlarm, at: number): Evaluation {
  const period = alarmPeriod(a);
  const p = period * 1000;
  const end = Math.floor(at / p) * p;
  const n = a.EvaluationPeriods;
  const m = a.DatapointsToAlarm ?? n;
  const threshold = a.Threshold ?? 0;
  const cmp = COMPARISONS[a.ComparisonOperator];
  const datapoints = Array.from({ length: n }, (_, k) => {
    const start = end - (k + 1) * p;
    return { start, value: alarmValue(store, a, start) };
  });
  const treat = a.TreatMissingData ?? "missing";
  const present = datapoints.filter((d) => d.value !== undefined) as { start: number; value: number }[];
  const missing = n - present.length;
  let breaching = present.filter((d) => cmp.test(d.value, threshold)).length;
  if (treat === "breaching") breaching += missing;
  const statName = a.Statistic ?? a.ExtendedStatistic ?? (a.Metrics?.length ? "Expression" : "Average");
  const reasonData = JSON.stringify({
    version: "1.0",
    queryDate: awsTime(at),
    startDate: awsTime(end - n * p),
    ...(a.Metrics?.length ? {} : { statistic: statName, period }),
    recentDatapoints: present.map((d) => d.value),
    threshold,
    evaluatedDatapoints: present.map((d) => ({ timestamp: awsTime(d.start), value: d.value })),
  });
  if (present.length === 0 && (treat === "missing" || treat === "ignore")) {
    return {
      state: treat === "ignore" ? a.StateValue : "INSUFFICIENT_DATA",
      reason: `Insufficient Data: ${n} datapoint${n === 1 ? " was" : "s were"} unknown.`,
      reasonData,
      datapoints,
    };
  }
  const shown = present.map((d) => `${num(d.value)} (${reasonTime(d.start)})`).join(", ");
  const plural = (k: number) => (k === 1 ? "datapoint" : "datapoints");
  if (breaching >= m) {
    return {
      state: "ALARM",
      reason: `Threshold Crossed: ${breaching} out of the last ${n} datapoints [${shown}] ${breaching === 1 && present.length <= 1 ? "was" : "were"} ${cmp.text} the threshold (${num(threshold)}) (minimum ${m} ${plural(m)} for OK -> ALARM transition).`,
      reasonData,
      datapoints,
    };
  }
  return {
    state: "OK",
    reason: `Threshold Crossed: ${n - breaching} out of the last ${n} datapoints [${shown}] ${n - breaching === 1 ? "was" : "were"} not ${cmp.text} the threshold (${num(threshold)}) (minimum ${n - m + 1} ${plural(n - m + 1)} for ALARM -> OK transition).`,
    reasonData,
    datapoints,
  };
}

/** Java's Double.toString for the usual magnitudes: `5.0`, `0.25`. */
export function num(v: number): string {
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

/** CloudWatch reason timestamps: `dd/MM/yy HH:mm:ss` in UTC. */
function reasonTime(ms: number): string {
  const d = new Date(ms);
  const p = (x: number) => String(x).padStart(2, "0");
  return `${p(d.getUTCDate())}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCFullYear() % 100)} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** CloudWatch's ISO form in reason data and events: `2026-01-05T09:00:00.000+0000`. */
export function awsTime(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "+0000");
}
