/**
 * BakeCanary: one canary step's bake, watched throughout. Every `judge.intervalSeconds` it reads
 * the alarms and the judge's evidence; a firing alarm or a Fail verdict returns traffic to blue at
 * once and fails the step with the judge's report. After the bake time a Pass promotes; too little
 * traffic extends the bake up to `judge.maxExtensionSeconds`, then fails with "not enough traffic
 * to judge" (unless the configuration says `whenNoTraffic: promote`).
 *
 * The watching happens inside the invocation (it sleeps on the clock between evaluations), in
 * slices of at most BAKE_SLICE_SECONDS: one Task state per slice, so a step's state transitions
 * do not grow with the number of evaluations, and evaluations cost four GetMetricData calls and
 * one DescribeAlarms whatever the fleet size. See docs/canary.md.
 */
import { VerificationFailedError } from "../errors.ts";
import { bakeDecision, DEFAULT_JUDGE, judge, type JudgeReport, type JudgeSettings, plannedLooks } from "./judge.ts";
import { completePeriods, loadBalancerDimension, readEvidence, targetGroupDimension, type Window } from "./judge-metrics.ts";
import {
  alarmStates,
  assertHoldsLock,
  blueOnly,
  type CanaryInput,
  type RollDeps,
  type RollPlan,
  shiftTraffic,
  stepWeights,
} from "./steps.ts";
import { readWeights, setWeights } from "./traffic.ts";

/** Longest stretch one BakeCanary invocation watches (its Lambda timeout is 900 s). */
export const BAKE_SLICE_SECONDS = 600;
/** How many evaluation intervals a restarted step waits for its alarms to clear before it gives up. */
const CLEAR_WAITS = 5;

export interface BakeInput extends CanaryInput {
  /** The bake in progress, from the previous slice (absent on the first). */
  bake?: { startedAt: number };
}

export interface BakeResult {
  /** "baking": the slice ended, call again with `bake`; "passed": go on to VerifyCanary. */
  status: "baking" | "passed";
  index: number;
  bake: { startedAt: number };
  bakeSeconds: number;
  evaluations: number;
  decision: string;
  /** The step was promoted without judging (too little traffic, `judge.whenNoTraffic: promote`). */
  withoutTraffic?: boolean;
  /** The weights were found off the step's (a redrive after a failure): re-applied, the bake starts afresh. */
  restarted?: boolean;
  alarms: Record<string, string>;
  report?: JudgeReport;
}

/** The judge settings of a plan (plans made before the judge get the defaults). */
export function judgeOf(plan: Pick<RollPlan, "judge">): JudgeSettings {
  return plan.judge ?? DEFAULT_JUDGE;
}

/** The bake of step `index`: the 100 % step bakes at least `judge.fullTrafficBakeSeconds`. */
export function bakeSecondsOf(plan: Pick<RollPlan, "steps" | "judge">, index: number): number {
  const step = plan.steps[index]!;
  return step.weight === 100 ? Math.max(step.bakeSeconds, judgeOf(plan).fullTrafficBakeSeconds) : step.bakeSeconds;
}

/** The windows judged at `now`: green since the bake began; blue the same, or its baseline before the step when it takes no traffic. */
export function judgeWindows(
  plan: Pick<RollPlan, "steps">,
  index: number,
  startedAt: number,
  now: number,
  s: JudgeSettings,
): { green: Window; blue: Window } {
  const green = completePeriods(startedAt, now, s.periodSeconds);
  const blueTakesTraffic = plan.steps[index]!.weight < 100;
  return {
    green,
    blue: blueTakesTraffic ? green : completePeriods(startedAt - s.baselineSeconds * 1000, startedAt, s.periodSeconds),
  };
}

