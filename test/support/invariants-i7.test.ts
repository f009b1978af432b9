/**
 * I7 (monotonic deploys) of the invariant monitor, on a real stack in virtual time: two pushes roll
 * in order without an I7 violation; then the world is changed by hand the way a redriven, superseded
 * execution would — the older push's fleet gets listener weight back — and the monitor records I7.
 */
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { ModifyListenerCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendPush } from "../../local/cli/commands.ts";
import { statesBackend } from "../../local/states/api.ts";
import { InvariantMonitor } from "./invariants.ts";
import { bootE2E, commitOf, type E2E, settle } from "./stack.ts";

process.env.KILN_LOG_LEVEL ??= "silent";

let e: E2E;
beforeAll(async () => {
  e = await bootE2E({ instances: 2 });
}, 120_000);
afterAll(async () => e?.stack.stop());

async function pushAndSettle(commit: string, before: string): Promise<string> {
  const clock = e.stack.cloud.clock;
  const r = await clock.hold(
    sendPush(e.stack.webhookUrl, e.stack.webhookSecret, { repository: "example/web", branch: "main", commit, before }),
  );
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const arn = String(r.body.executionArn);
  const done = await settle(e, arn);
  expect(done.status).toBe("SUCCEEDED");
  return arn;
}

const tag = (tags: { Key?: string; Value?: string }[] | undefined, k: string) => tags?.find((t) => t.Key === k)?.Value;

describe("I7: monotonic deploys", () => {
  it("holds for pushes rolled in order, and catches an older push's fleet taking traffic again", async () => {
    const monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const a = commitOf(0xa1);
    const b = commitOf(0xb2);
    await pushAndSettle(a, "a".repeat(40));
    await pushAndSettle(b, a);
    expect(monitor.live?.commit).toBe(b);
    expect(monitor.live?.seq).toBe(2);
    expect(monitor.of("I7"), monitor.report()).toEqual([]);
    const deploys = statesBackend(e.stack.cloud)
      .listAll()
      .filter((x) => x.stateMachineArn === e.machines.deploy);
    expect(deploys.map((d) => (JSON.parse(d.input) as { seq?: number }).seq).sort()).toEqual([1, 2]);

    // The older push's (retired) fleet gets weight back, as a redrive of its canary would do.
    const groups =
      (
        await e.autoscaling.send(
          new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: "tag:kiln:service", Values: ["web"] }] }),
        )
      ).AutoScalingGroups ?? [];
    const old = groups.find((g) => tag(g.Tags, "kiln:commit") === a)!;
    const live = groups.find((g) => tag(g.Tags, "kiln:commit") === b)!;
    expect(old.TargetGroupARNs?.[0]).toBeDefined();
    expect(old.TargetGroupARNs?.[0]).not.toBe(live.TargetGroupARNs?.[0]);
    await e.elbv2.send(
      new ModifyListenerCommand({
        ListenerArn: e.seeded.listenerArn,
        DefaultActions: [
          {
            Type: "forward",
            ForwardConfig: {
              TargetGroups: [
                { TargetGroupArn: old.TargetGroupARNs![0]!, Weight: 10 },
                { TargetGroupArn: live.TargetGroupARNs![0]!, Weight: 90 },
              ],
            },
          },
        ],
      }),
    );
    monitor.sample();
    const i7 = monitor.of("I7");
    expect(i7, monitor.report()).toHaveLength(1);
    expect(i7[0]!.message).toContain(a.slice(0, 12));
    expect(i7[0]!.message).toMatch(/request #1, older than request #2/);
    monitor.stop();
  }, 180_000);
});
