/**
 * The service lock and its latest-wins queue (DynamoDB, one item per service), and the
 * start-or-queue admission every trigger goes through. Transitions are the pure rules in
 * `rules.ts`; this file reads the holder's execution status, applies decisions with conditional
 * writes, and calls StartExecution.
 */
import { DescribeExecutionCommand, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { Clock } from "../clock.ts";
import { InvalidInputError, LockLostError } from "../errors.ts";
import type { Trigger } from "../names.ts";
import { executionName, unitKey } from "../names.ts";
import type { AbortSpec, HolderStatus, Request, StartSpec } from "./rules.ts";
import * as rules from "./rules.ts";
import { type DocumentSender, LockStore } from "./store.ts";
import { type Log, silentLog } from "../log.ts";
import type { DeployInput, LockItem } from "./types.ts";

/** The unit of deployment a lock item belongs to. */
export interface Unit {
  service: string;
  environment: string;
}

/** Default lease: a running deployment renews it at every AcquireLock/heartbeat. */
export const DEFAULT_LEASE_MS = 60 * 60_000;
/** Lease of a claim made just before StartExecution (covers the start plus the first AcquireLock). */
export const DEFAULT_PENDING_LEASE_MS = 2 * 60_000;

export interface LockDeps {
  ddb: DocumentSender;
  table: string;
  clock: Pick<Clock, "now">;
  leaseMs?: number;
  pendingLeaseMs?: number;
  log?: Log;
}

/** The Step Functions surface used (an `SFNClient`, or a fake in tests). */
export interface SfnSender {
  send(command: any): Promise<any>;
}

export interface StartDeps extends LockDeps {
  sfn: SfnSender;
  deployStateMachineArn: string;
  /** The abort (compensation) state machine; without it a failed deployment blocks the queue until an operator acts. */
  abortStateMachineArn?: string;
}

const store = (d: LockDeps) => new LockStore(d.ddb, d.table);
const timing = (d: LockDeps): rules.Timing => ({
  now: d.clock.now(),
  leaseMs: d.leaseMs ?? DEFAULT_LEASE_MS,
  pendingLeaseMs: d.pendingLeaseMs ?? DEFAULT_PENDING_LEASE_MS,
});

const SM_ARN = /^(arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}):stateMachine:([A-Za-z0-9_-]{1,80})(?::[A-Za-z0-9_-]+)?$/;

/**
 * The ARN Step Functions gives an execution of `stateMachineArn` named `name`
 * (`arn:…:execution:<machine>:<name>`). A version or alias qualifier on the machine ARN is not part
 * of it. Knowing it before StartExecution lets a trigger claim the lock for the execution first.
 */
export function executionArnFor(stateMachineArn: string, name: string): string {
  const m = SM_ARN.exec(stateMachineArn);
  if (!m) throw new InvalidInputError(`not a state machine ARN: ${stateMachineArn}`);
  return `${m[1]}:execution:${m[2]}:${name}`;
}

/** Name of the abort execution for a failed deployment: derived, so starting it twice collapses. */
export function abortExecutionName(failedExecutionArn: string): string {
  const name = failedExecutionArn.split(":").at(-1) ?? "unknown";
  return `abort-${name}`.slice(0, 80);
}

function abortFor(deps: StartDeps, unit: Unit, reason: string): ((failed: string) => AbortSpec) | undefined {
  const sm = deps.abortStateMachineArn;
  if (!sm) return undefined;
  return (failed) => {
    const name = abortExecutionName(failed);
    return {
      stateMachineArn: sm,
      name,
      executionArn: executionArnFor(sm, name),
      input: JSON.stringify({
        service: unit.service,
        environment: unit.environment,
        executionArn: failed,
        reason,
        requestedBy: "kiln:supersede",
      }),
    };
  };
}

/** Status of an execution; `MISSING` when Step Functions does not know it. */
export async function executionStatus(sfn: SfnSender, executionArn: string): Promise<HolderStatus> {
  try {
    const r = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    return r.status as HolderStatus;
  } catch (err) {
    if ((err as Error).name === "ExecutionDoesNotExist") return "MISSING";
    throw err;
  }
}

/** The lock item of a (service, environment) as stored (strongly consistent read). */
export function readLock(unit: Unit, deps: LockDeps): Promise<LockItem | undefined> {
  return store(deps).get(unitKey(unit.service, unit.environment));
}

