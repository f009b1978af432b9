import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../../lib/clock.ts";
import {
  acquireLock,
  DEFAULT_LEASE_MS,
  DEFAULT_PENDING_LEASE_MS,
  enqueue,
  executionArnFor,
  heartbeat,
  readLock,
  recordFailure,
  recordSuccess,
  releaseAndStartNext,
  releaseLock,
  type StartDeps,
  startOrQueue,
  supersede,
} from "../../../lib/lock/index.ts";
import * as rules from "../../../lib/lock/rules.ts";
import type { DeployInput, LockItem } from "../../../lib/lock/types.ts";
import { executionName } from "../../../lib/names.ts";
import { ABORT_SM, DEPLOY_SM, type Dynamo, FakeSfn, startDynamo } from "./fakes.ts";

const sha = (n: number) => n.toString(16).padStart(8, "0").repeat(5);
const arn = (name: string, sm = DEPLOY_SM) => executionArnFor(sm, name);
const pushArn = (service: string, n: number) => arn(executionName(service, sha(n), "push"));
const push = (service: string, n: number): DeployInput => ({
  service,
  commit: sha(n),
  trigger: "push",
  repository: "acme/web",
  branch: "main",
});
const T0 = Date.parse("2026-01-05T09:00:00Z");

describe("lock rules (pure)", () => {
  const item = (over: Partial<LockItem>): LockItem => ({ service: "web", version: 1, updatedAt: T0, ...over });
  it.each<[string, LockItem | undefined, rules.HolderStatus | undefined, boolean]>([
    ["no item", undefined, undefined, true],
    ["no holder", item({}), undefined, true],
    ["lease valid", item({ holder: "a", leaseExpiresAt: T0 + 1 }), undefined, false],
    ["lease expired", item({ holder: "a", leaseExpiresAt: T0 }), undefined, true],
    ["lease expired but holder RUNNING", item({ holder: "a", leaseExpiresAt: T0 - 1 }), "RUNNING", false],
    ["lease valid but holder SUCCEEDED without releasing", item({ holder: "a", leaseExpiresAt: T0 + 9e6 }), "SUCCEEDED", true],
    ["holder FAILED", item({ holder: "a", leaseExpiresAt: T0 - 1 }), "FAILED", false],
    ["holder TIMED_OUT", item({ holder: "a", leaseExpiresAt: T0 - 1 }), "TIMED_OUT", false],
    ["holder ABORTED", item({ holder: "a", leaseExpiresAt: T0 - 1 }), "ABORTED", false],
    [
      "claim never started, lease expired",
      item({ holder: "a", holderState: "starting", leaseExpiresAt: T0 - 1 }),
      "MISSING",
      true,
    ],
    [
      "recorded unresolved failure, lease expired",
      item({
        holder: "a",
        leaseExpiresAt: T0 - 1,
        lastFailed: { executionArn: "a", status: "FAILED", unresolved: true, failedAt: 0 },
      }),
      undefined,
      false,
    ],
    [
      "abort of a failure holds, lease expired, abort missing",
      item({
        holder: "ab",
        leaseExpiresAt: T0 - 1,
        lastFailed: { executionArn: "a", abortExecutionArn: "ab", status: "FAILED", unresolved: true, failedAt: 0 },
      }),
      "MISSING",
      false,
    ],
  ])("isFree: %s", (_, it_, status, free) => {
    expect(rules.isFree(it_, T0, status)).toBe(free);
  });

  const t = { now: T0, leaseMs: 1000, pendingLeaseMs: 100 };
  it.each<[string, LockItem | undefined, string, boolean, boolean]>([
    ["free", undefined, "me", true, false],
    ["held by me (redrive)", item({ holder: "me", leaseExpiresAt: T0 + 5 }), "me", true, true],
    ["my starter's claim", item({ holder: "me", holderState: "starting", leaseExpiresAt: T0 + 5 }), "me", true, true],
    ["held by other", item({ holder: "other", leaseExpiresAt: T0 + 5 }), "me", false, false],
    ["other's lease expired", item({ holder: "other", leaseExpiresAt: T0 - 5 }), "me", true, false],
    [
      "other failed unresolved, lease expired",
      item({
        holder: "other",
        leaseExpiresAt: T0 - 5,
        lastFailed: { executionArn: "other", status: "FAILED", unresolved: true, failedAt: 0 },
      }),
      "me",
      false,
      false,
    ],
  ])("acquire: %s", (_, it_, me, ok, reacquired) => {
    const d = rules.acquire(it_, { service: "web", executionArn: me }, t);
    expect(d.ok).toBe(ok);
    if (d.ok) {
      expect(d.reacquired).toBe(reacquired);
      expect(d.item).toMatchObject({ holder: me, holderState: "running", leaseExpiresAt: T0 + 1000 });
    }
  });

  it("acquire lets an abort take the lock from the deployment it aborts", () => {
    const failed = item({
      holder: "dep",
      leaseExpiresAt: T0 + 5,
      lastFailed: { executionArn: "dep", status: "FAILED", unresolved: true, failedAt: 0 },
    });
    const d = rules.acquire(failed, { service: "web", executionArn: "abort", abortedExecutionArn: "dep" }, t);
    expect(d).toMatchObject({
      ok: true,
      tookOverFrom: "dep",
      item: { holder: "abort", lastFailed: { abortExecutionArn: "abort", unresolved: true } },
    });
  });
});

