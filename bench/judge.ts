/**
 * The canary judge measured in simulation: many seeded deployments of good commits (noise only)
 * and bad commits of graded severity, through the same judge, evidence rules and bake controller
 * BakeCanary runs (`lib/roll/judge.ts`), over simulated per-request traffic aggregated the way
 * CloudWatch aggregates the ALB's per-target-group metrics (60 s periods, nearest-rank
 * percentiles, TC(τ:) slow counts). The full stack is not in this loop — its evidence path is
 * covered by the integration and end-to-end tests; here thousands of deployments take seconds.
 */
import { gaussian, poisson, seededRandom } from "../local/cloud/random.ts";
import {
  bakeDecision,
  DEFAULT_JUDGE,
  judge,
  type JudgeSettings,
  latencyThreshold,
  median,
  percentile,
  plannedLooks,
} from "../lib/roll/judge.ts";

export interface Profile {
  name: string;
  /** Requests per second to the service. */
  rps: number;
}
export interface Severity {
  name: string;
  /** Green's 5xx rate (absolute). */
  errorRate?: number;
  /** Green's latency multiplier. */
  latency?: number;
}

/** The example traffic (a small production service) and a low-traffic one. */
export const PROFILES: Profile[] = [
  { name: "example (1,419 req/s)", rps: 1419 },
  { name: "low traffic (1 req/s)", rps: 1 },
];
/** Blue (and a good green): 0.25 % 5xx, lognormal latency, median 50 ms. */
export const BASE = { errorRate: 0.0025, medianMs: 50, sigma: 0.35 };
export const SEVERITIES: Severity[] = [
  { name: "5xx 0.5 % (2×)", errorRate: 0.005 },
  { name: "5xx 1 %", errorRate: 0.01 },
  { name: "5xx 5 %", errorRate: 0.05 },
  { name: "5xx 50 %", errorRate: 0.5 },
  { name: "latency ×1.2", latency: 1.2 },
  { name: "latency ×1.5", latency: 1.5 },
  { name: "latency ×2", latency: 2 },
  { name: "latency ×5", latency: 5 },
];
/** The default canary: 10 % and 50 % for 5 min each, then 100 % (the full-traffic bake). */
const STEPS = [
  { weight: 10, bakeSeconds: 300 },
  { weight: 50, bakeSeconds: 300 },
  { weight: 100, bakeSeconds: 0 },
];

interface Period {
  requests: number;
  errors: number;
  latencies: number[];
  aggregated: boolean;
  scale?: number;
  /** Drawn once per period (CloudWatch's value does not change between reads). */
  p?: number;
  slow?: Map<number, number>;
}

function binomial(n: number, p: number, r: () => number): number {
  const mean = n * p;
  if (n <= 50) {
    let k = 0;
    for (let i = 0; i < n; i++) if (r() < p) k++;
    return k;
  }
  if (mean < 30) return Math.min(n, poisson(mean, r));
  return Math.min(n, Math.max(0, Math.round(mean + Math.sqrt(mean * (1 - p)) * gaussian(r))));
}

/** Φ(z) (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y =
    1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

/** Φ⁻¹(p) (Acklam's rational approximation, relative error < 1.2e-9). */
function inverseNormal(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - lo) return -inverseNormal(1 - p);
  const q = p - 0.5;
  const rr = q * q;
  return (
    ((((((a[0]! * rr + a[1]!) * rr + a[2]!) * rr + a[3]!) * rr + a[4]!) * rr + a[5]!) * q) /
    (((((b[0]! * rr + b[1]!) * rr + b[2]!) * rr + b[3]!) * rr + b[4]!) * rr + 1)
  );
}

export interface DeployOutcome {
  result: "promoted" | "failed" | "no-traffic";
  /** Seconds from green's first traffic to traffic back on blue (failed only). */
  detectionSeconds?: number;
  /** Green requests that got an error beyond the baseline rate (what the regression cost clients). */
  extraErrors: number;
  /** weight × detection time × rate × green's extra error rate. */
  bound: number;
  failedStep?: number;
}

