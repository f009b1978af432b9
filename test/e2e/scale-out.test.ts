/**
 * Autoscaling during a deployment (issue item 7): blue scaled out mid-canary is carried to green,
 * and the new green instances are smoke-tested and serviced in before they take traffic (I3);
 * capacity ends exactly as blue had it, no scaling process left suspended. Virtual time.
 */
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readWeights } from "../../lib/roll/traffic.ts";
import { InvariantMonitor } from "../support/invariants.ts";
import { bootE2E, commitOf, type E2E, settle, startDeploy, statesEntered, until } from "../support/stack.ts";

let e: E2E;

beforeAll(async () => {
  e = await bootE2E({});
});
afterAll(async () => e?.stack.stop());

const tag = (tags: { Key?: string; Value?: string }[] | undefined, k: string) => tags?.find((t) => t.Key === k)?.Value;

describe("blue scaled out mid-deployment", () => {
  it("is carried to green, whose new instances are serviced in before taking traffic", async () => {
    const monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const commit = commitOf(7);
    const d = await startDeploy(e, commit);
    // Scale out as a scaling policy would, once green takes canary traffic.
    const [, idle] = e.seeded.targetGroupArns;
    await until(e, "canary traffic on green", async () => {
      const w = await readWeights(e.elbv2, { listenerArn: e.seeded.listenerArn });
      return (w.find((x) => x.arn === idle)?.weight ?? 0) > 0;
    });
    e.stack.cloud.faults.add({ kind: "scale", group: e.seeded.blueGroup, desired: 6, atMs: 0 });
    const done = await settle(e, d.arn);
    expect(done.status, done.cause).toBe("SUCCEEDED");
    // VerifyCanary found unready green instances and serviced them in (its "reconciling" loop).
    expect(statesEntered(e, d.arn)).toContain("WaitForReconcile");
    const r = await e.autoscaling.send(
      new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: "tag:kiln:service", Values: ["web"] }] }),
    );
    const green = r.AutoScalingGroups!.find((g) => tag(g.Tags, "kiln:commit") === commit)!;
    const blue = r.AutoScalingGroups!.find((g) => g.AutoScalingGroupName === e.seeded.blueGroup)!;
    expect({ min: green.MinSize, max: green.MaxSize, desired: green.DesiredCapacity }).toEqual({ min: 4, max: 8, desired: 6 });
    expect(green.Instances?.filter((i) => i.LifecycleState === "InService")).toHaveLength(6);
    expect(green.SuspendedProcesses ?? []).toEqual([]);
    // Blue keeps its live capacity (6) for a rollback.
    expect(JSON.parse(tag(blue.Tags, "kiln:capacity")!)).toEqual({ min: 4, max: 8, desired: 6 });
    expect(monitor.of("I3"), monitor.report()).toEqual([]);
    expect(await monitor.finish(), monitor.report()).toEqual([]);
    // Every green instance took traffic only after the smoke test + service-in (checked by I3 each second);
    // all six are serving now.
    expect(monitor.last?.servingHealthy).toBe(6);
  });
});
