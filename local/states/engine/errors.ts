/**
 * Errors an ASL interpreter raises, one class per predefined `States.*` name (ASL spec, "Errors").
 * A state failure carries an error name (matched by Retry/Catch `ErrorEquals`) and a cause string,
 * which is exactly what ends up in `$states.errorOutput` / the Catch result: `{Error, Cause}`.
 */
export class StatesError extends Error {
  constructor(
    /** The error name matched by `ErrorEquals` (`States.TaskFailed`, `kiln.Throttled`, …). */
    readonly error: string,
    /** The cause string (AWS puts arbitrary text, often JSON, here). */
    readonly causeText: string = "",
  ) {
    super(causeText || error);
    this.name = error;
  }

  /** The error output a Catcher receives. */
  toOutput(): { Error: string; Cause: string } {
    return { Error: this.error, Cause: this.causeText };
  }
}

/** Predefined error names of the States Language (and the ones Step Functions adds). */
export const StatesErrorNames = {
  ALL: "States.ALL",
  HeartbeatTimeout: "States.HeartbeatTimeout",
  Timeout: "States.Timeout",
  TaskFailed: "States.TaskFailed",
  Permissions: "States.Permissions",
  ResultPathMatchFailure: "States.ResultPathMatchFailure",
  ParameterPathFailure: "States.ParameterPathFailure",
  BranchFailed: "States.BranchFailed",
  NoChoiceMatched: "States.NoChoiceMatched",
  IntrinsicFailure: "States.IntrinsicFailure",
  ExceedToleratedFailureThreshold: "States.ExceedToleratedFailureThreshold",
  ItemReaderFailed: "States.ItemReaderFailed",
  ResultWriterFailed: "States.ResultWriterFailed",
  QueryEvaluationError: "States.QueryEvaluationError",
  DataLimitExceeded: "States.DataLimitExceeded",
  Runtime: "States.Runtime",
} as const;

export class TaskFailedError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.TaskFailed, cause);
  }
}
export class TimeoutError extends StatesError {
  constructor(cause = "") {
    super(StatesErrorNames.Timeout, cause);
  }
}
export class HeartbeatTimeoutError extends StatesError {
  constructor(cause = "") {
    super(StatesErrorNames.HeartbeatTimeout, cause);
  }
}
export class PermissionsError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.Permissions, cause);
  }
}
export class ResultPathMatchFailureError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.ResultPathMatchFailure, cause);
  }
}
export class ParameterPathFailureError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.ParameterPathFailure, cause);
  }
}
export class BranchFailedError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.BranchFailed, cause);
  }
}
export class NoChoiceMatchedError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.NoChoiceMatched, cause);
  }
}
export class IntrinsicFailureError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.IntrinsicFailure, cause);
  }
}
export class ExceedToleratedFailureThresholdError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.ExceedToleratedFailureThreshold, cause);
  }
}
export class QueryEvaluationError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.QueryEvaluationError, cause);
  }
}
export class DataLimitExceededError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.DataLimitExceeded, cause);
  }
}
export class RuntimeError extends StatesError {
  constructor(cause: string) {
    super(StatesErrorNames.Runtime, cause);
  }
}

/**
 * Thrown through every await of a branch when the execution is stopped, times out, or a sibling
 * branch failed. It is not a state failure: Retry and Catch never see it.
 */
export class AbortedSignal extends Error {
  constructor(readonly reason: "stopped" | "timeout" | "sibling" | "history") {
    super(`aborted (${reason})`);
    this.name = "AbortedSignal";
  }
}

/** Turns anything thrown inside the engine into a StatesError (unknown errors become States.Runtime). */
export function asStatesError(err: unknown): StatesError {
  if (err instanceof StatesError) return err;
  const e = err as { name?: string; message?: string };
  return new RuntimeError(`${e?.name ?? "Error"}: ${e?.message ?? String(err)}`);
}
