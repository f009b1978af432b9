/**
 * Redrive from every step of the roll: a step made to fail beyond its Retry budget (a Lambda that
 * crashes after doing its work, every attempt; or a permanent API error) fails the execution at
 * that step; redriving it reaches the same final state as an uninterrupted run, with nothing
 * leaked and the invariants held throughout. Virtual time; one stack, deployments in sequence.
 */
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { RedriveExecutionCommand } from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FaultRule } from "../../local/cloud/faults.ts";
import { readWeights } from "../../lib/roll/traffic.ts";
import { InvariantMonitor } from "../support/invariants.ts";
import { bootE2E, commitOf, type E2E, failedAt, settle, startDeploy } from "../support/stack.ts";

let e: E2E;
let n = 0;

beforeAll(async () => {
  e = await bootE2E({});
});
afterAll(async () => e?.stack.stop());

const tag = (tags: { Key?: string; Value?: string }[] | undefined, k: string) => tags?.find((t) => t.Key === k)?.Value;

/** The end state of a deployment, independent of which commit it deployed. */
async function endState(commit: string) {
  const r = await e.autoscaling.send(
    new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: "tag:kiln:service", Values: ["web"] }] }),
  );
  const groups = (r.AutoScalingGroups ?? []).map((g) => ({
    role: tag(g.Tags, "kiln:role"),
    live: tag(g.Tags, "kiln:commit") === commit,
    capacity: { min: g.MinSize, max: g.MaxSize, desired: g.DesiredCapacity },
    retiredCapacity: tag(g.Tags, "kiln:capacity") ? JSON.parse(tag(g.Tags, "kiln:capacity")!) : undefined,
    instances: g.Instances?.length,
    suspended: g.SuspendedProcesses?.length ?? 0,
  }));
  groups.sort((a, b) => String(a.role).localeCompare(String(b.role)));
  const live = r.AutoScalingGroups?.find((g) => tag(g.Tags, "kiln:commit") === commit);
  const w = await readWeights(e.elbv2, { listenerArn: e.seeded.listenerArn });
  return {
    groups,
    weights: w
      .map((x) => ({ live: live?.TargetGroupARNs?.includes(x.arn) ?? false, weight: x.weight }))
      .sort((a, b) => b.weight - a.weight),
  };
}

async function deploy(faults: FaultRule[]) {
  const commit = commitOf(++n);
  const monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
  const ids = faults.map((f) => e.stack.cloud.faults.add(f));
  const d = await startDeploy(e, commit);
  const first = await settle(e, d.arn);
  for (const id of ids) e.stack.cloud.faults.remove(id);
  return { commit, monitor, d, first };
}

let reference: Awaited<ReturnType<typeof endState>>;

describe("redrive of the roll phase", () => {
  it("an uninterrupted run (the reference end state)", async () => {
    const { commit, monitor, first } = await deploy([]);
    expect(first.status, first.cause).toBe("SUCCEEDED");
    reference = await endState(commit);
    expect(reference.groups.map((g) => g.role)).toEqual(["fleet", "retired"]);
    expect(reference.weights).toEqual([
      { live: true, weight: 100 },
      { live: false, weight: 0 },
    ]);
    expect(await monitor.finish(), monitor.report()).toEqual([]);
  });

  const crash = (key: string): FaultRule => ({ kind: "lambda", function: `kiln-local-${key}`, mode: "crash-after", times: 4 });
  it.each<{ state: string; faults: FaultRule[] }>([
    { state: "PlanRoll", faults: [crash("planRoll")] },
    { state: "CreateGreenFleet", faults: [crash("createGreenFleet")] },
    { state: "WaitGreenReady", faults: [crash("waitGreenReady")] },
    { state: "ServiceInGreen", faults: [crash("serviceInGreen")] },
    { state: "WaitGreenHealthy", faults: [crash("waitGreenHealthy")] },
    { state: "ShiftTraffic", faults: [crash("shiftTraffic")] },
    { state: "VerifyCanary", faults: [crash("verifyCanary")] },
    { state: "ServiceOutBlue", faults: [crash("serviceOutBlue")] },
    { state: "RetireBlue", faults: [crash("retireBlue")] },
    { state: "RecordDeployment", faults: [crash("recordDeployment")] },
    {
      state: "ShiftTraffic",
      faults: [
        {
          kind: "api",
          service: "elasticloadbalancing",
          action: "ModifyListener",
          code: "ValidationError",
          status: 400,
          message: "injected",
          times: 1,
        },
      ],
    },
  ])("fails at $state ($faults.0.kind fault) and a redrive ends where an uninterrupted run does", async ({ state, faults }) => {
    const { commit, monitor, d, first } = await deploy(faults);
    expect(first.status).toBe("FAILED");
    expect(failedAt(e, d.arn)).toBe(state);
    await e.sfn.send(new RedriveExecutionCommand({ executionArn: d.arn }));
    const redriven = await settle(e, d.arn);
    expect(redriven.status, redriven.cause).toBe("SUCCEEDED");
    expect(await endState(commit)).toEqual(reference);
    expect(await monitor.finish(), monitor.report()).toEqual([]);
  });
});