// ---------------------------------------------------------------------------------------------

export interface AcquireInput extends Unit {
  executionArn: string;
  /** The request's queue number (deploy executions carry it in their input). */
  seq?: number;
  /** A rollback, which an operator names, may take a free lock; deployments only get the one the queue gave them. */
  mayTakeFree?: boolean;
  commit?: string;
  trigger?: string;
  /** Set by the abort machine: it may take the lock from the deployment it aborts. */
  abortedExecutionArn?: string;
  /** The holder's status, read by an abort when an earlier abort of the same deployment holds the lock (`rules.compensatedBy`). */
  holderStatus?: { executionArn: string; status: rules.HolderStatus };
}

export type AcquireResult =
  | { acquired: true; reacquired: boolean; leaseExpiresAt: number; tookOverFrom?: string }
  | { acquired: false; holder?: string; leaseExpiresAt?: number; reason: string; superseded: boolean };

/**
 * AcquireLock: a conditional write that succeeds when the lock is free, its lease expired (and no
 * unresolved failure is recorded for the holder), or this same execution holds it — the idempotent
 * re-acquire a retry, a redrive or the trigger's claim relies on. Calling it again renews the lease.
 */
export async function acquireLock(input: AcquireInput, deps: LockDeps): Promise<AcquireResult> {
  const t = timing(deps);
  const name = input.executionArn.split(":").at(-1);
  const key = unitKey(input.service, input.environment);
  const result = await store(deps).mutate<rules.AcquireDecision>(key, (item) => {
    const d = rules.acquire(item, { ...input, service: key, ...(name ? { name } : {}) }, t);
    return d.ok ? { write: d.item, result: d } : { result: d };
  });
  if (!result.ok)
    return {
      acquired: false,
      ...(result.holder ? { holder: result.holder } : {}),
      superseded: result.superseded,
      reason: result.reason,
      ...(result.leaseExpiresAt !== undefined ? { leaseExpiresAt: result.leaseExpiresAt } : {}),
    };
  (deps.log ?? silentLog).info("lock acquired", {
    service: input.service,
    executionArn: input.executionArn,
    reacquired: result.reacquired,
    tookOverFrom: result.tookOverFrom,
  });
  return {
    acquired: true,
    reacquired: result.reacquired,
    leaseExpiresAt: result.item.leaseExpiresAt!,
    ...(result.tookOverFrom ? { tookOverFrom: result.tookOverFrom } : {}),
  };
}

/** Renews the holder's lease; throws `kiln.LockLost` when this execution no longer holds the lock. */
export async function heartbeat(input: Unit & { executionArn: string }, deps: LockDeps): Promise<{ leaseExpiresAt: number }> {
  const t = timing(deps);
  const d = await store(deps).mutate<rules.HeartbeatDecision>(unitKey(input.service, input.environment), (item) => {
    const r = rules.heartbeat(item, input.executionArn, t);
    return r.ok ? { write: r.item, result: r } : { result: r };
  });
  if (!d.ok) {
    throw new LockLostError(
      `${input.executionArn} no longer holds the lock of ${input.service}${d.holder ? ` (held by ${d.holder})` : ""}: stop changing the fleet`,
    );
  }
  return { leaseExpiresAt: d.item.leaseExpiresAt! };
}

export interface ReleaseInput extends Unit {
  executionArn: string;
  /** For an abort: the deployment it aborted (which may still hold the lock). */
  abortedExecutionArn?: string;
}

/** The deployment a release handed the lock to; the caller starts it (`startNext`). */
export interface NextStart extends StartSpec {
  executionArn: string;
  commit: string;
}

export interface ReleaseResult {
  released: boolean;
  reason: string;
  /** The newest queued deployment, which now holds the lock and must be started. */
  next?: NextStart;
}

/**
 * ReleaseLock, only by the holder: frees the lock, resolves a failure recorded for this execution
 * (or the one it aborted), and hands the lock straight to the queued deployment, if any, which
 * the caller must start (`releaseAndStartNext` does both). Releasing twice is harmless; a retry
 * after the hand-off returns the same `next` so its start can be re-issued.
 */
