/**
 * The simulated CloudWatch through the real SDK client (awsJson 1.0, awsQueryCompatible), and
 * through the awsQuery protocol older clients speak, on the virtual clock.
 */
import {
  CloudWatchClient,
  DeleteAlarmsCommand,
  DescribeAlarmHistoryCommand,
  DescribeAlarmsCommand,
  GetMetricDataCommand,
  GetMetricStatisticsCommand,
  ListMetricsCommand,
  PutMetricAlarmCommand,
  type PutMetricAlarmCommandInput,
  PutMetricDataCommand,
  SetAlarmStateCommand,
} from "@aws-sdk/client-cloudwatch";
import { afterEach, describe, expect, it } from "vitest";
import { Cloud, type CloudEvent } from "../../../local/cloud/cloud.ts";
import { type CloudWatchBackend, registerCloudWatch } from "../../../local/cloud/services/cloudwatch/index.ts";

interface World {
  cloud: Cloud;
  cw: CloudWatchClient;
  backend: CloudWatchBackend;
  events: CloudEvent[];
}

async function world(): Promise<World> {
  const cloud = new Cloud({ seed: 5 });
  const backend = registerCloudWatch(cloud);
  await cloud.start({ port: false });
  const events: CloudEvent[] = [];
  cloud.bus.on("event", (e: CloudEvent) => events.push(e));
  return { cloud, backend, events, cw: new CloudWatchClient(cloud.clientConfig()) };
}

const DIMS = [{ Name: "Service", Value: "web" }];

/** Puts Latency datapoints (now, or at `at`). */
async function put(w: World, values: number[], at?: Date) {
  await w.cw.send(
    new PutMetricDataCommand({
      Namespace: "Kiln/Test",
      MetricData: values.map((v) => ({ MetricName: "Latency", Dimensions: DIMS, Value: v, Unit: "Milliseconds", Timestamp: at })),
    }),
  );
}

function alarm(extra: Partial<PutMetricAlarmCommandInput> = {}): PutMetricAlarmCommandInput {
  return {
    AlarmName: "latency-high",
    Namespace: "Kiln/Test",
    MetricName: "Latency",
    Dimensions: DIMS,
    Statistic: "Maximum",
    Period: 60,
    EvaluationPeriods: 1,
    Threshold: 100,
    ComparisonOperator: "GreaterThanThreshold",
    ...extra,
  };
}