export async function bakeCanary(input: BakeInput, deps: RollDeps): Promise<BakeResult> {
  const { plan, index } = input;
  await assertHoldsLock(plan, deps);
  const s = judgeOf(plan);
  const bakeSeconds = bakeSecondsOf(plan, index);
  const want = stepWeights(plan, index);
  const current = await readWeights(deps.elbv2, plan.traffic);
  const inPlace = want.every((w) => current.some((c) => c.arn === w.arn && c.weight === w.weight));
  let restarted = false;
  if (!inPlace) {
    // A failed verdict put traffic back on blue: a redrive judges fresh evidence, never the old
    // window. An alarm still in ALARM speaks of the old window (or of blue): wait for it to clear
    // with traffic on blue before green gets any again.
    for (let waited = 0; ; waited++) {
      const firing = Object.entries(await alarmStates(deps.cloudwatch, plan.alarms)).filter(([, v]) => v === "ALARM");
      if (firing.length === 0) break;
      if (waited >= CLEAR_WAITS) {
        throw new VerificationFailedError(
          `canary step ${index + 1}/${plan.steps.length} not resumed: alarm ${firing.map(([n]) => n).join(", ")} still in ALARM after ${(waited * s.intervalSeconds) | 0} s with all traffic on blue (${plan.blue.asgName}); green gets no traffic while it fires`,
        );
      }
      await deps.clock.sleep(s.intervalSeconds * 1000);
    }
    await shiftTraffic(input, deps);
    restarted = true;
  }
  const startedAt = !restarted && input.bake ? input.bake.startedAt : deps.clock.now();
  const sliceEnd = deps.clock.now() + BAKE_SLICE_SECONDS * 1000;
  const looks = plannedLooks(bakeSeconds, s);
  const targets = {
    loadBalancer: loadBalancerDimension(plan.traffic.listenerArn),
    green: targetGroupDimension(plan.green.targetGroupArn),
    blue: targetGroupDimension(plan.blue.targetGroupArn),
  };
  let evaluations = 0;
  for (;;) {
    const now = deps.clock.now();
    const alarms = await alarmStates(deps.cloudwatch, plan.alarms);
    const firing = Object.entries(alarms)
      .filter(([, v]) => v === "ALARM" || v === "MISSING")
      .map(([n, v]) => (v === "MISSING" ? `${n} (does not exist)` : n));
    const report = s.enabled
      ? judge(await readEvidence(deps.cloudwatch, targets, judgeWindows(plan, index, startedAt, now, s), s), s, looks)
      : undefined;
    evaluations++;
    const d = bakeDecision(now, { startedAt, bakeSeconds }, firing, report, s);
    const base = {
      index,
      bake: { startedAt },
      bakeSeconds,
      evaluations,
      decision: d.reason,
      alarms,
      ...(report ? { report } : {}),
      ...(restarted ? { restarted } : {}),
    };
    if (d.action === "fail") {
      await setWeights(deps.elbv2, plan.traffic, blueOnly(plan));
      const step = plan.steps[index]!;
      throw new VerificationFailedError(
        `canary step ${index + 1}/${plan.steps.length} (${step.weight}% to ${plan.commit.slice(0, 12)}) failed after ${Math.round((now - startedAt) / 1000)} s of its bake: ${d.reason}. ` +
          `Traffic is back on blue (${plan.blue.asgName}). The way forward is an abort or a new push: a redrive judges this commit again, on fresh traffic only. ` +
          `Judge report: ${JSON.stringify(base.report ?? null)}; alarms: ${JSON.stringify(alarms)}`,
      );
    }
    if (d.action === "pass") return { ...base, status: "passed", ...(d.withoutTraffic ? { withoutTraffic: true } : {}) };
    // Next evaluation: the next interval tick, or the end of the bake if that comes first.
    const elapsed = now - startedAt;
    const tick = startedAt + (Math.floor(elapsed / (s.intervalSeconds * 1000)) + 1) * s.intervalSeconds * 1000;
    const end = startedAt + bakeSeconds * 1000;
    const next = end > now ? Math.min(tick, end) : tick;
    if (next > sliceEnd) return { ...base, status: "baking" };
    await deps.clock.sleep(next - now);
  }
}
