/**
 * The lock's state transitions as pure functions `(item, request, now) → decision`. The store
 * applies a decision with a write conditional on the item's `version`, so each transition is atomic
 * even with many webhook deliveries racing on the same service; on a conflict it re-reads and
 * decides again. Keeping the rules pure makes every case a one-line table row in the tests.
 */
import { type Trigger, unitKey } from "../names.ts";
import type { DeployInput, FailedDeploy, LockItem, QueuedDeploy, RequestRecord } from "./types.ts";

/** Execution status of the lock holder as DescribeExecution reports it; `MISSING` = ExecutionDoesNotExist. */
export type HolderStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED" | "PENDING_REDRIVE" | "MISSING";

const FAILED_STATUSES: ReadonlySet<string> = new Set(["FAILED", "TIMED_OUT", "ABORTED"]);

/** True for the statuses that page and leave a deployment unresolved. */
export function isFailedStatus(status: string | undefined): boolean {
  return status !== undefined && FAILED_STATUSES.has(status);
}

/** What StartExecution will be called with once a claim or hand-off is written. */
export interface StartSpec {
  stateMachineArn: string;
  name: string;
  input: string;
}

/** A deployment someone wants to start (a push, a rotation, an operator), before the queue numbers it. */
export interface Request {
  service: string;
  environment: string;
  commit: string;
  trigger: Trigger;
  /** Two deliveries with the same id are the same request (`requestId`). */
  id: string;
  /** For a push: GitHub's `before`, the commit the branch pointed at before this push. */
  before?: string;
  /** For a push: force-pushed (may move the branch to an older commit on purpose). */
  forced?: boolean;
  input: DeployInput;
}

/** A request the queue accepted: numbered, named, and about to start or wait. */
export interface Claim extends Request {
  seq: number;
  name: string;
  /** The ARN the execution will have: `executionArnFor(stateMachineArn, name)`. */
  executionArn: string;
  stateMachineArn: string;
}

/** How many accepted requests an environment remembers (redeliveries older than that are not recognised). */
export const REQUEST_HISTORY = 200;

/**
 * The identity of a request. A push is (commit, before): GitHub's redelivery repeats the body byte
 * for byte, while a new push of the same commit (a force push back to it) has another `before`.
 * A rotation is (commit, day); an operator request is unique per call (its nonce).
 */
export function requestId(r: { trigger: Trigger; commit: string; before?: string; nonce?: string }): string {
  return `${r.trigger}:${r.commit}:${r.trigger === "push" ? (r.before ?? "") : (r.nonce ?? "")}`;
}

/** The abort execution a superseding push starts for a failed deployment. */
export interface AbortSpec extends StartSpec {
  executionArn: string;
}

export interface Timing {
  now: number;
  leaseMs: number;
  pendingLeaseMs: number;
}

export function emptyItem(key: string, now: number, unit?: { service: string; environment: string }): LockItem {
  return {
    service: key,
    ...(unit ? { serviceName: unit.service, environment: unit.environment } : {}),
    version: 0,
    updatedAt: now,
  };
}

function leaseExpired(item: LockItem, now: number): boolean {
  return item.leaseExpiresAt === undefined || item.leaseExpiresAt <= now;
}

/**
 * The holder failed and nothing resolved it yet: DescribeExecution says so, or the pager recorded
 * an unresolved failure for the holder or for the abort that took the lock over from it.
 */
function holderFailed(item: LockItem, status: HolderStatus | undefined): boolean {
  if (!item.holder) return false;
  if (isFailedStatus(status)) return true;
  // Redriven: running again, its recorded failure is no longer current (it resolves on success).
  if (status === "SUCCEEDED" || status === "RUNNING" || status === "PENDING_REDRIVE") return false;
  const f = item.lastFailed;
  return f?.unresolved === true && (f.executionArn === item.holder || f.abortExecutionArn === item.holder);
}

/**
 * Whether the lock is free for a newcomer: no holder; or a holder that ended without releasing
 * (SUCCEEDED); or an expired lease with nothing known to contradict it (a crashed claim whose
 * StartExecution never happened). A holder seen RUNNING keeps the lock even past its lease (a
 * deployment that missed a heartbeat must not get a second one beside it, I6), and a failed holder
 * keeps it until it is redriven or aborted — never roll over a half-done fleet.
 */
