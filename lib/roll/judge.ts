/**
 * The canary judge: pure functions that compare green with blue over a window and decide Pass,
 * Fail or Inconclusive, plus the bake controller that turns successive verdicts into "keep
 * baking", "promote" or "fail". No AWS here: `judge-metrics.ts` reads the evidence from CloudWatch,
 * `bake.ts` runs the bake; the benchmark feeds the same functions simulated evidence.
 *
 * Both metrics are judged with one exact test on counts of "bad" requests:
 * - errors: requests a target answered with a 5xx;
 * - slow requests: requests slower than the latency threshold τ = blue's pXX × (1 + tolerance)
 *   (at least blue's pXX + minIncreaseMs), counted per request by CloudWatch's TC(τ:) statistic.
 *
 * The test conditions on the total number of bad requests E = g + b (green's g of n_g, blue's b
 * of n_b). If green's rate is at most `ratio` × blue's, g given E is at most Binomial(E, π) with
 * π = ratio·n_g / (ratio·n_g + n_b) (Poisson counts; for binomial counts the test is conservative).
 * The p-value is P(X ≥ g). It is exact at the edges that broke other judges: a zero-error
 * baseline (b = 0) still gives a finite, meaningful p-value, E = 0 gives p = 1, tiny samples
 * give large p-values instead of NaN.
 */

/** How the judge is tuned (the `judge` block of a service's configuration, see docs/canary.md). */
export interface JudgeSettings {
  /** false: alarms and health only, as before the judge. */
  enabled: boolean;
  /** How often alarms and the judge are evaluated during a bake. */
  intervalSeconds: number;
  /** CloudWatch period of the metrics read (ALB metrics have a 60 s resolution). */
  periodSeconds: number;
  /** A step passes only with at least this many requests on green in its window. */
  minRequests: number;
  /** How much longer than its bake a step may wait for `minRequests` before it fails. */
  maxExtensionSeconds: number;
  /** "fail" (default): too little traffic fails the step. "promote": promote without judging. */
  whenNoTraffic: "fail" | "promote";
  /** Confidence of a Fail verdict, split over the evaluations of a step and the two metrics. */
  confidence: number;
  errorRate: { tolerance: number; minIncrease: number };
  latency: { percentile: number; tolerance: number; minIncreaseMs: number };
  /** Minimum bake of the 100 % step (blue stays InService and serviced in meanwhile). */
  fullTrafficBakeSeconds: number;
  /** When blue carries no traffic (the 100 % step), its baseline is this long window before the step. */
  baselineSeconds: number;
}

export const DEFAULT_JUDGE: JudgeSettings = {
  enabled: true,
  intervalSeconds: 60,
  periodSeconds: 60,
  minRequests: 100,
  maxExtensionSeconds: 600,
  whenNoTraffic: "fail",
  confidence: 0.98,
  errorRate: { tolerance: 0.25, minIncrease: 0.001 },
  latency: { percentile: 99, tolerance: 0.25, minIncreaseMs: 10 },
  fullTrafficBakeSeconds: 300,
  baselineSeconds: 600,
};

// ───────────────────────────── statistics ─────────────────────────────

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7: ~15 significant digits). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b), a, b > 0, 0 ≤ x ≤ 1. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(a, b, x)) / a;
  return 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** P(X ≥ k) for X ~ Binomial(n, p). */
export function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  // P(X ≥ k) = I_p(k, n − k + 1)
  return Math.min(1, Math.max(0, regularizedBeta(p, k, n - k + 1)));
}

export interface Counts {
  /** Bad requests (5xx, or slower than the threshold). */
  events: number;
  /** All requests. */
  total: number;
}

/**
 * One-sided exact conditional test of "green's rate of bad requests is more than `ratio` × blue's".
 * Returns the p-value (1 when nothing can be concluded: no bad request at all, or no traffic on a side).
 */
export function excessTest(green: Counts, blue: Counts, ratio = 1): number {
  const e = green.events + blue.events;
  if (green.events === 0 || e === 0) return 1;
  if (green.total === 0) return 1;
  // No baseline traffic: nothing to compare with (the caller reports it; the test cannot fail green).
  if (blue.total === 0) return 1;
  const pi = (ratio * green.total) / (ratio * green.total + blue.total);
  return binomialUpperTail(green.events, e, pi);
}

