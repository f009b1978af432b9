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
  reconcileQueue,
  releaseAndStartNext,
  releaseLock,
  type StartDeps,
  startOrQueue,
  supersede,
} from "../../../lib/lock/index.ts";
import * as rules from "../../../lib/lock/rules.ts";
import type { DeployInput, LockItem } from "../../../lib/lock/types.ts";
import { ABORT_SM, DEPLOY_SM, type Dynamo, FakeSfn, startDynamo } from "./fakes.ts";
import { holderCheckFromEnv } from "../../../lib/lock/holder.ts";

const sha = (n: number) => n.toString(16).padStart(8, "0").repeat(5);
const arn = (name: string, sm = DEPLOY_SM) => executionArnFor(sm, name);
/** The n-th push of a branch: its `before` is the (n-1)-th commit, as GitHub sends it. */
const push = (service: string, n: number, over: Partial<DeployInput> = {}): DeployInput => ({
  service,
  environment: "production",
  commit: sha(n),
  trigger: "push",
  repository: "acme/web",
  branch: "main",
  ...(n > 0 ? { before: sha(n - 1) } : {}),
  ...over,
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
    // A deployment only ever gets the lock the queue gave it (I7): never a free one.
    ["free: not claimed for me", undefined, "me", false, false],
    ["held by me (redrive)", item({ holder: "me", leaseExpiresAt: T0 + 5 }), "me", true, true],
    ["my starter's claim", item({ holder: "me", holderState: "starting", leaseExpiresAt: T0 + 5 }), "me", true, true],
    ["held by other", item({ holder: "other", leaseExpiresAt: T0 + 5 }), "me", false, false],
    ["other's lease expired: still not mine", item({ holder: "other", leaseExpiresAt: T0 - 5 }), "me", false, false],
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

  it("acquire lets a rollback (operator-named) take a free lock, but not a held one", () => {
    expect(rules.acquire(undefined, { service: "web", executionArn: "rb", mayTakeFree: true }, t)).toMatchObject({ ok: true });
    expect(
      rules.acquire(
        item({ holder: "other", leaseExpiresAt: T0 + 5 }),
        { service: "web", executionArn: "rb", mayTakeFree: true },
        t,
      ),
    ).toMatchObject({ ok: false });
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

  it("a deployed step without KILN_LOCK_TABLE fails kiln.ConfigInvalid instead of skipping the lock check", () => {
    const saved = process.env.KILN_LOCK_TABLE;
    delete process.env.KILN_LOCK_TABLE;
    try {
      expect(() => holderCheckFromEnv({ dynamodb: {} as never })).toThrow(
        expect.objectContaining({ name: "kiln.ConfigInvalid", message: expect.stringMatching(/KILN_LOCK_TABLE/) }),
      );
      process.env.KILN_LOCK_TABLE = "locks";
      expect(holderCheckFromEnv({ dynamodb: {} as never }).table).toBe("locks");
    } finally {
      if (saved === undefined) delete process.env.KILN_LOCK_TABLE;
      else process.env.KILN_LOCK_TABLE = saved;
    }
  });

  describe("a new abort of the same deployment retakes the lock from a failed abort", () => {
    // dep failed; abort-1 took the lock to compensate it and failed itself (e.g. throttled at FinishAbort).
    const held = item({
      holder: "abort-1",
      holderTrigger: "abort",
      leaseExpiresAt: T0 - 5,
      lastFailed: { executionArn: "dep", status: "FAILED", unresolved: true, failedAt: 0, abortExecutionArn: "abort-1" },
    });
    const req = (status: rules.HolderStatus | undefined, aborted = "dep", holder = "abort-1") => ({
      service: "web",
      executionArn: "abort-2",
      abortedExecutionArn: aborted,
      ...(status ? { holderStatus: { executionArn: holder, status } } : {}),
    });
    it.each([
      ["the earlier abort FAILED", req("FAILED"), true],
      ["the earlier abort TIMED_OUT", req("TIMED_OUT"), true],
      ["the earlier abort is still RUNNING", req("RUNNING"), false],
      ["its status was not read", req(undefined), false],
      ["the status read is of another execution", req("FAILED", "dep", "abort-0"), false],
      ["the new abort targets another deployment", req("FAILED", "other-dep"), false],
      [
        "the earlier abort took the lock before the pager recorded the failure",
        {
          ...req("FAILED"),
          item: item({ holder: "abort-1", holderTrigger: "abort", previousHolder: "dep", leaseExpiresAt: T0 - 5 }),
        },
        true,
      ],
      [
        "a deployment (not an abort) holds it",
        {
          ...req("FAILED"),
          item: item({ holder: "abort-1", holderTrigger: "push", previousHolder: "dep", leaseExpiresAt: T0 - 5 }),
        },
        false,
      ],
    ])("%s", (_, { item: it_, ...r }: ReturnType<typeof req> & { item?: LockItem }, ok) => {
      const d = rules.acquire(it_ ?? held, r, t);
      expect(d.ok).toBe(ok);
      if (d.ok) {
        expect(d).toMatchObject({
          tookOverFrom: "abort-1",
          item: {
            holder: "abort-2",
            previousHolder: "abort-1",
            lastFailed: { executionArn: "dep", abortExecutionArn: "abort-2", unresolved: true, status: "FAILED" },
          },
        });
      }
    });
  });
});

describe("environment lock and queue (DynamoDB conditional writes, dynalite)", () => {
  let dyn: Dynamo;
  let clock: VirtualClock;
  let sfn: FakeSfn;
  let deps: StartDeps;
  let n = 0;
  let service: string;
  const prod = () => ({ service, environment: "production" });
  /** The execution a request became (started or queued). */
  const execOf = (r: { action: string; executionArn?: string; name?: string }) =>
    r.action === "started" ? r.executionArn! : arn(r.name!);
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

  /** Runs a started execution to success: acquire, then release (which starts what is queued). */
  async function succeed(executionArn: string) {
    await expect(acquireLock({ ...prod(), executionArn }, deps)).resolves.toMatchObject({ acquired: true });
    sfn.end(executionArn, "SUCCEEDED");
    return releaseAndStartNext({ ...prod(), executionArn }, deps);
  }

  it("numbers requests and names executions service-environment-commit-trigger-seq", async () => {
    const a = await startOrQueue({ input: push(service, 1) }, deps);
    expect(a).toMatchObject({ action: "started", seq: 1, name: `${service}-production-${sha(1).slice(0, 12)}-push-1` });
    expect(JSON.parse(sfn.starts[0]!.input)).toMatchObject({ service, environment: "production", seq: 1 });
    const b = await startOrQueue({ input: push(service, 2) }, deps);
    expect(b).toMatchObject({ action: "queued", name: `${service}-production-${sha(2).slice(0, 12)}-push-2` });
  });

  it("environments are separate: the same commit deploys to staging and later to production", async () => {
    const stg = await startOrQueue({ input: push(service, 1, { environment: "staging", branch: "stage" }) }, deps);
    const prd = await startOrQueue({ input: push(service, 1) }, deps);
    expect(stg).toMatchObject({ action: "started", duplicate: false });
    expect(prd).toMatchObject({ action: "started", duplicate: false });
    expect(stg.action === "started" && prd.action === "started" && stg.executionArn !== prd.executionArn).toBe(true);
    expect((await readLock({ service, environment: "staging" }, deps))?.holderCommit).toBe(sha(1));
    expect((await readLock(prod(), deps))?.holderCommit).toBe(sha(1));
  });

  it("a redelivery while running returns the same execution; a replaced push redelivered after the newest went live starts nothing", async () => {
    const a = await startOrQueue({ input: push(service, 1) }, deps);
    await expect(startOrQueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({
      action: "started",
      duplicate: true,
      executionArn: execOf(a),
    });
    await startOrQueue({ input: push(service, 2) }, deps); // B queues
    const c = await startOrQueue({ input: push(service, 3) }, deps); // C replaces B
    expect(c).toMatchObject({ action: "queued", replaced: sha(2) });
    const rel = await succeed(execOf(a));
    expect(rel.started).toEqual([{ executionArn: execOf(c), commit: sha(3), status: "started" }]);
    await succeed(execOf(c));
    // GitHub's "Redeliver" of B, byte for byte, after A and C succeeded.
    const again = await startOrQueue({ input: push(service, 2) }, deps);
    expect(again).toMatchObject({
      action: "ignored",
      reason: expect.stringMatching(/redelivery of request #2.*older than request #3/),
    });
    expect(sfn.starts.map((s) => s.input).filter((i) => JSON.parse(i).commit === sha(2))).toEqual([]);
  });

  it("out-of-order delivery: a push that arrives after its child starts nothing", async () => {
    const p2 = await startOrQueue({ input: push(service, 2) }, deps); // before = sha(1)
    expect(p2).toMatchObject({ action: "started" });
    await expect(startOrQueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({
      action: "ignored",
      reason: expect.stringMatching(/is the parent of/),
    });
  });

  it("a force push back to an older commit is a new request", async () => {
    const a = await startOrQueue({ input: push(service, 2) }, deps);
    await succeed(execOf(a));
    const back = await startOrQueue({ input: push(service, 1, { before: sha(2), forced: true }) }, deps);
    expect(back).toMatchObject({ action: "started", seq: 2 });
  });

  it("a superseded execution redriven later cannot take the free lock (redrive of A after B went live)", async () => {
    const a = await startOrQueue({ input: push(service, 1) }, deps);
    await acquireLock({ ...prod(), executionArn: execOf(a) }, deps);
    sfn.end(execOf(a), "FAILED");
    await recordFailure(prod(), execOf(a), "FAILED", deps);
    const b = await startOrQueue({ input: push(service, 2) }, deps);
    expect(b).toMatchObject({ action: "queued", superseding: { failedExecutionArn: execOf(a) } });
    const abortArn = sfn.startsOf(ABORT_SM)[0]!.executionArn;
    expect(JSON.parse(sfn.startsOf(ABORT_SM)[0]!.input)).toMatchObject({ service, environment: "production" });
    sfn.end(abortArn, "SUCCEEDED");
    await releaseAndStartNext({ ...prod(), executionArn: abortArn, abortedExecutionArn: execOf(a) }, deps);
    await succeed(execOf(b));
    expect((await readLock(prod(), deps))?.holder).toBeUndefined();
    // The operator redrives A from its page: RenewLock is refused, naming what superseded it.
    const r = await acquireLock({ ...prod(), executionArn: execOf(a), seq: 1 }, deps);
    expect(r).toMatchObject({ acquired: false, superseded: true, reason: expect.stringMatching(/superseded by request #2/) });
  });

  it("a push while a failed deployment runs again after a redrive queues behind it instead of aborting it", async () => {
    const a = await startOrQueue({ input: push(service, 1) }, deps);
    await acquireLock({ ...prod(), executionArn: execOf(a) }, deps);
    sfn.end(execOf(a), "FAILED");
    await recordFailure(prod(), execOf(a), "FAILED", deps);
    // The operator redrives A: it runs again, its recorded failure still unresolved until it succeeds.
    sfn.end(execOf(a), "RUNNING");
    const b = await startOrQueue({ input: push(service, 2) }, deps);
    expect(b).toMatchObject({ action: "queued" });
    expect(b).not.toHaveProperty("superseding");
    expect(sfn.startsOf(ABORT_SM)).toEqual([]);
  });

  it("an execution started around the queue (failed at AcquireLock) is refused even when the lock is free", async () => {
    const r = await acquireLock({ ...prod(), executionArn: arn("hand-started") }, deps);
    expect(r).toMatchObject({ acquired: false, superseded: true, reason: expect.stringMatching(/never gave it/) });
  });

  it("a claim whose StartExecution failed is started by the next request, which queues behind it", async () => {
    sfn.failStarts = ["ServiceUnavailable"];
    await expect(startOrQueue({ input: push(service, 1) }, deps)).rejects.toMatchObject({ name: "ServiceUnavailable" });
    expect(sfn.starts).toHaveLength(0);
    const b = await startOrQueue({ input: push(service, 2) }, deps);
    expect(b).toMatchObject({ action: "queued" });
    expect(sfn.starts.map((s) => JSON.parse(s.input).commit)).toEqual([sha(1)]);
  });

  it("a redelivery of a push whose start was lost starts it", async () => {
    sfn.failStarts = ["ServiceUnavailable"];
    await expect(startOrQueue({ input: push(service, 1) }, deps)).rejects.toBeTruthy();
    await expect(startOrQueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({
      action: "started",
      duplicate: true,
      status: "RUNNING",
    });
    expect(sfn.starts).toHaveLength(1);
  });

  it("reconcileQueue starts a stranded claim and hands a finished holder's lock to the queue", async () => {
    deps = { ...deps, table: await dyn.newTable() }; // the scan sees only this test's items
    sfn.failStarts = ["ServiceUnavailable"];
    await expect(startOrQueue({ input: push(service, 1) }, deps)).rejects.toBeTruthy();
    let results = await reconcileQueue(deps);
    expect(results.filter((r) => r.key === `${service}/production`)).toMatchObject([{ action: "started" }]);
    const first = sfn.starts[0]!.executionArn;
    await acquireLock({ ...prod(), executionArn: first }, deps);
    const q = await startOrQueue({ input: push(service, 2) }, deps);
    // The holder ends without releasing (stopped, or its ReleaseLock never ran).
    sfn.end(first, "SUCCEEDED");
    results = await reconcileQueue(deps);
    expect(results.filter((r) => r.key === `${service}/production`)).toMatchObject([{ action: "released" }]);
    expect(sfn.starts.at(-1)!.executionArn).toBe(execOf(q));
  });

  it("lets exactly one of 20 racing deliveries start; the rest are duplicates", async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, () => startOrQueue({ input: push(service, 1) }, deps)));
    expect(rs.filter((r) => r.action === "started" && !r.duplicate)).toHaveLength(1);
    expect(sfn.starts).toHaveLength(1);
  });

  it("heartbeat renews the holder's lease and tells a stranger it lost", async () => {
    const a = await startOrQueue({ input: push(service, 1) }, deps);
    await acquireLock({ ...prod(), executionArn: execOf(a) }, deps);
    await expect(heartbeat({ ...prod(), executionArn: execOf(a) }, deps)).resolves.toMatchObject({
      leaseExpiresAt: T0 + DEFAULT_LEASE_MS,
    });
    await expect(heartbeat({ ...prod(), executionArn: arn("other") }, deps)).rejects.toMatchObject({ name: "kiln.LockLost" });
  });

  it("only the holder releases", async () => {
    const a = await startOrQueue({ input: push(service, 1) }, deps);
    await expect(releaseLock({ ...prod(), executionArn: arn("other") }, deps)).resolves.toMatchObject({ released: false });
    await expect(releaseLock({ ...prod(), executionArn: execOf(a) }, deps)).resolves.toMatchObject({ released: true });
  });

  it("records failures only for the holder, and successes resolve them", async () => {
    const a = await startOrQueue({ input: push(service, 1) }, deps);
    await expect(recordFailure(prod(), arn("other"), "FAILED", deps)).resolves.toBe(false);
    await expect(recordFailure(prod(), execOf(a), "FAILED", deps)).resolves.toBe(true);
    await expect(recordSuccess(prod(), execOf(a), deps)).resolves.toBe(true);
    expect((await readLock(prod(), deps))?.lastFailed).toMatchObject({ unresolved: false });
  });

  it("supersede is idempotent", async () => {
    const a = await startOrQueue({ input: push(service, 1) }, deps);
    sfn.end(execOf(a), "FAILED");
    const s1 = await supersede(prod(), deps);
    const s2 = await supersede(prod(), deps);
    expect(s1).toMatchObject({ action: "aborting", started: true });
    expect(s2).toMatchObject({ action: "aborting", started: false });
    expect(sfn.startsOf(ABORT_SM)).toHaveLength(1);
  });

  it("rotation skips a busy environment without taking a number", async () => {
    await startOrQueue({ input: push(service, 1) }, deps);
    const r = await startOrQueue(
      { input: push(service, 1, { trigger: "rotation", before: undefined }), nonce: "20260105", ifBusy: "skip" },
      deps,
    );
    expect(r).toMatchObject({ action: "busy" });
    expect((await readLock(prod(), deps))?.seq).toBe(1);
  });

  it("enqueue queues behind a holder and refuses when the lock is free", async () => {
    await expect(enqueue({ input: push(service, 1) }, deps)).resolves.toMatchObject({ action: "ignored" });
    await startOrQueue({ input: push(service, 1) }, deps);
    await expect(enqueue({ input: push(service, 2) }, deps)).resolves.toMatchObject({ action: "queued" });
  });

  it("the pending lease of a never-started claim is short", () => {
    expect(DEFAULT_PENDING_LEASE_MS).toBeLessThanOrEqual(5 * 60_000);
  });
});