export async function releaseLock(
  input: ReleaseInput,
  deps: LockDeps & { deployStateMachineArn: string },
): Promise<ReleaseResult> {
  const t = timing(deps);
  const arns = [input.executionArn, ...(input.abortedExecutionArn ? [input.abortedExecutionArn] : [])];
  const d = await store(deps).mutate<rules.ReleaseDecision>(unitKey(input.service, input.environment), (item) => {
    const r = rules.release(item, arns, {
      ...t,
      deployStateMachineArn: deps.deployStateMachineArn,
      arnFor: (n) => executionArnFor(deps.deployStateMachineArn, n),
    });
    return r.kind === "released" || r.kind === "handoff" ? { write: r.item, result: r } : { result: r };
  });
  switch (d.kind) {
    case "released":
      return { released: true, reason: "released; nothing queued" };
    case "handoff":
      return { released: true, reason: `released and handed to queued commit ${d.next.commit}`, next: d.next };
    case "handoff-pending":
      return { released: true, reason: `already released and handed to queued commit ${d.next.commit}`, next: d.next };
    case "not-holder":
      return { released: false, reason: d.reason };
  }
}

export interface StartNextResult {
  executionArn: string;
  commit: string;
  status: "started" | "running" | "already-ran";
}

/**
 * Starts the deployment a release handed the lock to. When its name was used before (an execution
 * that already ran), the lock moves on to whatever is queued next; at most a few hops.
 */
export async function startNext(unit: Unit, next: NextStart, deps: StartDeps): Promise<StartNextResult[]> {
  const out: StartNextResult[] = [];
  let cur: NextStart | undefined = next;
  for (let hop = 0; cur && hop < 5; hop++) {
    const s = await startExecution(cur, deps);
    out.push({ executionArn: s.executionArn, commit: cur.commit, status: s.status });
    if (s.status !== "already-ran") break;
    const r = await releaseLock({ ...unit, executionArn: cur.executionArn }, deps);
    cur = r.next;
  }
  return out;
}

/** ReleaseLock followed by the start of the newest queued deployment. */
export async function releaseAndStartNext(
  input: ReleaseInput,
  deps: StartDeps,
): Promise<ReleaseResult & { started: StartNextResult[] }> {
  const r = await releaseLock(input, deps);
  const started = r.next ? await startNext(input, r.next, deps) : [];
  (deps.log ?? silentLog).info("lock released", {
    service: input.service,
    environment: input.environment,
    executionArn: input.executionArn,
    released: r.released,
    started,
  });
  return { ...r, started };
}

/**
 * StartExecution that treats the name as the idempotency key: a running execution of that name is
 * the same deployment (`running`); a closed one already ran (`already-ran`).
 */
async function startExecution(
  spec: StartSpec & { executionArn: string },
  deps: StartDeps,
): Promise<{ executionArn: string; status: StartNextResult["status"] }> {
  try {
    const r = await deps.sfn.send(
      new StartExecutionCommand({ stateMachineArn: spec.stateMachineArn, name: spec.name, input: spec.input }),
    );
    return { executionArn: r.executionArn ?? spec.executionArn, status: "started" };
  } catch (err) {
    if ((err as Error).name !== "ExecutionAlreadyExists") throw err;
    const status = await executionStatus(deps.sfn, spec.executionArn);
    return {
      executionArn: spec.executionArn,
      status: status === "RUNNING" || status === "PENDING_REDRIVE" ? "running" : "already-ran",
    };
  }
}

// ---------------------------------------------------------------------------------------------

export interface DeployRequest {
  /** The deploy input without `seq` (the queue assigns it). */
  input: DeployInput;
  /** Distinguishes deliberate re-runs of one commit (the rotation day; each operator request). */
  nonce?: string;
  /** `skip` (rotation): never wait behind or supersede another deployment. Default `queue`. */
  ifBusy?: "queue" | "skip";
}

export type StartOrQueueResult =
  | {
      action: "started";
      executionArn: string;
      name: string;
      /** The execution already existed (a redelivery); `status` says whether it runs or already ran. */
      duplicate: boolean;
      status?: string;
      tookOverFrom?: string;
      seq?: number;
    }
  | {
      action: "queued";
      /** Latest wins: there is one slot, so a queued deployment is always next. */
      position: 1;
      holder: string;
      name: string;
      replaced?: string;
      unchanged: boolean;
      reason: string;
      blockedBy?: string;
      superseding?: { failedExecutionArn: string; abortExecutionArn: string };
    }
  | { action: "ignored"; reason: string; holder?: string }
  | { action: "busy"; reason: string; holder: string };

