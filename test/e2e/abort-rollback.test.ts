/**
 * Abort and rollback, end to end in virtual time: the deploy, abort and rollback state machines
 * from state-machines/ run with the real handlers against the simulated cloud (one stack for the
 * file, the tests build on each other's end state), with the invariant monitor sampling every
 * simulated second.
 */
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DescribeLaunchTemplateVersionsCommand } from "@aws-sdk/client-ec2";
import { RedriveExecutionCommand } from "@aws-sdk/client-sfn";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readLock } from "../../lib/lock/index.ts";
import { readWeights } from "../../lib/roll/traffic.ts";
import { InvariantMonitor } from "../support/invariants.ts";
import {
  bootE2E,
  commitOf,
  type E2E,
  failedAt,
  settle,
  startDeploy,
  startMachine,
  statesEntered,
  until,
} from "../support/stack.ts";

let e: E2E;
let monitor: InvariantMonitor;

beforeAll(async () => {
  e = await bootE2E({});
});
afterAll(async () => e?.stack.stop());

const tag = (tags: { Key?: string; Value?: string }[] | undefined, k: string) => tags?.find((t) => t.Key === k)?.Value;

async function groups() {
  const r = await e.autoscaling.send(
    new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: "tag:kiln:service", Values: ["web"] }] }),
  );
  return r.AutoScalingGroups ?? [];
}

async function weights(): Promise<{ a: number; b: number }> {
  const w = await readWeights(e.elbv2, { listenerArn: e.seeded.listenerArn });
  const [a, b] = e.seeded.targetGroupArns;
  return { a: w.find((x) => x.arn === a)?.weight ?? 0, b: w.find((x) => x.arn === b)?.weight ?? 0 };
}

async function kilnVersions(): Promise<string[]> {
  const r = await e.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: e.seeded.launchTemplateId }));
  return (r.LaunchTemplateVersions ?? []).map((v) => v.VersionDescription ?? "").filter((d) => d.startsWith("kiln "));
}

async function lockHolder(): Promise<string | undefined> {
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(e.stack.cloud.clientConfig()));
  const item = await readLock(
    { service: "web", environment: "production" },
    { ddb, table: e.stack.info().tables.LockTable!, clock: e.stack.cloud.clock },
  );
  return item?.holder;
}

const capacityOf = (g: { MinSize?: number; MaxSize?: number; DesiredCapacity?: number } | undefined) => ({
  min: g?.MinSize,
  max: g?.MaxSize,
  desired: g?.DesiredCapacity,
});

/** A deployment of commit `n` that fails after retiring blue: RecordDeployment crashes after writing, beyond its Retry budget. */
async function failAfterRetire(n: number) {
  const fault = e.stack.cloud.faults.add({
    kind: "lambda",
    function: "kiln-local-recordDeployment",
    mode: "crash-after",
    times: 4,
  });
  try {
    const d = await startDeploy(e, commitOf(n));
    return { d, failed: await settle(e, d.arn) };
  } finally {
    e.stack.cloud.faults.remove(fault);
  }
}

async function expectInvariantsHeld() {
  const v = await monitor.finish();
  expect(v, monitor.report()).toEqual([]);
}