/** Nearest-rank percentile of raw values (what CloudWatch's pNN gives); undefined when empty. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** Median of a few numbers (the per-period percentiles); undefined when empty. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1]! + s[m]!) / 2;
}

// ───────────────────────────── the verdict ─────────────────────────────

/** What the judge saw of one side over its window. */
export interface SideEvidence {
  requests: number;
  /** Requests a target answered with a 5xx. */
  errors: number;
  /** The latency percentile in seconds (median of the per-period percentiles); undefined without data. */
  latency?: number;
  /** Requests slower than the evidence's `slowThreshold` (only when one was set). */
  slow?: number;
}

export interface Evidence {
  green: SideEvidence;
  blue: SideEvidence;
  /** τ in seconds: blue's percentile × (1 + tolerance), at least + minIncreaseMs (see `latencyThreshold`). */
  slowThreshold?: number;
  /** The windows the evidence covers (ISO), for the report. */
  windows?: { green: [string, string]; blue: [string, string] };
}

export type Verdict = "Pass" | "Fail" | "Inconclusive";

export interface MetricReport {
  result: "pass" | "fail" | "no data";
  pValue: number;
  alpha: number;
  [k: string]: unknown;
}

/** The judge's report: the verdict and everything it was decided on. */
export interface JudgeReport {
  verdict: Verdict;
  reasons: string[];
  green: SideEvidence;
  blue: SideEvidence;
  errorRate: MetricReport;
  latency: MetricReport;
  minRequests: number;
  windows?: Evidence["windows"];
}

/** τ for a blue percentile (seconds). */
export function latencyThreshold(bluePercentile: number, s: Pick<JudgeSettings, "latency">): number {
  return Math.max(bluePercentile * (1 + s.latency.tolerance), bluePercentile + s.latency.minIncreaseMs / 1000);
}

/** The significance level of one metric at one evaluation (Bonferroni over `looks` × 2 metrics). */
export function alphaPerTest(s: Pick<JudgeSettings, "confidence">, looks: number): number {
  return (1 - s.confidence) / (2 * Math.max(1, looks));
}

const pct = (x: number) => `${(x * 100).toFixed(x < 0.01 ? 2 : 1)}%`;
const ms = (s: number | undefined) => (s === undefined ? "n/a" : `${Math.round(s * 1000)} ms`);

/**
 * Green vs blue over a window. Fail needs statistical evidence *and* a practical difference; it
 * can come with few requests (a commit failing every request is clear after a handful). Pass needs
 * `minRequests` on green; below that the verdict is Inconclusive.
 *
 * `looks`: how many evaluations the step may make, so that repeated looks during a bake keep the
 * false-positive rate at 1 − confidence (Bonferroni).
 */
export function judge(e: Evidence, s: JudgeSettings, looks: number): JudgeReport {
  const alpha = alphaPerTest(s, looks);
  const reasons: string[] = [];
  const gRate = e.green.requests > 0 ? e.green.errors / e.green.requests : 0;
  const bRate = e.blue.requests > 0 ? e.blue.errors / e.blue.requests : 0;
  const ratio = 1 + s.errorRate.tolerance;
  const errP = excessTest(
    { events: e.green.errors, total: e.green.requests },
    { events: e.blue.errors, total: e.blue.requests },
    ratio,
  );
  const errFail = errP < alpha && gRate - bRate >= s.errorRate.minIncrease && e.blue.requests > 0;
  const errorRate: MetricReport = {
    result: e.green.requests === 0 || e.blue.requests === 0 ? "no data" : errFail ? "fail" : "pass",
    green: gRate,
    blue: bRate,
    pValue: errP,
    alpha,
    allowedRatio: ratio,
    minIncrease: s.errorRate.minIncrease,
  };
  if (errFail)
    reasons.push(
      `5xx rate ${pct(gRate)} on green vs ${pct(bRate)} on blue (p=${errP.toExponential(2)} < ${alpha.toExponential(2)})`,
    );

  let latency: MetricReport = {
    result: "no data",
    pValue: 1,
    alpha,
    percentile: s.latency.percentile,
    green: e.green.latency,
    blue: e.blue.latency,
  };
  if (
    e.slowThreshold !== undefined &&
    e.green.slow !== undefined &&
    e.blue.slow !== undefined &&
    e.blue.requests > 0 &&
    e.green.requests > 0
  ) {
    const tau = e.slowThreshold;
    const latP = excessTest(
      { events: e.green.slow, total: e.green.requests },
      { events: e.blue.slow, total: e.blue.requests },
      1,
    );
    // Practical difference: more than (100 − percentile) % of green's requests are slower than τ,
    // and green's percentile (the median of its per-period percentiles) is itself above τ — a
    // sustained regression, not one period's stall (a loaded host, a GC pause) counted over the
    // whole window while blue's window was quiet.
    const tail = 1 - s.latency.percentile / 100;
    const sustained = e.green.latency === undefined || e.green.latency > tau;
    const latFail = latP < alpha && e.green.slow / e.green.requests > tail && sustained;
    latency = {
      result: latFail ? "fail" : "pass",
      percentile: s.latency.percentile,
      green: e.green.latency,
      blue: e.blue.latency,
      threshold: tau,
      greenSlow: e.green.slow,
      blueSlow: e.blue.slow,
      pValue: latP,
      alpha,
    };
    if (latFail)
      reasons.push(
        `p${s.latency.percentile} ${ms(e.green.latency)} on green vs ${ms(e.blue.latency)} on blue: ${e.green.slow}/${e.green.requests} green requests slower than ${ms(tau)} ` +
          `vs ${e.blue.slow}/${e.blue.requests} on blue (p=${latP.toExponential(2)} < ${alpha.toExponential(2)})`,
      );
  }
  let verdict: Verdict;
  if (reasons.length > 0) verdict = "Fail";
  else if (e.green.requests < s.minRequests) {
    verdict = "Inconclusive";
    reasons.push(`${e.green.requests} requests on green, fewer than the ${s.minRequests} needed to judge`);
  } else if (e.blue.requests === 0) {
    verdict = "Inconclusive";
    reasons.push("no baseline: blue served no request in its window");
  } else verdict = "Pass";
  return {
    verdict,
    reasons,
    green: e.green,
    blue: e.blue,
    errorRate,
    latency,
    minRequests: s.minRequests,
    ...(e.windows ? { windows: e.windows } : {}),
  };
}