/** One deployment: per-second traffic, evaluated every interval exactly as BakeCanary does. */
export function simulateDeployment(
  p: Profile,
  sev: Severity | undefined,
  seed: number,
  s: JudgeSettings = DEFAULT_JUDGE,
): DeployOutcome {
  const r = seededRandom(seed);
  const P = s.periodSeconds;
  const periods = { green: new Map<number, Period>(), blue: new Map<number, Period>() };
  const gErr = sev?.errorRate ?? BASE.errorRate;
  const gLat = sev?.latency ?? 1;
  const extraRate = Math.max(0, gErr - BASE.errorRate);
  let t = 0;
  const serve = (sec: number, greenWeight: number) => {
    const slot = Math.floor(sec / P);
    for (const [green, share] of [
      [true, greenWeight / 100],
      [false, 1 - greenWeight / 100],
    ] as const) {
      if (share <= 0) continue;
      const side = green ? periods.green : periods.blue;
      let pr = side.get(slot);
      if (!pr) side.set(slot, (pr = { requests: 0, errors: 0, latencies: [], aggregated: false }));
      const n = poisson(p.rps * share, r);
      pr.requests += n;
      pr.errors += binomial(n, green ? gErr : BASE.errorRate, r);
      pr.scale = green ? gLat : 1;
      // Low volumes: every request's latency. High volumes: the period's percentile and slow counts are
      // drawn from their exact distributions at the end of the period (see `percentileOf`, `slowOf`).
      if (p.rps * share * P <= 2_000)
        for (let i = 0; i < n; i++) pr.latencies.push((BASE.medianMs / 1000) * Math.exp(BASE.sigma * gaussian(r)) * pr.scale);
      else pr.aggregated = true;
    }
  };
  const percentileOf = (pr: Period): number | undefined => {
    if (!pr.aggregated) return percentile(pr.latencies, s.latency.percentile);
    if (pr.requests === 0) return undefined;
    // The nearest-rank sample percentile: the k-th order statistic, U_(k) ~ Beta(k, n − k + 1), ≈ normal at these n.
    const n = pr.requests;
    const q = s.latency.percentile / 100;
    const u = Math.min(1 - 1e-9, Math.max(1e-9, q + Math.sqrt((q * (1 - q)) / n) * gaussian(r)));
    return (BASE.medianMs / 1000) * Math.exp(BASE.sigma * inverseNormal(u)) * (pr.scale ?? 1);
  };
  const slowOf = (pr: Period, tau: number): number => {
    if (!pr.aggregated) return pr.latencies.filter((v) => v > tau).length;
    const z = Math.log(tau / ((BASE.medianMs / 1000) * (pr.scale ?? 1))) / BASE.sigma;
    return binomial(pr.requests, 1 - normalCdf(z), r);
  };
  const evidence = (side: Map<number, Period>, from: number, to: number, tau?: number) => {
    let requests = 0;
    let errors = 0;
    let slow = 0;
    const ps: number[] = [];
    for (let k = Math.ceil(from / P); k < Math.floor(to / P); k++) {
      const pr = side.get(k);
      if (!pr) continue;
      requests += pr.requests;
      errors += pr.errors;
      pr.p ??= percentileOf(pr);
      if (pr.p !== undefined) ps.push(pr.p);
      if (tau !== undefined) slow += (pr.slow ??= new Map()).get(tau) ?? pr.slow.set(tau, slowOf(pr, tau)).get(tau)!;
    }
    const latency = median(ps);
    return { requests, errors, slow, ...(latency !== undefined ? { latency } : {}) };
  };
  // Blue's history before the deployment (the baseline of a canary that starts at 100 %).
  for (; t < s.baselineSeconds; t++) serve(t, 0);
  const firstTraffic = t;
  for (const [index, step] of STEPS.entries()) {
    const bakeSeconds = step.weight === 100 ? Math.max(step.bakeSeconds, s.fullTrafficBakeSeconds) : step.bakeSeconds;
    const startedAt = t;
    const looks = plannedLooks(bakeSeconds, s);
    for (;;) {
      const next = Math.min(
        startedAt + (Math.floor((t - startedAt) / s.intervalSeconds) + 1) * s.intervalSeconds,
        t < startedAt + bakeSeconds ? startedAt + bakeSeconds : Number.POSITIVE_INFINITY,
      );
      for (; t < next; t++) serve(t, step.weight);
      const blueFrom = step.weight < 100 ? startedAt : startedAt - s.baselineSeconds;
      const blueTo = step.weight < 100 ? t : startedAt;
      const b0 = evidence(periods.blue, blueFrom, blueTo);
      const tau = b0.latency !== undefined ? latencyThreshold(b0.latency, s) : undefined;
      const green = evidence(periods.green, startedAt, t, tau);
      const blue = evidence(periods.blue, blueFrom, blueTo, tau);
      const report = judge({ green, blue, ...(tau !== undefined ? { slowThreshold: tau } : {}) }, s, looks);
      const d = bakeDecision(t * 1000, { startedAt: startedAt * 1000, bakeSeconds }, [], report, s);
      if (d.action === "continue") continue;
      if (d.action === "pass") break;
      const detectionSeconds = t - firstTraffic;
      let greenRequests = 0;
      for (const pr of periods.green.values()) greenRequests += pr.requests;
      const extraErrors = Math.round(greenRequests * extraRate);
      // The bound of the issue: weight × detection time × rate (× the regression's extra error rate).
      return {
        result: /not enough traffic/.test(d.reason) ? "no-traffic" : "failed",
        detectionSeconds,
        extraErrors,
        bound: (step.weight / 100) * (t - startedAt) * p.rps * extraRate + priorExposure(index, p.rps, extraRate),
        failedStep: index,
      };
    }
  }
  return { result: "promoted", extraErrors: 0, bound: 0 };
}

