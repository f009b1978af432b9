/**
 * Deployment safety under real orderings, on the local stack (virtual time): environments are
 * separate units, no older commit goes live unasked (I7), and operators' redrives of superseded
 * executions change nothing. Each `it` is named after the scenario it reproduces.
 */
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeImagesCommand, DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { DescribeExecutionCommand, RedriveExecutionCommand } from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readWeights } from "../../lib/roll/traffic.ts";
import { sendPush } from "../../local/cli/commands.ts";
import { type SeedResult, seedService } from "../../local/seed.ts";
import { statesBackend } from "../../local/states/api.ts";
import { InvariantMonitor } from "../support/invariants.ts";
import { bootE2E, commitOf, type E2E, failedAt, settle, statesEntered, until } from "../support/stack.ts";

let e: E2E;
let staging: SeedResult;

beforeAll(async () => {
  e = await bootE2E({ instances: 2 });
  staging = await seedService(e.stack.cloud, { environment: "staging", commit: "b".repeat(40), instances: 2 });
}, 600_000);
afterAll(async () => e?.stack.stop());

const tag = (tags: { Key?: string; Value?: string }[] | undefined, k: string) => tags?.find((t) => t.Key === k)?.Value;

/** Commits serving traffic (weight > 0) on a listener, by the groups in those target groups. */
async function liveCommits(listenerArn: string): Promise<string[]> {
  const w = (await readWeights(e.elbv2, { listenerArn })).filter((x) => x.weight > 0).map((x) => x.arn);
  const r = await e.autoscaling.send(
    new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: "tag:kiln:service", Values: ["web"] }] }),
  );
  return (r.AutoScalingGroups ?? [])
    .filter((g) => (g.DesiredCapacity ?? 0) > 0 && (g.TargetGroupARNs ?? []).some((a) => w.includes(a)))
    .map((g) => tag(g.Tags, "kiln:commit")!)
    .sort();
}

const push = (branch: string, commit: string, before?: string) =>
  sendPush(e.stack.webhookUrl, e.stack.webhookSecret, {
    repository: "example/web",
    branch,
    commit,
    ...(before ? { before } : {}),
  });

async function pushed(branch: string, commit: string, before?: string): Promise<string> {
  const r = await push(branch, commit, before);
  expect(r.status).toBe(202);
  return (
    (r.body.executionArn as string) ?? `${e.machines.deploy.replace(":stateMachine:", ":execution:")}:${r.body.executionName}`
  );
}

