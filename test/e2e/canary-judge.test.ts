/**
 * The canary judge end to end (virtual time, the example service's background users through the
 * ALB): a good commit passes every step with the judge's report in its output and bakes at 100 %
 * with blue in service; without traffic a bad commit never exceeds the first canary weight; under
 * load a bad commit is back on blue within one evaluation interval of the alarm or judge firing;
 * a regression that shows only at 100 % goes back to blue automatically; a redrive judges fresh
 * evidence only.
 */
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeAlarmHistoryCommand } from "@aws-sdk/client-cloudwatch";
import { RedriveExecutionCommand } from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readWeights } from "../../lib/roll/traffic.ts";
import type { Backend } from "../../local/cloud/cloud.ts";
import { bootE2E, commitOf, type E2E, failedAt, historyOf, settle, startDeploy, startMachine } from "../support/stack.ts";

let e: E2E;
type Elb = Backend & {
  startUsers(lb: string, rps: number): () => void;
  stopUsers(lb: string): void;
  listeners: Map<string, { defaultRule: { actions: { Type: string }[] } }>;
};
const elb = () => e.stack.cloud.backend<Elb>("elasticloadbalancing");
const INTERVAL_MS = 60_000;

beforeAll(async () => {
  e = await bootE2E({});
}, 120_000);
afterAll(async () => e?.stack.stop());

/** Samples green's weight every simulated second until stopped: the highest it reached and when it last went to 0. */
function watchWeights(green: () => string) {
  const clock = e.stack.cloud.clock;
  const s = {
    max: 0,
    samples: [] as { at: number; green: number }[],
    timer: undefined as ReturnType<typeof clock.setTimeout> | undefined,
  };
  // Read in process (no API call that a throttling fault could refuse), like the invariant monitor.
  const tick = () => {
    const g = listenerWeight(green());
    s.max = Math.max(s.max, g);
    s.samples.push({ at: clock.now(), green: g });
    s.timer = clock.setTimeout(tick, 1_000);
  };
  tick();
  return {
    get max() {
      return s.max;
    },
    /** First time green's weight went from > 0 to 0. */
    backOnBlueAt: () => s.samples.find((x, i) => i > 0 && x.green === 0 && s.samples[i - 1]!.green > 0)?.at,
    /** First time green reached `weight`. */
    reached: (weight: number) => s.samples.find((x) => x.green >= weight)?.at,
    /** Stops sampling, after a last sample (the execution may have closed within the current second). */
    stop: () => {
      clock.clearTimeout(s.timer);
      const g = listenerWeight(green());
      s.samples.push({ at: clock.now(), green: g });
    },
  };
}

/** The weight of target group `arn` in the seeded listener's forward action, read from the backend. */
function listenerWeight(arn: string): number {
  const l = elb().listeners.get(e.seeded.listenerArn)!;
  const fwd = l.defaultRule.actions.find((a) => a.Type === "forward") as
    { TargetGroups: { TargetGroupArn: string; Weight: number }[] } | undefined;
  return fwd?.TargetGroups.find((g) => g.TargetGroupArn === arn)?.Weight ?? 0;
}

async function liveTgs(): Promise<{ blue: string; idle: string }> {
  const w = await readWeights(e.elbv2, { listenerArn: e.seeded.listenerArn });
  const blue = w.find((x) => x.weight === 100)!.arn;
  return { blue, idle: e.seeded.targetGroupArns.find((a) => a !== blue)! };
}

function bakeOutputs(arn: string): Record<string, any>[] {
  const h = historyOf(e, arn);
  const out: Record<string, any>[] = [];
  h.forEach((ev, i) => {
    if (ev.type === "TaskStateExited" && ev.stateExitedEventDetails?.name === "BakeCanary")
      out.push(JSON.parse(ev.stateExitedEventDetails.output!));
    void i;
  });
  return out;
}

async function abortFailed(name: string): Promise<void> {
  const a = await startMachine(e, e.machines.abort, name, { service: "web" });
  const done = await settle(e, a);
  expect(done.status, done.cause).toBe("SUCCEEDED");
}

