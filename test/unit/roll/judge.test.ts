import { describe, expect, it } from "vitest";
import {
  bakeDecision,
  binomialUpperTail,
  DEFAULT_JUDGE,
  type Evidence,
  excessTest,
  judge,
  latencyThreshold,
  lnGamma,
  percentile,
  plannedLooks,
  regularizedBeta,
} from "../../../lib/roll/judge.ts";

// Reference values from scipy 1.17 (scipy.stats.binom.sf(k - 1, n, p), scipy.special.gammaln/betainc).
describe("statistics", () => {
  it.each([
    [3, 3, 0.1, 0.001],
    [1, 1, 0.1, 0.1],
    [5, 5, 0.96, 0.8153726975999999],
    [50, 100, 0.25, 6.638502483476674e-8],
    [2, 4, 0.1, 0.0523],
    [42, 63, 1 / 3, 6.650630844756827e-8],
    [1, 1000, 0.001, 0.6323045752290359],
    [700, 1000, 0.65, 0.00045322440379716406],
  ])("P(X ≥ %i) for Binomial(%i, %f) = %f", (k, n, p, want) => {
    expect(binomialUpperTail(k, n, p)).toBeCloseTo(want, 10);
    expect(Math.abs(binomialUpperTail(k, n, p) / want - 1)).toBeLessThan(1e-7);
  });

  it.each([
    [0, 10, 0.5, 1],
    [11, 10, 0.5, 0],
    [3, 10, 0, 0],
    [3, 10, 1, 1],
  ])("edges: P(X ≥ %i) for Binomial(%i, %f) = %f", (k, n, p, want) => {
    expect(binomialUpperTail(k, n, p)).toBe(want);
  });

  it("lnGamma and the incomplete beta match scipy", () => {
    expect(lnGamma(0.3)).toBeCloseTo(1.0957979948180756, 12);
    expect(lnGamma(10.5)).toBeCloseTo(13.940625219403763, 12);
    expect(lnGamma(1000.5)).toBeCloseTo(5908.674175848678, 9);
    expect(regularizedBeta(0.4, 2.5, 3.5)).toBeCloseTo(0.4869041915261176, 12);
  });

  it("percentile is nearest-rank, like CloudWatch's pNN", () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
    expect(percentile([], 99)).toBeUndefined();
  });
});

describe("excessTest", () => {
  it("a zero-error baseline with errors on green gives a small, finite p-value (not NaN, not a pass by default)", () => {
    // Blue 0 errors in 900 requests, green 5 in 100: every error landed on the 10 % side.
    const p = excessTest({ events: 5, total: 100 }, { events: 0, total: 900 });
    expect(Number.isFinite(p)).toBe(true);
    expect(p).toBeCloseTo(1e-5, 10);
  });
  it.each([
    ["no error anywhere", { events: 0, total: 100 }, { events: 0, total: 900 }, 1],
    ["no traffic on green", { events: 0, total: 0 }, { events: 3, total: 900 }, 1],
    ["no error on green", { events: 0, total: 100 }, { events: 9, total: 900 }, 1],
    ["no baseline traffic", { events: 3, total: 100 }, { events: 0, total: 0 }, 1],
  ])("%s: p = 1", (_, g, b, want) => {
    expect(excessTest(g, b)).toBe(want);
  });
  it("the same rate on both sides is not significant; a ratio moves the null", () => {
    expect(excessTest({ events: 10, total: 1000 }, { events: 90, total: 9000 })).toBeGreaterThan(0.3);
    expect(excessTest({ events: 20, total: 1000 }, { events: 90, total: 9000 })).toBeLessThan(0.01);
    expect(excessTest({ events: 20, total: 1000 }, { events: 90, total: 9000 }, 2)).toBeGreaterThan(0.4);
  });
});

const side = (requests: number, errors: number, latency = 0.05, slow = 0) => ({ requests, errors, latency, slow });
const evidence = (g: ReturnType<typeof side>, b: ReturnType<typeof side>): Evidence => ({
  green: g,
  blue: b,
  slowThreshold: latencyThreshold(b.latency, DEFAULT_JUDGE),
});