describe("CloudWatch metrics", () => {
  let w: World | undefined;
  afterEach(async () => {
    await w?.cloud.stop();
    w = undefined;
  });

  it.each([
    ["Sum", 550],
    ["Average", 55],
    ["Minimum", 10],
    ["Maximum", 100],
    ["SampleCount", 10],
  ] as const)("GetMetricStatistics computes %s", async (stat, expected) => {
    w = await world();
    await put(w, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    const now = w.cloud.clock.now();
    const r = await w.cw.send(
      new GetMetricStatisticsCommand({
        Namespace: "Kiln/Test",
        MetricName: "Latency",
        Dimensions: DIMS,
        StartTime: new Date(now - 60_000),
        EndTime: new Date(now + 60_000),
        Period: 60,
        Statistics: [stat],
      }),
    );
    expect(r.Datapoints).toHaveLength(1);
    expect(r.Datapoints![0]![stat]).toBe(expected);
    expect(r.Datapoints![0]!.Unit).toBe("Milliseconds");
  });

  it("computes percentiles, statistic sets and rejects what CloudWatch rejects", async () => {
    w = await world();
    await put(
      w,
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    await w.cw.send(
      new PutMetricDataCommand({
        Namespace: "Kiln/Test",
        MetricData: [{ MetricName: "Batch", StatisticValues: { SampleCount: 4, Sum: 40, Minimum: 5, Maximum: 15 } }],
      }),
    );
    const now = w.cloud.clock.now();
    const range = { StartTime: new Date(now - 60_000), EndTime: new Date(now + 60_000), Period: 60 };
    const p = await w.cw.send(
      new GetMetricStatisticsCommand({
        Namespace: "Kiln/Test",
        MetricName: "Latency",
        Dimensions: DIMS,
        ...range,
        ExtendedStatistics: ["p99", "p50"],
      }),
    );
    expect(p.Datapoints![0]!.ExtendedStatistics).toEqual({ p99: 99, p50: 50 });
    const b = await w.cw.send(
      new GetMetricStatisticsCommand({
        Namespace: "Kiln/Test",
        MetricName: "Batch",
        ...range,
        Statistics: ["Average", "SampleCount"],
      }),
    );
    expect(b.Datapoints![0]).toMatchObject({ Average: 10, SampleCount: 4 });
    await expect(
      w.cw.send(new PutMetricDataCommand({ Namespace: "AWS/ApplicationELB", MetricData: [{ MetricName: "X", Value: 1 }] })),
    ).rejects.toMatchObject({ name: "InvalidParameterValueException" });
    await expect(
      w.cw.send(new GetMetricStatisticsCommand({ Namespace: "Kiln/Test", MetricName: "Latency", ...range })),
    ).rejects.toMatchObject({ name: "InvalidParameterCombinationException" });
    await expect(
      w.cw.send(
        new GetMetricStatisticsCommand({
          Namespace: "Kiln/Test",
          MetricName: "Latency",
          ...range,
          Period: 45,
          Statistics: ["Sum"],
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidParameterValueException" });
    // A different dimension set is a different metric.
    const other = await w.cw.send(
      new GetMetricStatisticsCommand({ Namespace: "Kiln/Test", MetricName: "Latency", ...range, Statistics: ["Sum"] }),
    );
    expect(other.Datapoints).toEqual([]);
  });

  it("answers GetMetricData with metric stats and math expressions, newest first by default", async () => {
    w = await world();
    const t0 = w.cloud.clock.now();
    for (let m = 0; m < 3; m++) {
      await w.cw.send(
        new PutMetricDataCommand({
          Namespace: "Kiln/Test",
          MetricData: [
            { MetricName: "Requests", Dimensions: DIMS, Value: 100 * (m + 1), Timestamp: new Date(t0 + m * 60_000) },
            { MetricName: "Errors", Dimensions: DIMS, Value: 5 * (m + 1), Timestamp: new Date(t0 + m * 60_000) },
          ],
        }),
      );
    }
    const stat = (id: string, name: string) => ({
      Id: id,
      MetricStat: { Metric: { Namespace: "Kiln/Test", MetricName: name, Dimensions: DIMS }, Period: 60, Stat: "Sum" },
      ReturnData: false,
    });
    const r = await w.cw.send(
      new GetMetricDataCommand({
        StartTime: new Date(t0),
        EndTime: new Date(t0 + 180_000),
        MetricDataQueries: [
          stat("req", "Requests"),
          stat("err", "Errors"),
          { Id: "rate", Expression: "100 * err / req", Label: "error rate" },
          { ...stat("raw", "Requests"), ReturnData: true },
        ],
      }),
    );
    const byId = Object.fromEntries(r.MetricDataResults!.map((x) => [x.Id, x]));
    expect(Object.keys(byId)).toEqual(["rate", "raw"]);
    expect(byId.rate).toMatchObject({ Label: "error rate", Values: [5, 5, 5], StatusCode: "Complete" });
    expect(byId.raw!.Values).toEqual([300, 200, 100]);
    expect(byId.raw!.Timestamps!.map((d: Date) => d.getTime())).toEqual([t0 + 120_000, t0 + 60_000, t0]);
    const asc = await w.cw.send(
      new GetMetricDataCommand({
        StartTime: new Date(t0),
        EndTime: new Date(t0 + 180_000),
        ScanBy: "TimestampAscending",
        MetricDataQueries: [{ ...stat("raw", "Requests"), ReturnData: true }],
      }),
    );
    expect(asc.MetricDataResults![0]!.Values).toEqual([100, 200, 300]);
    await expect(
      w.cw.send(
        new GetMetricDataCommand({
          StartTime: new Date(t0),
          EndTime: new Date(t0 + 1),
          MetricDataQueries: [{ Id: "Bad", Expression: "1" }],
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidParameterValueException" });
  });

  it("lists metrics by namespace, name and dimension, with pagination", async () => {
    w = await world();
    await w.cw.send(
      new PutMetricDataCommand({
        Namespace: "Kiln/Many",
        MetricData: Array.from({ length: 600 }, (_, i) => ({
          MetricName: `m${i}`,
          Dimensions: [{ Name: "Shard", Value: String(i % 3) }],
          Value: 1,
        })),
      }),
    );
    await put(w, [1]);
    const first = await w.cw.send(new ListMetricsCommand({ Namespace: "Kiln/Many" }));
    expect(first.Metrics).toHaveLength(500);
    const second = await w.cw.send(new ListMetricsCommand({ Namespace: "Kiln/Many", NextToken: first.NextToken }));
    expect(second.Metrics).toHaveLength(100);
    expect(second.NextToken).toBeUndefined();
    expect(
      (await w.cw.send(new ListMetricsCommand({ Namespace: "Kiln/Many", Dimensions: [{ Name: "Shard", Value: "1" }] }))).Metrics,
    ).toHaveLength(200);
    expect((await w.cw.send(new ListMetricsCommand({ MetricName: "Latency" }))).Metrics).toEqual([
      { Namespace: "Kiln/Test", MetricName: "Latency", Dimensions: DIMS },
    ]);
    await expect(w.cw.send(new ListMetricsCommand({ NextToken: "garbage" }))).rejects.toMatchObject({ name: "InvalidNextToken" });
  });
});

describe("CloudWatch alarms", () => {
  let w: World | undefined;
  afterEach(async () => {
    await w?.cloud.stop();
    w = undefined;
  });

  it.each([
    ["no threshold", { Threshold: undefined }, "MissingRequiredParameterException"],
    ["Statistic and ExtendedStatistic", { ExtendedStatistic: "p99" }, "InvalidParameterCombinationException"],
    ["a period of 45 s", { Period: 45 }, "InvalidParameterValueException"],
    ["more DatapointsToAlarm than periods", { DatapointsToAlarm: 2 }, "InvalidParameterValueException"],
    ["an unknown comparison", { ComparisonOperator: "Above" as never }, "InvalidParameterValueException"],
    ["Metrics beside MetricName", { Metrics: [{ Id: "m1", Expression: "1" }] }, "InvalidParameterCombinationException"],
  ])("PutMetricAlarm rejects %s", async (_what, extra, name) => {
    w = await world();
    await expect(w.cw.send(new PutMetricAlarmCommand(alarm(extra)))).rejects.toMatchObject({ name });
  });

  it("describes alarms by name, prefix and state, with pagination, and deletes them all-or-nothing", async () => {
    w = await world();
    for (const n of ["web-5xx", "web-latency", "api-5xx"]) await w.cw.send(new PutMetricAlarmCommand(alarm({ AlarmName: n })));
    const d = await w.cw.send(new DescribeAlarmsCommand({ AlarmNamePrefix: "web-" }));
    expect(d.MetricAlarms!.map((a) => a.AlarmName)).toEqual(["web-5xx", "web-latency"]);
    expect(d.MetricAlarms![0]).toMatchObject({
      StateValue: "INSUFFICIENT_DATA",
      StateReason: "Unchecked: Initial alarm creation",
      AlarmArn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-5xx",
      ActionsEnabled: true,
    });
    const p1 = await w.cw.send(new DescribeAlarmsCommand({ MaxRecords: 2 }));
    const p2 = await w.cw.send(new DescribeAlarmsCommand({ MaxRecords: 2, NextToken: p1.NextToken }));
    expect([...p1.MetricAlarms!, ...p2.MetricAlarms!].map((a) => a.AlarmName)).toEqual(["api-5xx", "web-5xx", "web-latency"]);
    expect(p2.NextToken).toBeUndefined();
    await w.cw.send(new SetAlarmStateCommand({ AlarmName: "api-5xx", StateValue: "ALARM", StateReason: "testing" }));
    expect((await w.cw.send(new DescribeAlarmsCommand({ StateValue: "ALARM" }))).MetricAlarms!.map((a) => a.AlarmName)).toEqual([
      "api-5xx",
    ]);
    await expect(w.cw.send(new DescribeAlarmsCommand({ AlarmNames: ["a"], AlarmNamePrefix: "b" }))).rejects.toMatchObject({
      name: "InvalidParameterCombinationException",
    });
    await expect(
      w.cw.send(new SetAlarmStateCommand({ AlarmName: "missing", StateValue: "OK", StateReason: "x" })),
    ).rejects.toMatchObject({ name: "ResourceNotFound" });
    await expect(
      w.cw.send(
        new SetAlarmStateCommand({ AlarmName: "api-5xx", StateValue: "OK", StateReason: "x", StateReasonData: "{not json" }),
      ),
    ).rejects.toMatchObject({ name: "InvalidFormatFault" });
    await expect(w.cw.send(new DeleteAlarmsCommand({ AlarmNames: ["web-5xx", "missing"] }))).rejects.toMatchObject({
      name: "ResourceNotFound",
    });
    await w.cw.send(new DeleteAlarmsCommand({ AlarmNames: ["web-5xx", "web-latency"] }));
    expect((await w.cw.send(new DescribeAlarmsCommand({}))).MetricAlarms!.map((a) => a.AlarmName)).toEqual(["api-5xx"]);
  });

  it("evaluates every period on the clock, needs M of N breaching datapoints, and emits state-change events", async () => {
    w = await world();
    // Align to a period boundary so each minute's datapoints land in their own period.
    await w.cloud.clock.sleep(60_000 - (w.cloud.clock.now() % 60_000) + 1_000);
    await w.cw.send(new PutMetricAlarmCommand(alarm({ EvaluationPeriods: 3, DatapointsToAlarm: 2 })));
    const state = async () => (await w!.cw.send(new DescribeAlarmsCommand({ AlarmNames: ["latency-high"] }))).MetricAlarms![0]!;
    await put(w, [150]); // minute 1: breaching
    await w.cloud.clock.sleep(60_000);
    expect((await state()).StateValue).toBe("OK"); // 1 of 3 breaching (the others are missing)
    await put(w, [50]); // minute 2: fine
    await w.cloud.clock.sleep(60_000);
    expect((await state()).StateValue).toBe("OK");
    await put(w, [120]); // minute 3: breaching → 2 of the last 3
    await w.cloud.clock.sleep(60_000);
    const a = await state();
    expect(a.StateValue).toBe("ALARM");
    expect(a.StateReason).toMatch(
      /^Threshold Crossed: 2 out of the last 3 datapoints \[120\.0 \(.+\), 50\.0 \(.+\), 150\.0 \(.+\)\] were greater than the threshold \(100\.0\) \(minimum 2 datapoints for OK -> ALARM transition\)\.$/,
    );
    expect(JSON.parse(a.StateReasonData!)).toMatchObject({
      version: "1.0",
      statistic: "Maximum",
      period: 60,
      recentDatapoints: [120, 50, 150],
      threshold: 100,
    });
    const changes = w.events
      .filter((e) => e.detailType === "CloudWatch Alarm State Change")
      .map((e) => [(e.detail.previousState as { value: string }).value, (e.detail.state as { value: string }).value]);
    expect(changes).toEqual([
      ["INSUFFICIENT_DATA", "OK"],
      ["OK", "ALARM"],
    ]);
    expect(w.events.at(-1)).toMatchObject({
      source: "aws.cloudwatch",
      resources: ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:latency-high"],
      detail: { alarmName: "latency-high" },
    });
    const history = await w.cw.send(
      new DescribeAlarmHistoryCommand({ AlarmName: "latency-high", HistoryItemType: "StateUpdate" }),
    );
    expect(history.AlarmHistoryItems!.map((h) => h.HistorySummary)).toEqual([
      "Alarm updated from OK to ALARM",
      "Alarm updated from INSUFFICIENT_DATA to OK",
    ]);
  });

  it.each([
    ["missing", "INSUFFICIENT_DATA"],
    ["notBreaching", "OK"],
    ["breaching", "ALARM"],
    ["ignore", "INSUFFICIENT_DATA"], // keeps the current state, which starts INSUFFICIENT_DATA
  ] as const)("TreatMissingData=%s with no data gives %s", async (treat, expected) => {
    w = await world();
    await w.cw.send(new PutMetricAlarmCommand(alarm({ TreatMissingData: treat })));
    await w.cloud.clock.sleep(120_000);
    expect(w.backend.alarmState("latency-high")).toBe(expected);
  });

  it("evaluates metric-math alarms (error rate)", async () => {
    w = await world();
    await w.cw.send(
      new PutMetricAlarmCommand({
        AlarmName: "error-rate",
        EvaluationPeriods: 1,
        Threshold: 10,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        Metrics: [
          {
            Id: "e",
            MetricStat: { Metric: { Namespace: "Kiln/Test", MetricName: "Errors", Dimensions: DIMS }, Period: 60, Stat: "Sum" },
            ReturnData: false,
          },
          {
            Id: "r",
            MetricStat: { Metric: { Namespace: "Kiln/Test", MetricName: "Requests", Dimensions: DIMS }, Period: 60, Stat: "Sum" },
            ReturnData: false,
          },
          { Id: "rate", Expression: "100 * FILL(e, 0) / r", ReturnData: true },
        ],
      }),
    );
    await w.cw.send(
      new PutMetricDataCommand({
        Namespace: "Kiln/Test",
        MetricData: [{ MetricName: "Requests", Dimensions: DIMS, Value: 100 }],
      }),
    );
    await w.cloud.clock.sleep(60_000);
    expect(w.backend.alarmState("error-rate")).toBe("OK"); // no errors: FILL makes it 0 %
    await w.cw.send(
      new PutMetricDataCommand({
        Namespace: "Kiln/Test",
        MetricData: [
          { MetricName: "Requests", Dimensions: DIMS, Value: 100 },
          { MetricName: "Errors", Dimensions: DIMS, Value: 12 },
        ],
      }),
    );
    await w.cloud.clock.sleep(60_000);
    expect(w.backend.alarmState("error-rate")).toBe("ALARM");
    const d = (await w.cw.send(new DescribeAlarmsCommand({ AlarmNames: ["error-rate"] }))).MetricAlarms![0]!;
    expect(d.Metrics?.map((m) => m.Id)).toEqual(["e", "r", "rate"]);
    expect(d.Period).toBeUndefined();
  });

  it("speaks awsQuery to older clients (Version 2010-08-01)", async () => {
    w = await world();
    await w.cw.send(new PutMetricAlarmCommand(alarm()));
    const form = (body: string) =>
      w!.cloud.router.handle({
        method: "POST",
        url: "/",
        headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
        body: Buffer.from(`${body}&Version=2010-08-01`),
      });
    const ok = await form("Action=DescribeAlarms&AlarmNames.member.1=latency-high");
    expect(ok.status).toBe(200);
    expect(String(ok.body)).toContain(
      '<DescribeAlarmsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><DescribeAlarmsResult><MetricAlarms><member>',
    );
    expect(String(ok.body)).toContain("<AlarmName>latency-high</AlarmName>");
    const put = await form(
      "Action=PutMetricData&Namespace=Legacy&MetricData.member.1.MetricName=Hits&MetricData.member.1.Value=3&MetricData.member.1.Timestamp=2026-01-05T09:00:10Z",
    );
    expect(put.status).toBe(200);
    expect(w.backend.store.get("Legacy", "Hits", [])?.buckets.size).toBe(1);
    const bad = await form("Action=SetAlarmState&AlarmName=missing&StateValue=OK&StateReason=x");
    expect(bad.status).toBe(404);
    expect(String(bad.body)).toContain("<Code>ResourceNotFound</Code>");
  });
});