/** The request a trigger makes: its identity derives from what was asked (see `requestId`). */
function requestFor(req: DeployRequest): Request {
  const { service, environment, commit, trigger, before, forced } = req.input;
  if (!environment) throw new InvalidInputError(`a deployment of ${service} needs its environment`);
  const { seq: _seq, ...input } = req.input;
  return {
    service,
    environment,
    commit,
    trigger,
    id: rules.requestId({ trigger, commit, ...(before ? { before } : {}), ...(req.nonce ? { nonce: req.nonce } : {}) }),
    ...(before ? { before } : {}),
    ...(forced ? { forced } : {}),
    input: input as DeployInput,
  };
}

function admitOptions(deps: StartDeps | (LockDeps & { deployStateMachineArn: string })) {
  const sm = deps.deployStateMachineArn;
  return {
    stateMachineArn: sm,
    arnFor: (n: string) => executionArnFor(sm, n),
    nameFor: (r: Request, seq: number) => executionName(r.service, r.environment, r.commit, r.trigger as Trigger, seq),
  };
}

/**
 * Every trigger's way in: number the request in its environment's queue, claim the lock for its
 * execution and start it; if another deployment holds the lock, queue this one (latest wins) — or,
 * when the holder failed and is unresolved, hand the lock to an abort of it first and queue this one
 * behind the abort. A redelivery of the same request returns the same execution with
 * `duplicate: true`; a redelivery of an older request, or a push older than one accepted, starts
 * nothing (I7). A claim whose start never happened is started again by whoever sees it first.
 */
export async function startOrQueue(req: DeployRequest, deps: StartDeps): Promise<StartOrQueueResult> {
  const log = deps.log ?? silentLog;
  const r = requestFor(req);
  const unit = { service: r.service, environment: r.environment };
  const { service, commit, trigger } = r;
  const statuses = new Map<string, HolderStatus>();
  const statusOf = async (arn: string) => {
    let s = statuses.get(arn);
    if (!s) {
      s = await executionStatus(deps.sfn, arn);
      statuses.set(arn, s);
    }
    return s;
  };
  const abort = abortFor(deps, unit, `superseded by ${trigger} of ${commit}`);
  const key = unitKey(r.service, r.environment);
  let holderItem: LockItem | undefined;
  const decision = await store(deps).mutate<rules.AdmitDecision>(key, async (item) => {
    holderItem = item;
    const holderStatus = item?.holder ? await statusOf(item.holder) : undefined;
    const t = timing(deps);
    const d = rules.admit(item, r, {
      ...t,
      ...admitOptions(deps),
      ifBusy: req.ifBusy ?? "queue",
      ...(holderStatus ? { holderStatus } : {}),
      ...(abort ? { abortFor: abort } : {}),
    });
    return { ...("item" in d && d.item ? { write: d.item } : {}), result: d };
  });

  switch (decision.kind) {
    case "duplicate": {
      let status = await statusOf(decision.executionArn);
      // The first delivery claimed the lock but its start never happened: this one starts it.
      if (status === "MISSING" && holderItem?.holderStart) {
        await startExecution({ ...holderItem.holderStart, executionArn: decision.executionArn }, deps);
        status = "RUNNING";
      }
      return { action: "started", executionArn: decision.executionArn, name: decision.name, duplicate: true, status };
    }
    case "start": {
      const claim = decision.claim;
      // If this throws (throttled, timed out), the claim stays: a redelivery, the next request or
      // the scheduled reconcile issues the same start again.
      const s = await startExecution(
        {
          stateMachineArn: claim.stateMachineArn,
          name: claim.name,
          input: JSON.stringify(claim.input),
          executionArn: claim.executionArn,
        },
        deps,
      );
      if (s.status === "already-ran") {
        // The name ran before (Step Functions keeps names for 90 days): it must not run again.
        await releaseAndStartNext({ ...unit, executionArn: claim.executionArn }, deps);
      }
      log.info("deployment started", {
        service,
        environment: r.environment,
        commit,
        trigger,
        seq: claim.seq,
        executionArn: s.executionArn,
        status: s.status,
      });
      return {
        action: "started",
        executionArn: s.executionArn,
        name: claim.name,
        seq: claim.seq,
        duplicate: s.status !== "started",
        ...(s.status !== "started" ? { status: s.status === "running" ? "RUNNING" : await statusOf(s.executionArn) } : {}),
        ...(decision.tookOverFrom ? { tookOverFrom: decision.tookOverFrom } : {}),
      };
    }
    case "supersede": {
      const s = await startExecution(decision.abort, deps);
      log.warn("failed deployment superseded: abort started", {
        service,
        environment: r.environment,
        failed: decision.failed,
        abort: s.executionArn,
        queued: commit,
      });
      return {
        action: "queued",
        position: 1,
        holder: decision.abort.executionArn,
        name: decision.name,
        unchanged: false,
        ...(decision.replaced ? { replaced: decision.replaced } : {}),
        reason: `supersedes failed deployment ${decision.failed}: aborting it first, then this commit deploys`,
        superseding: { failedExecutionArn: decision.failed, abortExecutionArn: decision.abort.executionArn },
      };
    }
    case "queued": {
      if (decision.restart) await startExecution({ ...decision.restart, executionArn: decision.holder }, deps);
      log.info("deployment queued", {
        service,
        environment: r.environment,
        commit,
        holder: decision.holder,
        replaced: decision.replaced,
        blockedBy: decision.blockedBy,
      });
      return {
        action: "queued",
        position: 1,
        holder: decision.holder,
        name: decision.name,
        unchanged: decision.unchanged,
        reason: decision.reason,
        ...(decision.replaced ? { replaced: decision.replaced } : {}),
        ...(decision.blockedBy ? { blockedBy: decision.blockedBy } : {}),
      };
    }
    case "stale":
      return { action: "ignored", reason: decision.reason, ...(decision.holder ? { holder: decision.holder } : {}) };
    case "busy":
      return { action: "busy", reason: decision.reason, holder: decision.holder };
  }
}