describe("judge", () => {
  const looks = plannedLooks(300, DEFAULT_JUDGE);
  it.each([
    ["good commit, zero errors both sides", side(1000, 0), side(9000, 0), "Pass"],
    ["good commit, same small error rate", side(1000, 3), side(9000, 27), "Pass"],
    ["zero-error baseline, green fails 5 %", side(1000, 50), side(9000, 0), "Fail"],
    ["zero-error baseline, one stray error on green", side(1000, 1), side(9000, 0), "Pass"],
    ["every green request fails, tiny sample", side(12, 12), side(108, 0), "Fail"],
    ["too few requests on green, no errors", side(40, 0), side(360, 0), "Inconclusive"],
    ["no traffic at all", side(0, 0), side(0, 0), "Inconclusive"],
    ["2× error rate at volume", side(20_000, 100), side(180_000, 450), "Fail"],
    ["latency ×3: most green requests slower than τ", side(1000, 0, 0.15, 600), side(9000, 0, 0.05, 40), "Fail"],
    ["latency noise: green's tail within tolerance", side(1000, 0, 0.052, 6), side(9000, 0, 0.05, 40), "Pass"],
    // One period's stall (a loaded host) puts 2.6 % of green's window over τ while its p99 — the
    // median of the per-period p99s — stays blue's: not a sustained regression (seen under CI load).
    ["one stalled period: many slow requests, green's p99 still blue's", side(3276, 0, 0.2, 85), side(6002, 0, 0.2, 67), "Pass"],
  ] as const)("%s → %s", (_, g, b, want) => {
    const r = judge(evidence(g, b), DEFAULT_JUDGE, looks);
    expect(r.verdict, JSON.stringify(r)).toBe(want);
    expect(r.minRequests).toBe(100);
    if (want !== "Pass") expect(r.reasons.length).toBeGreaterThan(0);
  });

  it("reports what it saw: counts, rates, p-values, thresholds", () => {
    const r = judge(evidence(side(1000, 50), side(9000, 0)), DEFAULT_JUDGE, looks);
    expect(r.errorRate).toMatchObject({ result: "fail", green: 0.05, blue: 0, allowedRatio: 1.25, minIncrease: 0.001 });
    expect(r.errorRate.pValue).toBeLessThan(r.errorRate.alpha);
    expect(r.latency).toMatchObject({ result: "pass", threshold: latencyThreshold(0.05, DEFAULT_JUDGE) });
    expect(r.reasons[0]).toMatch(/5xx rate 5\.0% on green vs 0\.00% on blue/);
  });

  it("more looks make each look stricter (repeated evaluation keeps the false-positive rate)", () => {
    const e = evidence(side(1000, 8), side(9000, 18));
    expect(judge(e, DEFAULT_JUDGE, 1).verdict).toBe("Fail");
    expect(judge(e, DEFAULT_JUDGE, 100).verdict).toBe("Pass");
  });

  it("the latency threshold is the tolerance or the minimum increase, whichever is larger", () => {
    expect(latencyThreshold(0.1, DEFAULT_JUDGE)).toBeCloseTo(0.125);
    expect(latencyThreshold(0.004, DEFAULT_JUDGE)).toBeCloseTo(0.014);
  });
});

describe("bakeDecision", () => {
  const bake = { startedAt: 0, bakeSeconds: 300 };
  const pass = judge(evidence(side(1000, 0), side(9000, 0)), DEFAULT_JUDGE, 1);
  const fail = judge(evidence(side(1000, 500), side(9000, 0)), DEFAULT_JUDGE, 1);
  const thin = judge(evidence(side(10, 0), side(90, 0)), DEFAULT_JUDGE, 1);
  it.each([
    ["an alarm fires mid-bake", 60, ["kiln-web-5xx"], pass, "fail"],
    ["the judge fails mid-bake", 60, [], fail, "fail"],
    ["passing mid-bake keeps baking", 60, [], pass, "continue"],
    ["passing after the bake promotes", 300, [], pass, "pass"],
    ["inconclusive after the bake extends", 300, [], thin, "continue"],
    ["inconclusive at the end of the extension fails", 900, [], thin, "fail"],
    ["judge disabled: time alone", 300, [], undefined, "pass"],
  ] as const)("%s", (_, at, alarms, report, want) => {
    expect(bakeDecision(at * 1000, bake, [...alarms], report, DEFAULT_JUDGE).action).toBe(want);
  });
  it("fails with 'not enough traffic to judge' unless the configuration says promote, and then says so", () => {
    const f = bakeDecision(900_000, bake, [], thin, DEFAULT_JUDGE);
    expect(f).toMatchObject({ action: "fail" });
    expect(f.reason).toMatch(/^not enough traffic to judge/);
    const p = bakeDecision(900_000, bake, [], thin, { ...DEFAULT_JUDGE, whenNoTraffic: "promote" });
    expect(p).toMatchObject({ action: "pass", withoutTraffic: true });
    expect(p.reason).toMatch(/WITHOUT JUDGING.*judge\.whenNoTraffic: promote/);
  });
});