describe("abort", () => {
  let failedAfterRetire = "";
  it("aborts a running deployment mid-canary: traffic back on blue, green and its launch-template version deleted, lock released", async () => {
    monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const blueBefore = capacityOf((await groups()).find((g) => g.AutoScalingGroupName === e.seeded.blueGroup));
    const d = await startDeploy(e, commitOf(1));
    await until(e, "green takes canary traffic", async () => (await weights()).b > 0, 1_000, 3_600_000);
    const abortArn = await startMachine(e, e.machines.abort, "web-abort-running", { service: "web", requestedBy: "test" });
    const a = await settle(e, abortArn);
    expect(a.status, a.cause).toBe("SUCCEEDED");
    const deploy = await settle(e, d.arn);
    expect(deploy.status).toBe("ABORTED");
    const states = statesEntered(e, abortArn);
    expect(states).toContain("SettleStoppedDeployment");
    // Traffic went back before green was touched.
    expect(states.indexOf("RestoreTraffic")).toBeLessThan(states.indexOf("DeleteGreen"));
    expect(await weights()).toEqual({ a: 100, b: 0 });
    const gs = await groups();
    expect(gs.map((g) => g.AutoScalingGroupName)).toEqual([e.seeded.blueGroup]);
    expect(capacityOf(gs[0])).toEqual(blueBefore);
    expect(gs[0]?.SuspendedProcesses ?? []).toEqual([]);
    expect(await kilnVersions()).toEqual([]);
    expect(await lockHolder()).toBeUndefined();
    const out = JSON.parse(a.output!);
    expect(out.aborted).toBe(d.name);
    await expectInvariantsHeld();
  });

  it("aborts a deployment that failed after retiring blue: blue scaled back to its recorded capacity and serviced in before traffic returns", async () => {
    monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const blueBefore = capacityOf((await groups()).find((g) => g.AutoScalingGroupName === e.seeded.blueGroup));
    const { d, failed } = await failAfterRetire(2);
    failedAfterRetire = d.arn;
    expect(failed.status).toBe("FAILED");
    expect(failedAt(e, d.arn)).toBe("RecordDeployment");
    const retired = (await groups()).find((g) => g.AutoScalingGroupName === e.seeded.blueGroup);
    expect(tag(retired?.Tags, "kiln:role")).toBe("retired");
    expect(retired?.DesiredCapacity).toBe(0);
    expect(await weights()).toEqual({ a: 0, b: 100 });
    expect(await lockHolder()).toBe(d.arn);

    const abortArn = await startMachine(e, e.machines.abort, "web-abort-failed", { service: "web", executionArn: d.arn });
    const a = await settle(e, abortArn);
    expect(a.status, a.cause).toBe("SUCCEEDED");
    const states = statesEntered(e, abortArn);
    // Blue had to come back first: RestoreTraffic declined, RestoreBlue ran, then traffic moved.
    expect(states.slice(0, 3)).toEqual(["PrepareAbort", "WasRunning", "RestoreTraffic"]);
    expect(states.filter((s) => s === "RestoreTraffic").length).toBeGreaterThanOrEqual(2);
    expect(await weights()).toEqual({ a: 100, b: 0 });
    const gs = await groups();
    expect(gs.map((g) => g.AutoScalingGroupName)).toEqual([e.seeded.blueGroup]);
    expect(capacityOf(gs[0])).toEqual(blueBefore);
    expect(tag(gs[0]?.Tags, "kiln:role")).toBe("fleet");
    for (const k of ["kiln:delete-after", "kiln:retired-by", "kiln:capacity"]) expect(tag(gs[0]?.Tags, k)).toBeUndefined();
    expect(await kilnVersions()).toEqual([]);
    expect(await lockHolder()).toBeUndefined();
    await expectInvariantsHeld();
  });

  it("is a reconciler: aborting the same deployment again changes nothing and succeeds", async () => {
    monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const before = (await groups()).map((g) => [g.AutoScalingGroupName, capacityOf(g)]);
    const failedDeploy = failedAfterRetire;
    const abortArn = await startMachine(e, e.machines.abort, "web-abort-again", { service: "web", executionArn: failedDeploy });
    const a = await settle(e, abortArn);
    expect(a.status, a.cause).toBe("SUCCEEDED");
    expect(statesEntered(e, abortArn)).not.toContain("SettleStoppedDeployment");
    expect((await groups()).map((g) => [g.AutoScalingGroupName, capacityOf(g)])).toEqual(before);
    expect(await weights()).toEqual({ a: 100, b: 0 });
    await expectInvariantsHeld();
  });

  it("refuses to abort a deployment that succeeded (rollback is the tool) and changes nothing", async () => {
    const d = await startDeploy(e, commitOf(3));
    expect((await settle(e, d.arn)).status).toBe("SUCCEEDED");
    const abortArn = await startMachine(e, e.machines.abort, "web-abort-succeeded", { service: "web", executionArn: d.arn });
    const a = await settle(e, abortArn);
    expect(a.status).toBe("FAILED");
    expect(a.cause).toMatch(/succeeded: there is nothing to abort.*kiln rollback web/);
    expect(await weights()).toEqual({ a: 0, b: 100 });
    expect(await lockHolder()).toBeUndefined();
  });
});