/**
 * Queues a deployment behind the lock holder without trying to start it (latest wins: it replaces
 * an older queued request). When the lock is free there is nothing to wait for and the request is
 * refused with the reason — use `startOrQueue`.
 */
export async function enqueue(
  req: DeployRequest,
  deps: LockDeps & { deployStateMachineArn: string },
): Promise<StartOrQueueResult> {
  const r = requestFor(req);
  const d = await store(deps).mutate<rules.AdmitDecision | { kind: "free" }>(unitKey(r.service, r.environment), (item) => {
    if (!item?.holder) return { result: { kind: "free" as const } };
    // Treat the holder as running: enqueue never supersedes (startOrQueue does, after checking).
    const a = rules.admit(item, r, { ...timing(deps), ...admitOptions(deps), ifBusy: "queue", holderStatus: "RUNNING" });
    return { ...(a.kind === "queued" && a.item ? { write: a.item } : {}), result: a };
  });
  if (d.kind === "free") return { action: "ignored", reason: "the lock is free: nothing to queue behind" };
  if (d.kind === "duplicate") return { action: "started", executionArn: d.executionArn, name: d.name, duplicate: true };
  if (d.kind === "queued") {
    return {
      action: "queued",
      position: 1,
      holder: d.holder,
      name: d.name,
      unchanged: d.unchanged,
      reason: d.reason,
      ...(d.replaced ? { replaced: d.replaced } : {}),
    };
  }
  if (d.kind === "stale") return { action: "ignored", reason: d.reason, ...(d.holder ? { holder: d.holder } : {}) };
  return { action: "ignored", reason: `unexpected admission ${d.kind}` };
}

export interface ReconcileResult {
  key: string;
  action: "started" | "released" | "nothing";
  detail: string;
}

/**
 * The queue's safety net (run on a schedule, and safe to run at any time): a claim whose
 * StartExecution never happened is started; a holder that ended without releasing (SUCCEEDED, or
 * stopped) hands the lock to what is queued. Failed holders stay: they wait for an operator or a
 * superseding request. Bounds how long the newest queued request can wait behind a lost start.
 */