export function isFree(item: LockItem | undefined, now: number, status: HolderStatus | undefined): boolean {
  if (!item?.holder) return true;
  if (status === "RUNNING" || status === "PENDING_REDRIVE") return false;
  if (holderFailed(item, status)) return false;
  if (status === "SUCCEEDED") return true;
  return leaseExpired(item, now);
}

function holderFields(c: { executionArn: string; name: string; commit: string; trigger: string; seq: number }) {
  return {
    holder: c.executionArn,
    holderName: c.name,
    holderCommit: c.commit,
    holderTrigger: c.trigger,
    holderSeq: c.seq,
  };
}

function withoutHolder(item: LockItem): LockItem {
  const {
    holder: _h,
    holderName: _n,
    holderCommit: _c,
    holderTrigger: _t,
    holderSeq: _q,
    holderState: _s,
    holderStart: _st,
    leaseExpiresAt: _l,
    acquiredAt: _a,
    heartbeatAt: _hb,
    ...rest
  } = item;
  return rest;
}

function queuedFrom(c: Claim, now: number, previous?: QueuedDeploy): QueuedDeploy {
  const replaced = previous ? [...(previous.replaced ?? []), previous.commit].slice(-10) : undefined;
  return {
    commit: c.commit,
    name: c.name,
    input: c.input,
    seq: c.seq,
    queuedAt: now,
    ...(replaced ? { replaced } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// AcquireLock / heartbeat

export type AcquireDecision =
  | { ok: true; item: LockItem; reacquired: boolean; tookOverFrom?: string }
  /** `superseded`: this execution can never get the lock again (a newer request, an abort, or no claim). */
  | { ok: false; holder?: string; leaseExpiresAt?: number; reason: string; superseded: boolean };

/**
 * AcquireLock, run by the execution itself. A deployment gets the lock only if the queue gave it to
 * it: the trigger's claim, or the release hand-off, names it as the holder — then this is an
 * idempotent re-acquire that renews the lease (a retry, a redrive, and the heartbeat). Anything else
 * is refused, so an execution that was superseded, aborted, or started around the queue never
 * changes the fleet, even days later when the lock is free (I7). An abort may take the lock from
 * the deployment it aborts; an abort or a rollback (operator actions that put the fleet right) may take a free one.
 */
export function acquire(
  item: LockItem | undefined,
  req: {
    service: string;
    executionArn: string;
    name?: string;
    commit?: string;
    trigger?: string;
    seq?: number;
    abortedExecutionArn?: string;
    /** A rollback may take a free lock (it was not queued: the operator named it). */
    mayTakeFree?: boolean;
    /** The holder's execution status, where the caller read it (an abort retaking from a failed abort). */
    holderStatus?: { executionArn: string; status: HolderStatus };
  },
  t: Timing,
): AcquireDecision {
  const base = item ?? emptyItem(req.service, t.now);
  const lease = { holderState: "running" as const, leaseExpiresAt: t.now + t.leaseMs, heartbeatAt: t.now, updatedAt: t.now };
  if (base.holder === req.executionArn) {
    const { holderStart: _s, ...rest } = base;
    return { ok: true, reacquired: true, item: { ...rest, ...lease } };
  }
  const failedUnresolved = holderFailed(base, undefined);
  // An abort started by an operator (not by a superseding push) takes the lock from the deployment it aborts.
  const retakes = abortRetakes(base, req);
  const abortTakesOver = req.abortedExecutionArn !== undefined && (base.holder === req.abortedExecutionArn || retakes);
  const free = !base.holder || (leaseExpired(base, t.now) && !failedUnresolved);
  if (abortTakesOver || (req.mayTakeFree === true && free)) {
    const fresh: LockItem = {
      ...withoutHolder(base),
      holder: req.executionArn,
      ...(req.name ? { holderName: req.name } : {}),
      ...(req.commit ? { holderCommit: req.commit } : {}),
      ...(req.trigger ? { holderTrigger: req.trigger } : {}),
      acquiredAt: t.now,
      ...lease,
      ...(base.holder ? { previousHolder: base.holder } : {}),
    };
    const f = fresh.lastFailed;
    if (retakes) {
      // The deployment stays unresolved until this abort finishes (its release resolves it).
      const own = f?.executionArn === req.abortedExecutionArn ? f : undefined;
      fresh.lastFailed = {
        ...(own ?? { executionArn: req.abortedExecutionArn!, status: "FAILED", failedAt: f?.failedAt ?? t.now }),
        unresolved: true,
        abortExecutionArn: req.executionArn,
      };
    } else if (abortTakesOver && f && f.executionArn === base.holder)
      fresh.lastFailed = { ...f, abortExecutionArn: req.executionArn };
    return { ok: true, reacquired: false, item: fresh, ...(base.holder ? { tookOverFrom: base.holder } : {}) };
  }
  const mine = req.name ?? req.executionArn;
  const newer = newestAfter(base, req.seq);
  let reason: string;
  if (newer)
    reason = `${mine} was superseded by request #${newer.seq} (${newer.trigger} of ${newer.commit}, ${newer.name}): it must not change the fleet`;
  else if (base.lastFailed?.executionArn === req.executionArn && base.lastFailed.abortExecutionArn)
    reason = `${mine} was aborted by ${base.lastFailed.abortExecutionArn.split(":").at(-1)}: it must not change the fleet`;
  else if (!base.holder)
    reason = `${mine} does not hold the lock, which is free: the queue never gave it this execution (started around kiln's queue, superseded or aborted)`;
  else if (failedUnresolved) reason = `the lock is held by failed deployment ${base.holder}: redrive it or abort it first`;
  else reason = `the lock is held by ${base.holder} until ${new Date(base.leaseExpiresAt ?? 0).toISOString()}`;
  return {
    ok: false,
    ...(base.holder ? { holder: base.holder } : {}),
    ...(base.leaseExpiresAt !== undefined ? { leaseExpiresAt: base.leaseExpiresAt } : {}),
    superseded: newer !== undefined || !base.holder || base.lastFailed?.executionArn === req.executionArn,
    reason,
  };
}

/**
 * When the lock is held by an abort, the deployment that abort compensates: the one it took the
 * lock from, or the failed one a superseding push handed it for.
 */
export function compensatedBy(item: LockItem | undefined): string | undefined {
  if (!item?.holder) return undefined;
  const f = item.lastFailed;
  if (f?.abortExecutionArn === item.holder) return f.executionArn;
  if (item.holderTrigger === "abort" && item.previousHolder) return item.previousHolder;
  return undefined;
}

/**
 * A new abort of the deployment a failed abort was compensating takes the lock from that abort: the
 * operator asks again for what the failed one did not finish (every abort step is idempotent and
 * reads the fleet afresh), instead of being told to redrive it. Only once the old abort is seen
 * failed — a running one keeps the lock — and it can never act again (its steps check the lock).
 */
function abortRetakes(
  base: LockItem,
  req: { abortedExecutionArn?: string; holderStatus?: { executionArn: string; status: HolderStatus } },
): boolean {
  return (
    req.abortedExecutionArn !== undefined &&
    compensatedBy(base) === req.abortedExecutionArn &&
    req.holderStatus?.executionArn === base.holder &&
    isFailedStatus(req.holderStatus?.status)
  );
}

/** The newest accepted request after `seq`, if any (the one that supersedes `seq`). */
export function newestAfter(item: LockItem, seq: number | undefined): RequestRecord | undefined {
  if (seq === undefined) return undefined;
  const last = item.requests?.at(-1);
  return last && last.seq > seq ? last : undefined;
}

export type HeartbeatDecision = { ok: true; item: LockItem } | { ok: false; holder?: string };

export function heartbeat(item: LockItem | undefined, executionArn: string, t: Timing): HeartbeatDecision {
  if (!item || item.holder !== executionArn) return { ok: false, ...(item?.holder ? { holder: item.holder } : {}) };
  return {
    ok: true,
    item: { ...item, holderState: "running", leaseExpiresAt: t.now + t.leaseMs, heartbeatAt: t.now, updatedAt: t.now },
  };
}

// ---------------------------------------------------------------------------------------------
// ReleaseLock

export type ReleaseDecision =
  | { kind: "released"; item: LockItem }
  /** Released and handed straight to the queued deployment (the lock is never free in between). */
  | { kind: "handoff"; item: LockItem; next: StartSpec & { executionArn: string; commit: string } }
  /** A previous call already handed off; re-issue the start (StartExecution is idempotent by name). */
  | { kind: "handoff-pending"; next: StartSpec & { executionArn: string; commit: string } }
  | { kind: "not-holder"; holder?: string; reason: string };

/**
 * ReleaseLock: only the holder may release. `executionArns` is the releasing execution and, for
 * an abort, the deployment it aborted (either may hold the lock, depending on who started the
 * abort). Releasing resolves a failure recorded for either. A queued deployment takes the lock
 * over in the same write.
 */
export function release(
  item: LockItem | undefined,
  executionArns: string[],
  t: Timing & { deployStateMachineArn: string; arnFor: (name: string) => string },
): ReleaseDecision {
  const mine = new Set(executionArns);
  if (!item?.holder || !mine.has(item.holder)) {
    if (
      item?.holder &&
      item.previousHolder &&
      mine.has(item.previousHolder) &&
      item.holderState === "starting" &&
      item.holderStart
    ) {
      return {
        kind: "handoff-pending",
        next: { ...item.holderStart, executionArn: item.holder, commit: item.holderCommit ?? "" },
      };
    }
    return {
      kind: "not-holder",
      ...(item?.holder ? { holder: item.holder } : {}),
      reason: item?.holder ? `the lock is held by ${item.holder}, not ${executionArns.join(" or ")}` : "the lock is not held",
    };
  }
  let lastFailed: FailedDeploy | undefined = item.lastFailed;
  if (
    lastFailed?.unresolved &&
    (mine.has(lastFailed.executionArn) || (lastFailed.abortExecutionArn && mine.has(lastFailed.abortExecutionArn)))
  ) {
    // executionArns[0] is the releasing execution: the failed one itself (redriven to success) or its abort.
    const by = executionArns[0] ?? item.holder;
    lastFailed = {
      ...lastFailed,
      unresolved: false,
      resolvedAt: t.now,
      resolution: by === lastFailed.executionArn ? `completed by ${by} after redrive` : `aborted by ${by}`,
    };
  }
  const released: LockItem = { ...withoutHolder(item), previousHolder: item.holder, updatedAt: t.now };
  if (lastFailed) released.lastFailed = lastFailed;
  const q = item.queued;
  if (!q) {
    delete released.queued;
    return { kind: "released", item: released };
  }
  const { queued: _q, ...rest } = released;
  const executionArn = t.arnFor(q.name);
  const start: StartSpec = { stateMachineArn: t.deployStateMachineArn, name: q.name, input: JSON.stringify(q.input) };
  const handed: LockItem = {
    ...rest,
    ...holderFields({ executionArn, name: q.name, commit: q.commit, trigger: q.input.trigger, seq: q.seq }),
    floorSeq: Math.max(rest.floorSeq ?? 0, q.seq),
    holderState: "starting",
    holderStart: start,
    acquiredAt: t.now,
    leaseExpiresAt: t.now + t.pendingLeaseMs,
  };
  return { kind: "handoff", item: handed, next: { ...start, executionArn, commit: q.commit } };
}

// ---------------------------------------------------------------------------------------------
// Admission: start, queue, supersede, or refuse

export type AdmitDecision =
  /** The same request already holds the lock (a redelivery while it runs). */
  | { kind: "duplicate"; executionArn: string; name: string }
  /** Claimed for this execution: call StartExecution now. */
  | { kind: "start"; item: LockItem; claim: Claim; tookOverFrom?: string }
  /** Queued behind the running deployment (latest wins). */
  | {
      kind: "queued";
      item?: LockItem;
      name: string;
      holder: string;
      replaced?: string;
      unchanged: boolean;
      blockedBy?: string;
      reason: string;
      /** The holder was claimed but its StartExecution never happened: issue it again. */
      restart?: StartSpec;
    }
  /** The holder failed: the lock goes to an abort of it, and this claim is queued behind the abort. */
  | { kind: "supersede"; item: LockItem; name: string; failed: string; abort: AbortSpec; replaced?: string }
  /** A redelivery of a request already handled, or a commit older than one already accepted: nothing to do. */
  | { kind: "stale"; holder?: string; reason: string }
  /** `ifBusy: "skip"` and the lock is taken. */
  | { kind: "busy"; holder: string; reason: string };

export interface AdmitOptions extends Timing {
  holderStatus?: HolderStatus;
  ifBusy: "queue" | "skip";
  /** The deploy state machine, and the ARN of its execution of a name. */
  stateMachineArn: string;
  arnFor: (name: string) => string;
  /** Execution name of the `seq`-th request. */
  nameFor: (r: Request, seq: number) => string;
  /** Builds the abort for a failed holder; undefined = no abort state machine configured. */
  abortFor?: (failedExecutionArn: string) => AbortSpec;
}

/**
 * Whether `r` was accepted before, or is older than something accepted: a redelivery of a known
 * request, a push of a commit that a later accepted push named as its `before` (GitHub delivers out
 * of order), or a non-forced push of a commit already accepted. Order comes from the queue's own
 * numbering and the pushes' ancestry, never from clocks.
 */
function alreadyAccepted(item: LockItem, r: Request): { known?: RequestRecord; reason?: string } {
  const history = item.requests ?? [];
  const known = history.find((h) => h.id === r.id);
  if (known) return { known };
  if (r.trigger !== "push" || r.forced) return {};
  const child = history.find((h) => h.trigger === "push" && h.before === r.commit);
  if (child)
    return {
      reason: `commit ${r.commit} is the parent of ${child.commit}, which was pushed after it and accepted as request #${child.seq} (${child.name})`,
    };
  const same = history.findLast((h) => h.trigger === "push" && h.commit === r.commit);
  if (same) return { reason: `commit ${r.commit} was already accepted as request #${same.seq} (${same.name})` };
  return {};
}

/**
 * Decides what happens to a deployment request given the lock item and (when the lock is held)
 * the holder's execution status. See docs/triggers.md for the table this implements.
 */
export function admit(item: LockItem | undefined, r: Request, o: AdmitOptions): AdmitDecision {
  const base = item ?? emptyItem(unitKeyOf(r), o.now, r);
  const seen = alreadyAccepted(base, r);
  if (seen.known) {
    const k = seen.known;
    const arn = o.arnFor(k.name);
    if (base.holder === arn) return { kind: "duplicate", executionArn: arn, name: k.name };
    if (base.queued?.seq === k.seq)
      return {
        kind: "queued",
        name: k.name,
        holder: base.holder ?? "",
        unchanged: true,
        reason: `request #${k.seq} (commit ${k.commit}) is already queued`,
      };
    const newer = newestAfter(base, k.seq);
    return {
      kind: "stale",
      ...(base.holder ? { holder: base.holder } : {}),
      reason: `a redelivery of request #${k.seq} (commit ${k.commit}, ${k.name}), which was already handled${
        newer ? ` and is older than request #${newer.seq} (${newer.commit})` : ""
      }: nothing started`,
    };
  }
  if (seen.reason)
    return { kind: "stale", ...(base.holder ? { holder: base.holder } : {}), reason: `${seen.reason}: nothing started` };

  const seq = (base.seq ?? 0) + 1;
  const name = o.nameFor(r, seq);
  const c: Claim = {
    ...r,
    input: { ...r.input, seq },
    seq,
    name,
    executionArn: o.arnFor(name),
    stateMachineArn: o.stateMachineArn,
  };
  const record: RequestRecord = {
    seq,
    id: r.id,
    commit: r.commit,
    trigger: r.trigger,
    ...(r.before ? { before: r.before } : {}),
    name,
    at: o.now,
  };
  /** The item with this request counted and remembered. */
  const accepted = (it: LockItem): LockItem => ({
    ...it,
    serviceName: r.service,
    environment: r.environment,
    seq,
    requests: [...(it.requests ?? []), record].slice(-REQUEST_HISTORY),
  });

  if (isFree(base, o.now, o.holderStatus)) {
    const claimed: LockItem = accepted({
      ...withoutHolder(base),
      ...holderFields(c),
      // Everything numbered below this request is superseded from now on (I7).
      floorSeq: seq,
      holderState: "starting",
      holderStart: { stateMachineArn: c.stateMachineArn, name: c.name, input: JSON.stringify(c.input) },
      acquiredAt: o.now,
      leaseExpiresAt: o.now + o.pendingLeaseMs,
      updatedAt: o.now,
      ...(base.holder ? { previousHolder: base.holder } : {}),
    });
    // A queued request is always older than this one (numbers only grow): this one replaces it.
    delete claimed.queued;
    return { kind: "start", item: claimed, claim: c, ...(base.holder ? { tookOverFrom: base.holder } : {}) };
  }

  const holder = base.holder!;
  // The holder is the abort a superseding push started for a failed deployment…
  const abortingFailed = base.lastFailed?.abortExecutionArn === holder;
  const failedDeploy = base.lastFailed?.executionArn ?? holder;
  // …and that abort failed too (DescribeExecution, or the pager's note on the lock item).
  const abortFailed =
    abortingFailed &&
    (isFailedStatus(o.holderStatus) ||
      (o.holderStatus === undefined && base.lastFailed?.resolution?.startsWith("abort ") === true));
  const failed = !abortingFailed && holderFailed(base, o.holderStatus);
  if (o.ifBusy === "skip") {
    const reason = abortFailed
      ? `the abort ${holder} of failed deployment ${failedDeploy} itself failed: an operator must act`
      : abortingFailed
        ? `failed deployment ${failedDeploy} is being aborted by ${holder}`
        : failed
          ? `the last deployment ${holder} ${o.holderStatus ?? base.lastFailed?.status ?? "FAILED"} and is unresolved: redrive or abort it`
          : `a deployment is in progress: ${holder}`;
    return { kind: "busy", holder, reason };
  }

  const q = base.queued;
  // The holder was claimed (by a trigger or a hand-off) but its execution does not exist: the
  // starter crashed or timed out before StartExecution. Issue the start again (same name and
  // input, so it is idempotent), whoever notices first: the queue never strands behind it.
  const restart =
    base.holderState === "starting" && o.holderStatus === "MISSING" && base.holderStart ? base.holderStart : undefined;
  const queued = queuedFrom(c, o.now, q);

  if (failed && o.abortFor) {
    const abort = o.abortFor(holder);
    const lastFailed: FailedDeploy = {
      executionArn: holder,
      status: o.holderStatus ?? base.lastFailed?.status ?? "FAILED",
      unresolved: true,
      failedAt: base.lastFailed?.executionArn === holder ? base.lastFailed.failedAt : o.now,
      abortExecutionArn: abort.executionArn,
      supersededAt: o.now,
      supersededBy: c.commit,
    };
    const next: LockItem = accepted({
      ...withoutHolder(base),
      holder: abort.executionArn,
      holderName: abort.name,
      ...(base.holderCommit ? { holderCommit: base.holderCommit } : {}),
      holderTrigger: "abort",
      holderState: "starting",
      holderStart: { stateMachineArn: abort.stateMachineArn, name: abort.name, input: abort.input },
      previousHolder: holder,
      acquiredAt: o.now,
      leaseExpiresAt: o.now + o.pendingLeaseMs,
      lastFailed,
      queued,
      updatedAt: o.now,
    });
    return { kind: "supersede", item: next, name: c.name, failed: holder, abort, ...(q ? { replaced: q.commit } : {}) };
  }

  const next: LockItem = accepted({ ...base, queued, updatedAt: o.now });
  let blockedBy: string | undefined;
  let reason = `queued behind ${holder}`;
  if (failed) {
    blockedBy = holder;
    reason = `queued behind failed deployment ${holder}: no abort state machine is configured (KILN_ABORT_STATE_MACHINE_ARN); redrive or abort it`;
  } else if (abortFailed) {
    // A running abort releases to the queue when it ends; a failed one needs an operator.
    blockedBy = failedDeploy;
    reason = `queued, but the abort ${holder} of failed deployment ${failedDeploy} failed: an operator must act`;
  } else if (abortingFailed) {
    reason = `queued behind the abort ${holder} of failed deployment ${failedDeploy}`;
  }
  return {
    kind: "queued",
    item: next,
    name: c.name,
    holder,
    unchanged: false,
    ...(q ? { replaced: q.commit } : {}),
    ...(blockedBy ? { blockedBy } : {}),
    ...(restart ? { restart } : {}),
    reason,
  };
}

function unitKeyOf(r: { service: string; environment: string }): string {
  return unitKey(r.service, r.environment);
}

// ---------------------------------------------------------------------------------------------
// Pager bookkeeping and supersede

/** The pager saw `executionArn` fail: record it when it held the lock (it may have changed the fleet). */
export function markFailed(item: LockItem | undefined, executionArn: string, status: string, now: number): LockItem | undefined {
  if (!item || item.holder !== executionArn) return undefined;
  if (item.lastFailed?.abortExecutionArn === executionArn) {
    // The abort of a failed deployment failed: keep the original failure, note the abort's outcome.
    return {
      ...item,
      lastFailed: { ...item.lastFailed, unresolved: true, resolution: `abort ${executionArn} ${status}` },
      updatedAt: now,
    };
  }
  if (item.lastFailed?.executionArn === executionArn && item.lastFailed.unresolved && item.lastFailed.status === status)
    return undefined;
  return { ...item, lastFailed: { executionArn, status, unresolved: true, failedAt: now }, updatedAt: now };
}

/** The pager saw `executionArn` succeed (e.g. after a redrive): its recorded failure is resolved. */
export function markResolved(item: LockItem | undefined, executionArn: string, now: number): LockItem | undefined {
  const f = item?.lastFailed;
  if (!item || !f?.unresolved || (f.executionArn !== executionArn && f.abortExecutionArn !== executionArn)) return undefined;
  return {
    ...item,
    lastFailed: { ...f, unresolved: false, resolvedAt: now, resolution: `${executionArn} SUCCEEDED` },
    updatedAt: now,
  };
}

export type SupersedeDecision =
  | { kind: "supersede"; item: LockItem; failed: string; abort: AbortSpec }
  | { kind: "already"; failed: string; abortExecutionArn: string }
  | { kind: "nothing"; reason: string };

/** Hands the lock from a failed holder to an abort of it (without queueing anything). */
export function supersede(
  item: LockItem | undefined,
  o: Timing & { holderStatus?: HolderStatus; abortFor: (failed: string) => AbortSpec; by?: string },
): SupersedeDecision {
  if (!item?.holder) return { kind: "nothing", reason: "the lock is not held" };
  if (item.lastFailed?.abortExecutionArn === item.holder) {
    return { kind: "already", failed: item.lastFailed.executionArn, abortExecutionArn: item.holder };
  }
  if (!holderFailed(item, o.holderStatus)) return { kind: "nothing", reason: `the holder ${item.holder} has not failed` };
  const abort = o.abortFor(item.holder);
  const next: LockItem = {
    ...withoutHolder(item),
    holder: abort.executionArn,
    holderName: abort.name,
    ...(item.holderCommit ? { holderCommit: item.holderCommit } : {}),
    holderTrigger: "abort",
    holderState: "starting",
    holderStart: { stateMachineArn: abort.stateMachineArn, name: abort.name, input: abort.input },
    previousHolder: item.holder,
    acquiredAt: o.now,
    leaseExpiresAt: o.now + o.pendingLeaseMs,
    lastFailed: {
      executionArn: item.holder,
      status: o.holderStatus ?? item.lastFailed?.status ?? "FAILED",
      unresolved: true,
      failedAt: item.lastFailed?.executionArn === item.holder ? item.lastFailed.failedAt : o.now,
      abortExecutionArn: abort.executionArn,
      supersededAt: o.now,
      ...(o.by ? { supersededBy: o.by } : {}),
    },
    updatedAt: o.now,
  };
  return { kind: "supersede", item: next, failed: item.holder, abort };
}