describe("service lock (DynamoDB conditional writes, dynalite)", () => {
  let dyn: Dynamo;
  let clock: VirtualClock;
  let sfn: FakeSfn;
  let deps: StartDeps;
  let n = 0;
  let service: string;
  beforeAll(async () => {
    dyn = await startDynamo();
  });
  afterAll(async () => dyn?.stop());
  beforeEach(() => {
    clock = new VirtualClock(T0);
    sfn = new FakeSfn();
    service = `svc${++n}`;
    deps = { ddb: dyn.ddb, table: dyn.table, clock, sfn, deployStateMachineArn: DEPLOY_SM, abortStateMachineArn: ABORT_SM };
  });

  it("grants one holder; others see who holds it; the holder re-acquires idempotently", async () => {
    const a = arn("a");
    await expect(acquireLock({ service, executionArn: a }, deps)).resolves.toMatchObject({ acquired: true, reacquired: false });
    await expect(acquireLock({ service, executionArn: arn("b") }, deps)).resolves.toMatchObject({ acquired: false, holder: a });
    await expect(acquireLock({ service, executionArn: a }, deps)).resolves.toMatchObject({ acquired: true, reacquired: true });
  });

  it("lets exactly one of 20 racing executions acquire", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => acquireLock({ service, executionArn: arn(`r${i}`) }, deps)),
    );
    expect(results.filter((r) => r.acquired)).toHaveLength(1);
  });

  it("expires a lease that is not renewed (virtual clock), and the old holder learns it lost the lock", async () => {
    const a = arn("a");
    const b = arn("b");
    await acquireLock({ service, executionArn: a }, deps);
    await clock.sleep(DEFAULT_LEASE_MS - 1);
    await expect(acquireLock({ service, executionArn: b }, deps)).resolves.toMatchObject({ acquired: false });
    await clock.sleep(1);
    await expect(acquireLock({ service, executionArn: b }, deps)).resolves.toMatchObject({ acquired: true, tookOverFrom: a });
    await expect(heartbeat({ service, executionArn: a }, deps)).rejects.toMatchObject({ name: "kiln.LockLost" });
  });

  it("heartbeat keeps the lease alive past its original end", async () => {
    const a = arn("a");
    await acquireLock({ service, executionArn: a }, deps);
    for (let i = 0; i < 4; i++) {
      await clock.sleep(DEFAULT_LEASE_MS / 2);
      await heartbeat({ service, executionArn: a }, deps);
    }
    await expect(acquireLock({ service, executionArn: arn("b") }, deps)).resolves.toMatchObject({ acquired: false, holder: a });
  });

  it("an unresolved failure keeps the lock past the lease until the failed one is redriven to success", async () => {
    const a = arn("a");
    await acquireLock({ service, executionArn: a }, deps);
    expect(await recordFailure(service, a, "FAILED", deps)).toBe(true);
    await clock.sleep(DEFAULT_LEASE_MS * 3);
    await expect(acquireLock({ service, executionArn: arn("b") }, deps)).resolves.toMatchObject({
      acquired: false,
      reason: expect.stringMatching(/failed deployment/),
    });
    // Redrive: the same execution re-acquires, then releases, which resolves the failure.
    await expect(acquireLock({ service, executionArn: a }, deps)).resolves.toMatchObject({ acquired: true, reacquired: true });
    await expect(releaseLock({ service, executionArn: a }, deps)).resolves.toMatchObject({ released: true });
    expect((await readLock(service, deps))?.lastFailed).toMatchObject({
      unresolved: false,
      resolution: expect.stringMatching(/after redrive/),
    });
  });

  it("records failures only for the holder, and successes resolve them", async () => {
    const a = arn("a");
    await acquireLock({ service, executionArn: a }, deps);
    expect(await recordFailure(service, arn("never-held"), "FAILED", deps)).toBe(false);
    expect(await recordFailure(service, a, "TIMED_OUT", deps)).toBe(true);
    expect(await recordFailure(service, a, "TIMED_OUT", deps)).toBe(false); // redelivered event
    expect(await recordSuccess(service, a, deps)).toBe(true);
    expect((await readLock(service, deps))?.lastFailed?.unresolved).toBe(false);
  });

  it("only the holder releases", async () => {
    await acquireLock({ service, executionArn: arn("a") }, deps);
    await expect(releaseLock({ service, executionArn: arn("b") }, deps)).resolves.toMatchObject({ released: false });
    await expect(releaseLock({ service, executionArn: arn("a") }, deps)).resolves.toMatchObject({
      released: true,
      reason: "released; nothing queued",
    });
    await expect(releaseLock({ service, executionArn: arn("a") }, deps)).resolves.toMatchObject({
      released: false,
      reason: "the lock is not held",
    });
  });

  it("latest wins: a newer push replaces the queued one, an older push is ignored, release starts the newest", async () => {
    const first = await startOrQueue({ input: push(service, 1), pushedAt: T0 + 1000 }, deps);
    expect(first).toMatchObject({ action: "started", duplicate: false, executionArn: pushArn(service, 1) });
    await expect(startOrQueue({ input: push(service, 2), pushedAt: T0 + 2000 }, deps)).resolves.toMatchObject({
      action: "queued",
      position: 1,
      unchanged: false,
    });
    await expect(startOrQueue({ input: push(service, 3), pushedAt: T0 + 3000 }, deps)).resolves.toMatchObject({
      action: "queued",
      replaced: sha(2),
    });
    await expect(startOrQueue({ input: push(service, 2), pushedAt: T0 + 2000 }, deps)).resolves.toMatchObject({
      action: "ignored",
      reason: expect.stringMatching(/newer commit/),
    });
    await expect(startOrQueue({ input: push(service, 0), pushedAt: T0 }, deps)).resolves.toMatchObject({
      action: "ignored",
      reason: expect.stringMatching(/pushed before/),
    });
    await expect(startOrQueue({ input: push(service, 3), pushedAt: T0 + 3000 }, deps)).resolves.toMatchObject({
      action: "queued",
      unchanged: true,
    });
    expect(sfn.starts.map((s) => s.name)).toEqual([executionName(service, sha(1), "push")]);

    await acquireLock({ service, executionArn: pushArn(service, 1) }, deps);
    sfn.end(pushArn(service, 1), "SUCCEEDED");
    const rel = await releaseAndStartNext({ service, executionArn: pushArn(service, 1) }, deps);
    expect(rel).toMatchObject({ released: true, next: { commit: sha(3) }, started: [{ commit: sha(3), status: "started" }] });
    expect(JSON.parse(sfn.starts[1]!.input)).toMatchObject({ service, commit: sha(3), trigger: "push" });
    const item = await readLock(service, deps);
    expect(item).toMatchObject({ holder: pushArn(service, 3), holderState: "starting", previousHolder: pushArn(service, 1) });
    expect(item?.queued).toBeUndefined();
    // The started execution's own AcquireLock is a re-acquire of the claim made for it.
    await expect(acquireLock({ service, executionArn: pushArn(service, 3) }, deps)).resolves.toMatchObject({
      acquired: true,
      reacquired: true,
    });
  });

  it("a retried ReleaseLock after the hand-off re-issues the same start (idempotent)", async () => {
    await startOrQueue({ input: push(service, 1) }, deps);
    await startOrQueue({ input: push(service, 2) }, deps);
    sfn.failStarts = ["ThrottlingException"];
    await expect(releaseAndStartNext({ service, executionArn: pushArn(service, 1) }, deps)).rejects.toMatchObject({
      name: "ThrottlingException",
    });
    const again = await releaseAndStartNext({ service, executionArn: pushArn(service, 1) }, deps);
    expect(again).toMatchObject({ released: true, started: [{ commit: sha(2), status: "started" }] });
    const third = await releaseAndStartNext({ service, executionArn: pushArn(service, 1) }, deps);
    // StartExecution with the same name and input as a RUNNING execution answers 200 (reference §6.2).
    expect(third.started).toEqual([{ executionArn: pushArn(service, 2), commit: sha(2), status: "started" }]);
    expect(sfn.starts).toHaveLength(2);
  });

  it("a redelivery while running returns the same execution; after it ran, nothing runs again", async () => {
    const a = await startOrQueue({ input: push(service, 1) }, deps);
    await expect(startOrQueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({
      action: "started",
      duplicate: true,
      executionArn: a.action === "started" ? a.executionArn : "",
      status: "RUNNING",
    });
    sfn.end(pushArn(service, 1), "SUCCEEDED");
    await releaseAndStartNext({ service, executionArn: pushArn(service, 1) }, deps);
    await expect(startOrQueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({
      action: "started",
      duplicate: true,
      status: "SUCCEEDED",
    });
    expect(sfn.starts).toHaveLength(1);
    expect((await readLock(service, deps))?.holder).toBeUndefined();
  });

  it("gives the claim back when StartExecution fails", async () => {
    sfn.failStarts = ["ServiceUnavailable"];
    await expect(startOrQueue({ input: push(service, 1) }, deps)).rejects.toMatchObject({ name: "ServiceUnavailable" });
    expect((await readLock(service, deps))?.holder).toBeUndefined();
    await expect(startOrQueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({ action: "started", duplicate: false });
  });

  it("a claim whose start never happened (crash) frees the lock after the short pending lease", async () => {
    await acquireLock({ service, executionArn: arn("ghost") }, { ...deps, leaseMs: DEFAULT_PENDING_LEASE_MS });
    await expect(startOrQueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({ action: "queued" });
    await clock.sleep(DEFAULT_PENDING_LEASE_MS);
    // ghost is MISSING in Step Functions and its lease ran out: the next push takes over.
    await expect(startOrQueue({ input: push(service, 2) }, deps)).resolves.toMatchObject({
      action: "started",
      tookOverFrom: arn("ghost"),
    });
  });

  it("a push after a failed, unresolved deployment aborts it first, then deploys", async () => {
    const failed = pushArn(service, 1);
    await startOrQueue({ input: push(service, 1) }, deps);
    await acquireLock({ service, executionArn: failed }, deps);
    sfn.end(failed, "FAILED", { error: "kiln.StepFailed" });
    const r = await startOrQueue({ input: push(service, 2) }, deps);
    const abortArn = arn(`abort-${executionName(service, sha(1), "push")}`, ABORT_SM);
    expect(r).toMatchObject({ action: "queued", superseding: { failedExecutionArn: failed, abortExecutionArn: abortArn } });
    expect(sfn.startsOf(ABORT_SM)).toHaveLength(1);
    expect(JSON.parse(sfn.startsOf(ABORT_SM)[0]!.input)).toMatchObject({ service, executionArn: failed });
    // A newer push while aborting just replaces the queued commit; no second abort.
    await expect(startOrQueue({ input: push(service, 3) }, deps)).resolves.toMatchObject({
      action: "queued",
      replaced: sha(2),
      reason: expect.stringMatching(/abort/),
    });
    expect(sfn.startsOf(ABORT_SM)).toHaveLength(1);
    expect(await readLock(service, deps)).toMatchObject({
      holder: abortArn,
      lastFailed: { executionArn: failed, abortExecutionArn: abortArn, unresolved: true, supersededBy: sha(2) },
    });
    // The abort releases (ReleaseLock with its own ARN): the failure is resolved and the newest commit starts.
    sfn.end(abortArn, "SUCCEEDED");
    const rel = await releaseAndStartNext({ service, executionArn: abortArn, abortedExecutionArn: failed }, deps);
    expect(rel.started).toEqual([{ executionArn: pushArn(service, 3), commit: sha(3), status: "started" }]);
    expect((await readLock(service, deps))?.lastFailed).toMatchObject({
      unresolved: false,
      resolution: `aborted by ${abortArn}`,
    });
  });

  it("supersede(service) is idempotent", async () => {
    const failed = pushArn(service, 1);
    await startOrQueue({ input: push(service, 1) }, deps);
    sfn.end(failed, "TIMED_OUT");
    await expect(supersede(service, deps)).resolves.toMatchObject({
      action: "aborting",
      failedExecutionArn: failed,
      started: true,
    });
    await expect(supersede(service, deps)).resolves.toMatchObject({
      action: "aborting",
      failedExecutionArn: failed,
      started: false,
    });
    expect(sfn.startsOf(ABORT_SM)).toHaveLength(1);
  });

  it("without an abort state machine a failed deployment blocks the queue, and says so", async () => {
    const failed = pushArn(service, 1);
    await startOrQueue({ input: push(service, 1) }, deps);
    sfn.end(failed, "FAILED");
    const { abortStateMachineArn: _, ...noAbort } = deps;
    await expect(startOrQueue({ input: push(service, 2) }, noAbort)).resolves.toMatchObject({
      action: "queued",
      blockedBy: failed,
      reason: expect.stringMatching(/KILN_ABORT_STATE_MACHINE_ARN/),
    });
  });

  it.each<[string, "RUNNING" | "FAILED", RegExp]>([
    ["running", "RUNNING", /in progress/],
    ["failed", "FAILED", /unresolved/],
  ])("ifBusy=skip never queues behind a %s deployment", async (_, status, reason) => {
    await startOrQueue({ input: push(service, 1) }, deps);
    if (status !== "RUNNING") sfn.end(pushArn(service, 1), status);
    const r = await startOrQueue(
      { input: { service, commit: sha(1), trigger: "rotation" }, nonce: "20260105", ifBusy: "skip" },
      deps,
    );
    expect(r).toMatchObject({ action: "busy", reason: expect.stringMatching(reason) });
    expect((await readLock(service, deps))?.queued).toBeUndefined();
  });

  it("enqueue queues behind a holder and refuses when the lock is free", async () => {
    await expect(enqueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({
      action: "ignored",
      reason: expect.stringMatching(/free/),
    });
    await acquireLock({ service, executionArn: arn("op") }, deps);
    await expect(enqueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({ action: "queued", position: 1 });
    await expect(releaseLock({ service, executionArn: arn("op") }, deps)).resolves.toMatchObject({ next: { commit: sha(1) } });
  });
});
