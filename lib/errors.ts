/**
 * Errors whose `name` the state machines' Retry/Catch match. Each carries an operator-actionable
 * message and the underlying `cause`.
 */
export const ErrorNames = {
  /** A transient AWS error (throttling, 5xx) that outlived the SDK's own retries: retry the step. */
  Throttled: "kiln.Throttled",
  /** The resource is not ready yet (polling steps return a status instead where they can). */
  NotReady: "kiln.NotReady",
  /** The step failed for a reason an operator must act on (install script failed, AMI failed, …). */
  StepFailed: "kiln.StepFailed",
  /** Input or configuration is invalid: retrying will not help. */
  InvalidInput: "kiln.InvalidInput",
  /** Service configuration is invalid. */
  ConfigInvalid: "kiln.ConfigInvalid",
  /** Another deployment holds the service lock. */
  LockHeld: "kiln.LockHeld",
  /** This execution no longer holds the service lock (its lease expired and another took it): stop changing the fleet. */
  LockLost: "kiln.LockLost",
  /**
   * A newer request for the same (service, environment) was accepted after this execution's, or it
   * was aborted: it must never change the fleet again (I7). Changes nothing; no one needs paging.
   */
  Superseded: "kiln.Superseded",
  /** A canary/verification check failed (alarm, health, capacity): traffic was restored to blue. */
  VerificationFailed: "kiln.VerificationFailed",
  /** A wait exceeded its deadline. */
  Timeout: "kiln.Timeout",
} as const;
export type ErrorName = (typeof ErrorNames)[keyof typeof ErrorNames];

export class KilnError extends Error {
  constructor(
    override readonly name: ErrorName,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class ThrottledError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.Throttled, message, options);
  }
}
export class NotReadyError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.NotReady, message, options);
  }
}
export class StepFailedError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.StepFailed, message, options);
  }
}
export class InvalidInputError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.InvalidInput, message, options);
  }
}
export class ConfigInvalidError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.ConfigInvalid, message, options);
  }
}
export class LockHeldError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.LockHeld, message, options);
  }
}
export class LockLostError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.LockLost, message, options);
  }
}
export class SupersededError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.Superseded, message, options);
  }
}
export class VerificationFailedError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.VerificationFailed, message, options);
  }
}
export class TimeoutError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorNames.Timeout, message, options);
  }
}

/** Codes the AWS SDK classifies as throttling or transient (reference §1.5). */
const TRANSIENT = new Set([
  "RequestLimitExceeded",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestThrottled",
  "RequestThrottledException",
  "PriorRequestNotComplete",
  "SlowDown",
  "EC2ThrottledException",
  "ProvisionedThroughputExceededException",
  "LimitExceededException",
  "BandwidthLimitExceeded",
  "TransactionInProgressException",
  "ResourceContention",
  "ResourceContentionFault",
  "InternalError",
  "InternalFailure",
  "ServiceUnavailable",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
]);

/** True when an AWS SDK error is throttling or transient (retrying the step may succeed). */
export function isTransientAwsError(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  if (e.name && TRANSIENT.has(e.name)) return true;
  if (e.code && TRANSIENT.has(e.code)) return true;
  const status = e.$metadata?.httpStatusCode;
  return status === 429 || (status !== undefined && status >= 500);
}

/**
 * Maps a thrown error to one the state machine can match: transient AWS errors become
 * `kiln.Throttled`, kiln errors pass through, anything else becomes `kiln.StepFailed` with the
 * original as cause. Use at the edge of every domain function (the handler middleware does).
 */
export function classify(err: unknown, context: string): Error {
  if (err instanceof KilnError) return err;
  const e = err as Error;
  if (isTransientAwsError(err))
    return new ThrottledError(`${context}: AWS is throttling or unavailable (${e?.name}: ${e?.message})`, { cause: err });
  return new StepFailedError(`${context}: ${e?.name ?? "Error"}: ${e?.message ?? String(err)}`, { cause: err });
}