describe("deployment safety under real orderings", () => {
  it("a push to stage rolls only staging, and the same commit can later go to production", async () => {
    const c = commitOf(0x51);
    const prodBefore = await liveCommits(e.seeded.listenerArn);
    const stg = await pushed("stage", c);
    const stgEnd = await settle(e, stg);
    expect(stgEnd.status, `${failedAt(e, stg)}: ${stgEnd.error} ${stgEnd.cause}`).toBe("SUCCEEDED");
    expect(JSON.parse((await e.sfn.send(new DescribeExecutionCommand({ executionArn: stg }))).input!)).toMatchObject({
      environment: "staging",
    });
    expect(await liveCommits(staging.listenerArn)).toEqual([c]);
    // Production's traffic and fleet are untouched.
    expect(await liveCommits(e.seeded.listenerArn)).toEqual(prodBefore);
    // The same commit to main is a new deployment of production (not a duplicate of staging's).
    const prd = await pushed("main", c);
    expect(prd).not.toBe(stg);
    expect((await settle(e, prd)).status).toBe("SUCCEEDED");
    expect(await liveCommits(e.seeded.listenerArn)).toEqual([c]);
  }, 600_000);

  it("staging and production deploying at the same time: every invariant holds in each environment", async () => {
    const [p, st] = [commitOf(0x55), commitOf(0x56)];
    const prodMonitor = InvariantMonitor.start(e.stack.cloud, { service: "web", environment: "production" });
    const stgMonitor = InvariantMonitor.start(e.stack.cloud, { service: "web", environment: "staging" });
    const prd = await pushed("main", p, commitOf(0x51));
    const stg = await pushed("stage", st, commitOf(0x51));
    const [prdEnd, stgEnd] = await Promise.all([settle(e, prd), settle(e, stg)]);
    expect(prdEnd.status, prdEnd.cause).toBe("SUCCEEDED");
    expect(stgEnd.status, stgEnd.cause).toBe("SUCCEEDED");
    // They really ran at once: both were changing their fleets in the same minutes.
    const entered = (arn: string, state: string) =>
      statesBackend(e.stack.cloud)
        .history(arn)
        .find((h) => h.type.endsWith("StateEntered") && (h.stateEnteredEventDetails as { name?: string }).name === state)!
        .timestamp;
    expect(new Date(entered(stg, "CreateGreenFleet")).getTime()).toBeLessThan(new Date(entered(prd, "RetireBlue")).getTime());
    expect(new Date(entered(prd, "CreateGreenFleet")).getTime()).toBeLessThan(new Date(entered(stg, "RetireBlue")).getTime());
    expect(await liveCommits(e.seeded.listenerArn)).toEqual([p]);
    expect(await liveCommits(staging.listenerArn)).toEqual([st]);
    expect(await prodMonitor.finish(), prodMonitor.report()).toEqual([]);
    expect(await stgMonitor.finish(), stgMonitor.report()).toEqual([]);
    expect(prodMonitor.live?.commit).toBe(p);
    expect(stgMonitor.live?.commit).toBe(st);
  }, 600_000);

  it("a redelivery of a replaced push after the newest went live starts nothing", async () => {
    const [a, b, c] = [commitOf(0x61), commitOf(0x62), commitOf(0x63)];
    const aArn = await pushed("main", a);
    await pushed("main", b, a);
    const cRes = await push("main", c, b);
    expect(cRes.body).toMatchObject({ queued: true, replaced: b });
    expect((await settle(e, aArn)).status).toBe("SUCCEEDED");
    const cArn = `${e.machines.deploy.replace(":stateMachine:", ":execution:")}:${cRes.body.executionName}`;
    expect((await settle(e, cArn)).status).toBe("SUCCEEDED");
    // GitHub's "Redeliver" of B.
    const again = await push("main", b, a);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ ignored: true, reason: expect.stringMatching(/redelivery/) });
    expect(
      statesBackend(e.stack.cloud)
        .listAll()
        .filter((x) => x.executionArn.includes(b.slice(0, 12))),
    ).toHaveLength(0);
    expect(await liveCommits(e.seeded.listenerArn)).toEqual([c]);
  }, 600_000);

  it.each([
    ["PruneImages", "kiln-local-pruneImages", 0x71],
    ["LaunchBuilder", "kiln-local-launchBuilder", 0x73],
    // A poll of the roll phase: without its lock check the redrive waited on the deleted green until 25,000 history events.
    ["WaitGreenHealthy", "kiln-local-waitGreenHealthy", 0x75],
  ])(
    "a redrive of a deployment that failed at %s and was superseded by a newer push fails there with kiln.Superseded and launches, builds or deletes nothing",
    async (step, fn, n) => {
      // A fails in the bake (its step crashes beyond its retries), B supersedes it (A is aborted) and succeeds.
      const [a, b] = [commitOf(n), commitOf(n + 1)];
      e.stack.cloud.faults.add({ kind: "lambda", function: fn, mode: "crash-before", times: 1_000 });
      const aArn = await pushed("main", a);
      expect((await settle(e, aArn)).status).toBe("FAILED");
      expect(failedAt(e, aArn)).toBe(step);
      e.stack.cloud.faults.clear("lambda");
      const bRes = await push("main", b, a);
      expect(bRes.body).toMatchObject({ queued: true, superseding: { failedExecutionArn: aArn } });
      const bArn = `${e.machines.deploy.replace(":stateMachine:", ":execution:")}:${bRes.body.executionName}`;
      // B starts once the abort of A releases the lock to it.
      await until(
        e,
        "B started",
        () =>
          statesBackend(e.stack.cloud)
            .listAll()
            .some((x) => x.executionArn === bArn),
        5_000,
      );
      expect((await settle(e, bArn)).status).toBe("SUCCEEDED");
      const images = async () =>
        (await e.ec2.send(new DescribeImagesCommand({ Owners: ["self"] }))).Images?.map((i) => i.ImageId).sort();
      const imagesBefore = await images();
      // The operator redrives A from its page: the redriven step itself refuses, before any call.
      const before = statesEntered(e, aArn).length;
      await e.sfn.send(new RedriveExecutionCommand({ executionArn: aArn }));
      const redriven = await settle(e, aArn);
      expect(redriven.status).toBe("FAILED");
      expect(redriven.error).toBe("kiln.Superseded");
      expect(redriven.cause).toMatch(/no longer holds the lock of web\/production/);
      expect(failedAt(e, aArn)).toBe(step);
      // The redrive entered only the step it resumed at, which failed at once.
      expect(statesEntered(e, aArn).slice(before)).toEqual([step]);
      expect(await images()).toEqual(imagesBefore);
      const builders = await e.ec2.send(
        new DescribeInstancesCommand({ Filters: [{ Name: "tag:kiln:execution", Values: [aArn.split(":").at(-1)!] }] }),
      );
      const launched = (builders.Reservations ?? []).flatMap((r) => r.Instances ?? []);
      // A's one builder (none when it failed launching it); the redrive launched no other.
      expect(launched.filter((i) => i.Tags?.some((t) => t.Key === "kiln:role" && t.Value === "builder")).length).toBe(
        step === "LaunchBuilder" ? 0 : 1,
      );
      expect(await liveCommits(e.seeded.listenerArn)).toEqual([b]);
    },
    600_000,
  );
});
