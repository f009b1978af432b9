/**
 * The judge's evidence from CloudWatch: per target group (dimensions TargetGroup + LoadBalancer,
 * namespace AWS/ApplicationELB) RequestCount, HTTPCode_Target_5XX_Count and TargetResponseTime —
 * its percentile, and the count of requests slower than blue's tolerated percentile (`TC(τ:)`) —
 * through GetMetricData over complete periods only.
 */
import { type CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from "@aws-sdk/client-cloudwatch";
import { type Evidence, type JudgeSettings, latencyThreshold, median, type SideEvidence } from "./judge.ts";

/** The CloudWatch dimension values of a load balancer and the two target groups. */
export interface JudgeTargets {
  /** `app/<name>/<id>`. */
  loadBalancer: string;
  /** `targetgroup/<name>/<id>`. */
  green: string;
  blue: string;
}

/** `app/<name>/<id>` from a load balancer or listener ARN. */
export function loadBalancerDimension(arn: string): string {
  const m = /:(?:loadbalancer|listener|listener-rule)\/(app\/[^/]+\/[^/]+)/.exec(arn);
  if (!m) throw new Error(`cannot read the load balancer of ${arn}`);
  return m[1]!;
}

/** `targetgroup/<name>/<id>` from a target group ARN. */
export function targetGroupDimension(arn: string): string {
  const m = /:(targetgroup\/[^/]+\/[^/]+)$/.exec(arn);
  if (!m) throw new Error(`cannot read the target group of ${arn}`);
  return m[1]!;
}

/** A window [from, to) in ms. */
export type Window = [number, number];

/**
 * The complete periods within [start, end): metrics of a period that was only partly under the
 * step's weights would mix the previous weights into the judgement.
 */
export function completePeriods(start: number, end: number, periodSeconds: number): Window {
  const p = periodSeconds * 1000;
  const from = Math.ceil(start / p) * p;
  const to = Math.floor(end / p) * p;
  return [from, Math.max(from, to)];
}

const NS = "AWS/ApplicationELB";

function stat(id: string, metric: string, dims: { lb: string; tg: string }, period: number, s: string): MetricDataQuery {
  return {
    Id: id,
    MetricStat: {
      Metric: {
        Namespace: NS,
        MetricName: metric,
        Dimensions: [
          { Name: "TargetGroup", Value: dims.tg },
          { Name: "LoadBalancer", Value: dims.lb },
        ],
      },
      Period: period,
      Stat: s,
    },
    ReturnData: true,
  };
}

async function query(cw: CloudWatchClient, queries: MetricDataQuery[], w: Window): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(queries.map((q) => [q.Id!, []]));
  if (w[1] <= w[0]) return out;
  let NextToken: string | undefined;
  do {
    const r = await cw.send(
      new GetMetricDataCommand({ MetricDataQueries: queries, StartTime: new Date(w[0]), EndTime: new Date(w[1]), NextToken }),
    );
    for (const res of r.MetricDataResults ?? []) out.get(res.Id!)?.push(...(res.Values ?? []));
    NextToken = r.NextToken;
  } while (NextToken);
  return out;
}

const sum = (xs: number[] | undefined) => (xs ?? []).reduce((a, b) => a + b, 0);

async function readSide(cw: CloudWatchClient, lb: string, tg: string, w: Window, s: JudgeSettings): Promise<SideEvidence> {
  const d = { lb, tg };
  const P = s.periodSeconds;
  const r = await query(
    cw,
    [
      stat("requests", "RequestCount", d, P, "Sum"),
      stat("errors", "HTTPCode_Target_5XX_Count", d, P, "Sum"),
      stat("latency", "TargetResponseTime", d, P, `p${s.latency.percentile}`),
    ],
    w,
  );
  const latency = median(r.get("latency") ?? []);
  return { requests: sum(r.get("requests")), errors: sum(r.get("errors")), ...(latency !== undefined ? { latency } : {}) };
}

async function slowCount(
  cw: CloudWatchClient,
  lb: string,
  tg: string,
  w: Window,
  tau: number,
  s: JudgeSettings,
): Promise<number> {
  // TC(τ:) is the number of values above τ; CloudWatch takes up to 10 decimals.
  const r = await query(cw, [stat("slow", "TargetResponseTime", { lb, tg }, s.periodSeconds, `TC(${tau.toFixed(6)}:)`)], w);
  return sum(r.get("slow"));
}

/**
 * Reads green over `windows.green` and blue over `windows.blue` (the same window while blue takes
 * traffic; the baseline before the step when it takes none). Four GetMetricData calls, whatever
 * the fleet size.
 */
export async function readEvidence(
  cw: CloudWatchClient,
  t: JudgeTargets,
  windows: { green: Window; blue: Window },
  s: JudgeSettings,
): Promise<Evidence> {
  const [green, blue] = await Promise.all([
    readSide(cw, t.loadBalancer, t.green, windows.green, s),
    readSide(cw, t.loadBalancer, t.blue, windows.blue, s),
  ]);
  const iso = (w: Window): [string, string] => [new Date(w[0]).toISOString(), new Date(w[1]).toISOString()];
  const e: Evidence = { green, blue, windows: { green: iso(windows.green), blue: iso(windows.blue) } };
  if (blue.latency === undefined) return e;
  const tau = latencyThreshold(blue.latency, s);
  const [gs, bs] = await Promise.all([
    slowCount(cw, t.loadBalancer, t.green, windows.green, tau, s),
    slowCount(cw, t.loadBalancer, t.blue, windows.blue, tau, s),
  ]);
  return { ...e, green: { ...green, slow: gs }, blue: { ...blue, slow: bs }, slowThreshold: tau };
}
