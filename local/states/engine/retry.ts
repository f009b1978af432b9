/**
 * Retry and Catch matching (ASL spec "Retrying after an error", "Fallback states").
 */
import { StatesErrorNames } from "./errors.ts";

export interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  MaxAttempts?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
  JitterStrategy?: "FULL" | "NONE";
}

export interface Catcher {
  ErrorEquals: string[];
  Next: string;
  ResultPath?: string | null;
  Output?: unknown;
  Assign?: Record<string, unknown>;
}

/** Errors that wildcards do not match: they are terminal (Step Functions docs, "Error names"). */
const NOT_WILDCARD = new Set<string>([StatesErrorNames.DataLimitExceeded, StatesErrorNames.Runtime]);

/**
 * True when an `ErrorEquals` list matches `error`. `States.ALL` matches any error except the
 * terminal ones; `States.TaskFailed` also acts as a wildcard, except for `States.Timeout`.
 */
export function errorMatches(errorEquals: readonly string[], error: string): boolean {
  for (const e of errorEquals) {
    if (e === error) return true;
    if (e === StatesErrorNames.ALL && !NOT_WILDCARD.has(error)) return true;
    if (e === StatesErrorNames.TaskFailed && !NOT_WILDCARD.has(error) && error !== StatesErrorNames.Timeout) return true;
  }
  return false;
}

/** Index of the first retrier/catcher matching the error, or -1. */
export function findHandler<T extends { ErrorEquals: string[] }>(list: readonly T[] | undefined, error: string): number {
  return (list ?? []).findIndex((r) => errorMatches(r.ErrorEquals, error));
}

/** Defaults of the spec: IntervalSeconds 1, MaxAttempts 3, BackoffRate 2.0. */
export function retrierDefaults(r: Retrier): Required<Omit<Retrier, "MaxDelaySeconds">> & { MaxDelaySeconds?: number } {
  return {
    ErrorEquals: r.ErrorEquals,
    IntervalSeconds: r.IntervalSeconds ?? 1,
    MaxAttempts: r.MaxAttempts ?? 3,
    BackoffRate: r.BackoffRate ?? 2,
    MaxDelaySeconds: r.MaxDelaySeconds,
    JitterStrategy: r.JitterStrategy ?? "NONE",
  };
}

/**
 * Delay before retry number `attempt` (0-based count of retries this retrier already made):
 * `IntervalSeconds × BackoffRate^attempt`, capped by MaxDelaySeconds; FULL jitter picks uniformly
 * in [0, delay]. Milliseconds.
 */
export function retryDelayMs(r: Retrier, attempt: number, random: () => number): number {
  const d = retrierDefaults(r);
  let seconds = d.IntervalSeconds * d.BackoffRate ** attempt;
  if (d.MaxDelaySeconds !== undefined) seconds = Math.min(seconds, d.MaxDelaySeconds);
  if (d.JitterStrategy === "FULL") seconds = random() * seconds;
  return Math.round(seconds * 1000);
}