describe("rollback", () => {
  it("inside the window: the previous fleet comes back at the current capacity, serviced in, takes all traffic; the current one is retired", async () => {
    monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const before = await groups();
    const current = before.find((g) => tag(g.Tags, "kiln:role") === "fleet")!;
    const previous = before.find((g) => tag(g.Tags, "kiln:role") === "retired")!;
    expect(previous.AutoScalingGroupName).toBe(e.seeded.blueGroup);
    const r = await startMachine(e, e.machines.rollback, "web-rollback-1", { service: "web" });
    const rb = await settle(e, r);
    expect(rb.status, rb.cause).toBe("SUCCEEDED");
    expect(await weights()).toEqual({ a: 100, b: 0 });
    const after = await groups();
    const prevNow = after.find((g) => g.AutoScalingGroupName === previous.AutoScalingGroupName)!;
    const curNow = after.find((g) => g.AutoScalingGroupName === current.AutoScalingGroupName)!;
    expect(tag(prevNow.Tags, "kiln:role")).toBe("fleet");
    expect(capacityOf(prevNow)).toEqual(capacityOf(current));
    expect(tag(curNow.Tags, "kiln:role")).toBe("retired");
    expect(tag(curNow.Tags, "kiln:retired-by")).toBe("web-rollback-1");
    expect(JSON.parse(tag(curNow.Tags, "kiln:capacity")!)).toEqual({
      min: current.MinSize,
      max: current.MaxSize,
      desired: current.DesiredCapacity,
    });
    expect(curNow.DesiredCapacity).toBe(0);
    expect(JSON.parse(rb.output!).live.commit).toBe(e.seeded.commit);
    expect(await lockHolder()).toBeUndefined();
    await expectInvariantsHeld();
  });

  it("outside the window: fails at PrepareRollback with a cause that says why and what to do, changing nothing", async () => {
    await e.stack.cloud.clock.sleep(61 * 60_000);
    const before = (await groups()).map((g) => [g.AutoScalingGroupName, capacityOf(g)]);
    const r = await startMachine(e, e.machines.rollback, "web-rollback-late", { service: "web" });
    const rb = await settle(e, r);
    expect(rb.status).toBe("FAILED");
    expect(statesEntered(e, r)).toEqual(["PrepareRollback"]);
    expect(rb.cause).toMatch(/outside the fast-rollback window|no previous fleet/);
    expect(rb.cause).toMatch(/kiln deploy web --commit/);
    expect((await groups()).map((g) => [g.AutoScalingGroupName, capacityOf(g)])).toEqual(before);
    expect(await weights()).toEqual({ a: 100, b: 0 });
    expect(await lockHolder()).toBeUndefined();
  });
});

describe("invariant monitor", () => {
  it("records I1 and I2 when traffic is sent to a target group without healthy targets", async () => {
    const m = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const { setWeights } = await import("../../lib/roll/traffic.ts");
    const [a, b] = e.seeded.targetGroupArns;
    await setWeights(e.elbv2, { listenerArn: e.seeded.listenerArn }, [
      { arn: a, weight: 50 },
      { arn: b, weight: 50 },
    ]);
    await e.stack.cloud.clock.sleep(2_000);
    m.stop();
    expect(m.of("I1").length).toBeGreaterThan(0);
    expect(m.of("I1")[0]?.message).toMatch(/kiln-web-b has weight 50 and no healthy target/);
    await setWeights(e.elbv2, { listenerArn: e.seeded.listenerArn }, [
      { arn: a, weight: 100 },
      { arn: b, weight: 0 },
    ]);
  });
});

describe("abort, again", () => {
  it("an abort that failed halfway holds the lock; aborting again takes over and finishes; redriving the failed one changes nothing", async () => {
    monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const { d, failed } = await failAfterRetire(4);
    expect(failed.status).toBe("FAILED");
    // The first abort puts traffic and blue back, then DeleteGreen fails past its Retry budget.
    const deleteCrash = e.stack.cloud.faults.add({
      kind: "lambda",
      function: "kiln-local-deleteGreen",
      mode: "crash-before",
      times: 10,
    });
    const first = await startMachine(e, e.machines.abort, "web-abort-first", { service: "web", executionArn: d.arn });
    expect((await settle(e, first)).status).toBe("FAILED");
    expect(failedAt(e, first)).toBe("DeleteGreen");
    e.stack.cloud.faults.remove(deleteCrash);
    expect(await lockHolder()).toBe(first);

    // The operator aborts the same deployment again (not a redrive of the abort): it takes the lock over.
    const second = await startMachine(e, e.machines.abort, "web-abort-second", { service: "web", executionArn: d.arn });
    const a = await settle(e, second);
    expect(a.status, a.cause).toBe("SUCCEEDED");
    expect(await lockHolder()).toBeUndefined();
    const gs = await groups();
    expect(gs.length).toBe(1);
    const live = gs[0]!.AutoScalingGroupName;
    expect((await kilnVersions()).filter((v) => v.includes(d.name))).toEqual([]);

    // Redriving the first abort afterwards: its steps see it no longer holds the lock and touch nothing.
    await e.sfn.send(new RedriveExecutionCommand({ executionArn: first }));
    const redriven = await settle(e, first);
    expect(redriven.status).toBe("FAILED");
    expect(redriven.error).toBe("kiln.Superseded");
    expect(failedAt(e, first)).toBe("DeleteGreen");
    expect((await groups()).map((g) => g.AutoScalingGroupName)).toEqual([live]);
    expect(await lockHolder()).toBeUndefined();
    await expectInvariantsHeld();
  });
});