// ───────────────────────────── the bake ─────────────────────────────

export interface BakeSchedule {
  /** Start of the step's window (ms): when its weights were (re-)applied. */
  startedAt: number;
  /** The step's bake. */
  bakeSeconds: number;
}

/** How many evaluations a step can make (its bake plus the longest extension, one per interval). */
export function plannedLooks(bakeSeconds: number, s: Pick<JudgeSettings, "intervalSeconds" | "maxExtensionSeconds">): number {
  return Math.max(1, Math.ceil((bakeSeconds + s.maxExtensionSeconds) / s.intervalSeconds));
}

export type BakeAction =
  | { action: "continue"; reason: string }
  | { action: "pass"; reason: string; withoutTraffic?: boolean }
  | { action: "fail"; reason: string };

/**
 * What to do after one evaluation at `now`: a firing alarm or a Fail verdict fails at once (the bake
 * is cut short); before the bake time is over, keep baking; after it, a Pass promotes, an
 * Inconclusive keeps baking until the extension runs out, then fails — or, only when the
 * configuration says `whenNoTraffic: promote`, promotes without judging.
 */
export function bakeDecision(
  now: number,
  bake: BakeSchedule,
  firingAlarms: string[],
  report: JudgeReport | undefined,
  s: Pick<JudgeSettings, "maxExtensionSeconds" | "whenNoTraffic" | "minRequests">,
): BakeAction {
  if (firingAlarms.length > 0) return { action: "fail", reason: `alarm ${firingAlarms.join(", ")} in ALARM` };
  if (report?.verdict === "Fail") return { action: "fail", reason: `the judge failed green: ${report.reasons.join("; ")}` };
  const elapsed = (now - bake.startedAt) / 1000;
  if (elapsed < bake.bakeSeconds) return { action: "continue", reason: `baking (${Math.floor(elapsed)}/${bake.bakeSeconds} s)` };
  if (!report || report.verdict === "Pass")
    return { action: "pass", reason: report ? "the judge passed green" : "baked (judge disabled)" };
  if (elapsed < bake.bakeSeconds + s.maxExtensionSeconds)
    return { action: "continue", reason: `bake extended: ${report.reasons.join("; ")} (up to ${s.maxExtensionSeconds} s more)` };
  if (s.whenNoTraffic === "promote")
    return {
      action: "pass",
      withoutTraffic: true,
      reason: `promoted WITHOUT JUDGING: ${report.reasons.join("; ")} after ${Math.floor(elapsed)} s — allowed only because the configuration says judge.whenNoTraffic: promote`,
    };
  return {
    action: "fail",
    reason: `not enough traffic to judge: ${report.reasons.join("; ")} after ${Math.floor(elapsed)} s (bake ${bake.bakeSeconds} s + extension ${s.maxExtensionSeconds} s)`,
  };
}