describe("the canary judge", () => {
  it("a good commit: every step passes on the judge's report, the 100 % step bakes with blue in service", async () => {
    const { idle } = await liveTgs();
    const w = watchWeights(() => idle);
    const d = await startDeploy(e, commitOf(0x101));
    const done = await settle(e, d.arn);
    w.stop();
    expect(done.status, done.cause).toBe("SUCCEEDED");
    const bakes = bakeOutputs(d.arn).filter((b) => b.status === "passed");
    expect(bakes.map((b) => b.index)).toEqual([0, 1, 2]);
    for (const b of bakes) {
      expect(b.report.verdict).toBe("Pass");
      expect(b.report.green.requests).toBeGreaterThanOrEqual(100);
      expect(b.report.errorRate).toMatchObject({ result: "pass" });
      expect(b.report.latency.result).toBe("pass");
    }
    // The 100 % step judged green against blue's baseline before it (blue took no traffic then).
    expect(bakes[2]!.report.blue.requests).toBeGreaterThan(0);
    expect(bakes[2]!.bakeSeconds).toBe(300);
    // Blue was serviced out only after green held 100 % for the full-traffic bake.
    const h = historyOf(e, d.arn);
    const outAt = Date.parse(String(h.find((x) => x.stateEnteredEventDetails?.name === "ServiceOutBlue")!.timestamp));
    expect(outAt - bakes[2]!.bake.startedAt).toBeGreaterThanOrEqual(300_000);
  });

  it("no traffic: a bad commit never exceeds the first canary weight, fails 'not enough traffic to judge', and a redrive without traffic fails the same way", async () => {
    elb().stopUsers(e.seeded.loadBalancerArn);
    try {
      const { idle } = await liveTgs();
      const commit = commitOf(0x102);
      e.stack.cloud.faults.add({ kind: "bad-commit", commit, mode: "500" });
      const w = watchWeights(() => idle);
      const d = await startDeploy(e, commit);
      const done = await settle(e, d.arn);
      expect(done.status).toBe("FAILED");
      expect(failedAt(e, d.arn)).toBe("BakeCanary");
      expect(done.error).toBe("kiln.VerificationFailed");
      expect(done.cause).toMatch(
        /canary step 1\/3 \(10%.*not enough traffic to judge: 0 requests on green.*Traffic is back on blue/,
      );
      await e.sfn.send(new RedriveExecutionCommand({ executionArn: d.arn }));
      const again = await settle(e, d.arn);
      w.stop();
      expect(again.status).toBe("FAILED");
      expect(again.cause).toMatch(/not enough traffic to judge/);
      expect(w.max).toBe(10);
      expect((await readWeights(e.elbv2, { listenerArn: e.seeded.listenerArn })).find((x) => x.arn === idle)?.weight).toBe(0);
      await abortFailed("web-abort-judge-1");
    } finally {
      elb().startUsers(e.seeded.loadBalancerArn, 10);
    }
  });

  let failedArn = "";
  it("a bad commit under load: back on blue within one evaluation interval of the alarm or the judge firing", async () => {
    const { idle } = await liveTgs();
    const commit = commitOf(0x103);
    e.stack.cloud.faults.add({ kind: "bad-commit", commit, mode: "500" });
    const w = watchWeights(() => idle);
    const d = await startDeploy(e, commit);
    failedArn = d.arn;
    const done = await settle(e, d.arn);
    w.stop();
    expect(done.status).toBe("FAILED");
    expect(failedAt(e, d.arn)).toBe("BakeCanary");
    expect(done.cause).toMatch(/canary step 1\/3 \(10%/);
    expect(w.max).toBe(10);
    const shiftedAt = w.reached(10)!;
    const back = w.backOnBlueAt()!;
    const hist = await e.cloudwatch.send(
      new DescribeAlarmHistoryCommand({ AlarmName: "kiln-web-5xx", HistoryItemType: "StateUpdate" }),
    );
    const alarmAt = (hist.AlarmHistoryItems ?? [])
      .filter((x) => JSON.parse(x.HistoryData!).newState?.stateValue === "ALARM")
      .map((x) => x.Timestamp!.getTime())
      .filter((t) => t >= shiftedAt)
      .sort((a, b) => a - b)[0];
    // Whichever fired first — the judge (on the first complete metric period) or the alarm — traffic
    // was on blue within one evaluation interval of it; the bake (120 s) did not run out.
    const fired = Math.min(alarmAt ?? Number.POSITIVE_INFINITY, back);
    expect(back - fired).toBeLessThanOrEqual(INTERVAL_MS);
    expect(alarmAt === undefined || back - alarmAt <= INTERVAL_MS).toBe(true);
    expect(back - shiftedAt).toBeLessThan(120_000 + INTERVAL_MS);
    // The judge's report is in the failure.
    expect(JSON.parse(done.cause!).errorMessage).toMatch(/Judge report: \{"verdict":"(Fail|Inconclusive)"/);
  });

  it("a redrive of the judged failure judges fresh evidence only: the old window's errors do not count", async () => {
    expect(failedArn).not.toBe("");
    // The commit's errors stop (say the bad dependency it called recovered): only fresh evidence can show it.
    e.stack.cloud.faults.clear("bad-commit");
    const before = bakeOutputs(failedArn).length;
    await e.sfn.send(new RedriveExecutionCommand({ executionArn: failedArn }));
    const done = await settle(e, failedArn);
    expect(done.status, done.cause).toBe("SUCCEEDED");
    const first = bakeOutputs(failedArn)
      .slice(before)
      .find((b) => b.index === 0 && b.status === "passed")!;
    expect(first.restarted).toBe(true);
    expect(first.report.green.errors).toBe(0);
  });

  it("a regression that shows only at 100 %: rolled back to blue automatically, blue still in service", async () => {
    const { blue, idle } = await liveTgs();
    const commit = commitOf(0x104);
    const w = watchWeights(() => idle);
    const d = await startDeploy(e, commit);
    // The commit fails only under full load: the fault starts when green takes all the traffic.
    const clock = e.stack.cloud.clock;
    while (!w.reached(100)) await clock.sleep(1_000);
    e.stack.cloud.faults.add({ kind: "bad-commit", commit, mode: "500" });
    const done = await settle(e, d.arn);
    w.stop();
    expect(done.status).toBe("FAILED");
    expect(failedAt(e, d.arn)).toBe("BakeCanary");
    expect(done.cause).toMatch(/canary step 3\/3 \(100%/);
    const after = await readWeights(e.elbv2, { listenerArn: e.seeded.listenerArn });
    expect(after.find((x) => x.arn === blue)?.weight).toBe(100);
    expect(w.backOnBlueAt()! - w.reached(100)!).toBeLessThan(300_000);
    // Blue was never serviced out nor scaled down.
    const groups = await e.autoscaling.send(new DescribeAutoScalingGroupsCommand({}));
    const blueGroup = groups.AutoScalingGroups!.find((g) => g.TargetGroupARNs?.includes(blue) && (g.DesiredCapacity ?? 0) > 0)!;
    expect(blueGroup.Instances?.filter((i) => i.LifecycleState === "InService")).toHaveLength(4);
    expect(historyOf(e, d.arn).some((x) => x.stateEnteredEventDetails?.name === "ServiceOutBlue")).toBe(false);
  });
});