export async function reconcileLock(item: LockItem, deps: StartDeps): Promise<ReconcileResult> {
  const key = item.service;
  if (!item.holder) return { key, action: "nothing", detail: "free" };
  const status = await executionStatus(deps.sfn, item.holder);
  if (status === "MISSING" && item.holderState === "starting" && item.holderStart) {
    await startExecution({ ...item.holderStart, executionArn: item.holder }, deps);
    return {
      key,
      action: "started",
      detail: `started ${item.holder}, claimed at ${new Date(item.acquiredAt ?? 0).toISOString()} but never started`,
    };
  }
  if (
    (status === "SUCCEEDED" || (status === "ABORTED" && !item.lastFailed?.unresolved)) &&
    item.serviceName &&
    item.environment
  ) {
    const r = await releaseAndStartNext(
      { service: item.serviceName, environment: item.environment, executionArn: item.holder },
      deps,
    );
    return { key, action: "released", detail: `${item.holder} ${status} without releasing: ${r.reason}` };
  }
  return { key, action: "nothing", detail: `${item.holder} ${status}` };
}

export type SupersedeResult =
  | { action: "aborting"; failedExecutionArn: string; abortExecutionArn: string; started: boolean }
  | { action: "nothing"; reason: string };

/**
 * Aborts (compensates) the failed, unresolved deployment holding the service lock: starts the
 * abort state machine for it and hands it the lock (recorded in `lastFailed.abortExecutionArn`),
 * so whatever is queued deploys when the abort releases. Idempotent.
 */
export async function supersede(unit: Unit, deps: StartDeps, by?: string): Promise<SupersedeResult> {
  const abort = abortFor(deps, unit, by ? `superseded by ${by}` : "superseded");
  if (!abort) return { action: "nothing", reason: "no abort state machine is configured (KILN_ABORT_STATE_MACHINE_ARN)" };
  const d = await store(deps).mutate<rules.SupersedeDecision>(unitKey(unit.service, unit.environment), async (item) => {
    const holderStatus = item?.holder ? await executionStatus(deps.sfn, item.holder) : undefined;
    const r = rules.supersede(item, {
      ...timing(deps),
      abortFor: abort,
      ...(holderStatus ? { holderStatus } : {}),
      ...(by ? { by } : {}),
    });
    return { ...(r.kind === "supersede" ? { write: r.item } : {}), result: r };
  });
  if (d.kind === "nothing") return { action: "nothing", reason: d.reason };
  if (d.kind === "already") {
    return { action: "aborting", failedExecutionArn: d.failed, abortExecutionArn: d.abortExecutionArn, started: false };
  }
  const s = await startExecution(d.abort, deps);
  return { action: "aborting", failedExecutionArn: d.failed, abortExecutionArn: s.executionArn, started: s.status === "started" };
}

/** Pager hook: `executionArn` ended FAILED/TIMED_OUT/ABORTED. Recorded only if it held the lock. */
export async function recordFailure(unit: Unit, executionArn: string, status: string, deps: LockDeps): Promise<boolean> {
  const now = deps.clock.now();
  return store(deps).mutate(unitKey(unit.service, unit.environment), (item) => {
    const next = rules.markFailed(item, executionArn, status, now);
    return { ...(next ? { write: next } : {}), result: next !== undefined };
  });
}

/** Pager hook: `executionArn` SUCCEEDED; a failure recorded for it is resolved. */
export async function recordSuccess(unit: Unit, executionArn: string, deps: LockDeps): Promise<boolean> {
  const now = deps.clock.now();
  return store(deps).mutate(unitKey(unit.service, unit.environment), (item) => {
    const next = rules.markResolved(item, executionArn, now);
    return { ...(next ? { write: next } : {}), result: next !== undefined };
  });
}

/**
 * ReconcileQueue (scheduled every minute): `reconcileLock` for every lock item that has a holder.
 * The lock table also holds the pager's page records; only lock items (with `serviceName`) count.
 */
export async function reconcileQueue(deps: StartDeps): Promise<ReconcileResult[]> {
  const out: ReconcileResult[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const r = await deps.ddb.send(
      new ScanCommand({
        TableName: deps.table,
        ConsistentRead: true,
        FilterExpression: "attribute_exists(holder) AND attribute_exists(serviceName)",
        ExclusiveStartKey,
      }),
    );
    for (const item of (r.Items ?? []) as LockItem[]) {
      try {
        const res = await reconcileLock(item, deps);
        if (res.action !== "nothing") (deps.log ?? silentLog).warn("queue reconciled", { ...res });
        out.push(res);
      } catch (err) {
        out.push({ key: item.service, action: "nothing", detail: `failed: ${(err as Error).name}: ${(err as Error).message}` });
      }
    }
    ExclusiveStartKey = r.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return out;
}