/** Extra errors the earlier (passed) steps served: their weight × bake × rate × extra error rate. */
function priorExposure(index: number, rps: number, extraRate: number): number {
  return STEPS.slice(0, index).reduce((a, st) => a + (st.weight / 100) * st.bakeSeconds * rps * extraRate, 0);
}

export interface JudgeMeasure {
  profile: string;
  good: { runs: number; falsePositives: number; noTraffic: number };
  bad: {
    severity: string;
    runs: number;
    falseNegatives: number;
    noTraffic: number;
    medianDetectionSeconds: number | null;
    errors: number;
    bound: number;
  }[];
}

export function measureJudge(opts: { goodRuns?: number; badRuns?: number } = {}): JudgeMeasure[] {
  const goodRuns = opts.goodRuns ?? 300;
  const badRuns = opts.badRuns ?? 100;
  return PROFILES.map((p, pi) => {
    const good = { runs: goodRuns, falsePositives: 0, noTraffic: 0 };
    for (let i = 0; i < goodRuns; i++) {
      const o = simulateDeployment(p, undefined, 1_000_003 * (pi + 1) + i);
      if (o.result === "failed") good.falsePositives++;
      if (o.result === "no-traffic") good.noTraffic++;
    }
    const bad = SEVERITIES.map((sev, si) => {
      const det: number[] = [];
      let fn = 0;
      let noTraffic = 0;
      let errors = 0;
      let bound = 0;
      for (let i = 0; i < badRuns; i++) {
        const o = simulateDeployment(p, sev, 7_919 * (si + 1) + 104_729 * (pi + 1) + i);
        if (o.result === "promoted") fn++;
        else {
          if (o.result === "no-traffic") noTraffic++;
          det.push(o.detectionSeconds!);
          errors += o.extraErrors;
          bound += o.bound;
        }
      }
      return {
        severity: sev.name,
        runs: badRuns,
        falseNegatives: fn,
        noTraffic,
        medianDetectionSeconds: median(det) ?? null,
        errors,
        bound: Math.round(bound),
      };
    });
    return { profile: p.name, good, bad };
  });
}
