import type { Trigger } from "../names.ts";

/**
 * The deploy state machine's execution input (`state-machines/deploy.asl.json`). Pushes add the
 * repository, branch, pusher and GitHub delivery id; rotations add the base AMI they roll onto.
 */
export interface DeployInput {
  service: string;
  /** The environment deployed (a branch maps to it); with `service`, the unit of deployment. */
  environment: string;
  commit: string;
  trigger: Trigger;
  /**
   * The request's place in its environment's queue, assigned by the queue when the request is first
   * accepted. Later requests have larger numbers; an execution whose number is below the
   * environment's floor was superseded and never changes the fleet (I7).
   */
  seq?: number;
  /** For a push: the commit the branch pointed at before it (GitHub's `before`); orders redeliveries. */
  before?: string;
  /** For a push: the branch was force-pushed (it may now point at an older commit, on purpose). */
  forced?: boolean;
  repository?: string;
  branch?: string;
  requestedBy?: string;
  pusher?: string;
  deliveryId?: string;
  baseAmi?: string;
}

/** One request the queue accepted (kept for the last `REQUEST_HISTORY` requests of an environment). */
export interface RequestRecord {
  seq: number;
  /** What makes two deliveries the same request: see `requestId`. */
  id: string;
  commit: string;
  trigger: string;
  before?: string;
  name: string;
  at: number;
}

/** A deployment waiting for the lock (one per environment: newer requests replace it). */
export interface QueuedDeploy {
  commit: string;
  /** Execution name it will start under. */
  name: string;
  input: DeployInput;
  /** Its place in the queue's order (newer requests have larger numbers). */
  seq: number;
  queuedAt: number;
  /** Older queued commits this one replaced (most recent last, at most 10 kept). */
  replaced?: string[];
}

/** The last deployment that failed while holding the lock, until it is redriven to success or aborted. */
export interface FailedDeploy {
  executionArn: string;
  status: string;
  unresolved: boolean;
  failedAt: number;
  /** The abort (compensation) execution started when a push superseded it. */
  abortExecutionArn?: string;
  supersededAt?: number;
  /** Commit whose push superseded it. */
  supersededBy?: string;
  resolvedAt?: number;
  resolution?: string;
}

/**
 * One item per (service, environment) in the lock table. The partition key attribute is named
 * `service` and holds `unitKey(service, environment)`; the plain names are in `serviceName` and
 * `environment`. Every write is conditional on `version`, so two writers can never both believe
 * they changed the same state.
 */
export interface LockItem {
  /** Partition key: `unitKey(service, environment)`. */
  service: string;
  serviceName?: string;
  environment?: string;
  version: number;
  /** The last sequence number the queue assigned. */
  seq?: number;
  /** Requests numbered below this were superseded (a newer one started) and may never change the fleet. */
  floorSeq?: number;
  /** The most recent accepted requests, oldest first (redeliveries and ancestors are recognised by them). */
  requests?: RequestRecord[];
  holderSeq?: number;
  /** Execution ARN holding the lock (a deploy, or an abort that took over from a failed deploy). */
  holder?: string;
  holderName?: string;
  holderCommit?: string;
  holderTrigger?: string;
  /**
   * `starting`: claimed by whoever is about to call StartExecution (webhook, rotation, the release
   * hand-off), with a short lease; `running`: the execution itself acquired it.
   */
  holderState?: "starting" | "running";
  /** While `starting`: the state machine ARN and input, so a retried release can re-issue the start. */
  holderStart?: { stateMachineArn: string; name: string; input: string };
  /** The holder before a hand-off (release → queued, failed deploy → its abort). */
  previousHolder?: string;
  leaseExpiresAt?: number;
  acquiredAt?: number;
  heartbeatAt?: number;
  queued?: QueuedDeploy;
  lastFailed?: FailedDeploy;
  updatedAt: number;
}
