import { TimeoutError } from "../errors.ts";
import type { Attempt } from "./types.ts";

/** Never poll more often than this, nor wait longer than this between checks. */
export const MIN_POLL_SECONDS = 2;
export const MAX_POLL_SECONDS = 300;

/** The first check lands at this fraction of the expected duration (AWS durations vary both ways). */
export const FIRST_CHECK_FRACTION = 0.8;

/**
 * Seconds until the next status check of something expected to take `expectedSeconds`, already
 * `elapsedSeconds` in: the first check lands at 80 % of the expected duration; after that the
 * interval is a twentieth of the expectation (so finishing costs at most ~5 % of lead time),
 * growing with the overrun past the expectation (half of it, capped at 5 min), so a slow image
 * costs a bounded number of extra transitions rather than one per fixed tick. Never beyond the
 * deadline, so a timeout is reported promptly.
 */
export function nextCheckSeconds(elapsedSeconds: number, expectedSeconds: number, timeoutSeconds: number): number {
  const untilDeadline = timeoutSeconds - elapsedSeconds + 1;
  const first = expectedSeconds * FIRST_CHECK_FRACTION;
  let wait: number;
  if (elapsedSeconds < first) wait = first - elapsedSeconds;
  else {
    const overrun = Math.max(0, elapsedSeconds - expectedSeconds);
    wait = Math.min(MAX_POLL_SECONDS, Math.max(expectedSeconds / 20, overrun / 2));
  }
  return Math.max(MIN_POLL_SECONDS, Math.ceil(Math.min(wait, untilDeadline)));
}

/**
 * Start of the current wait: the later of when the awaited thing began and when this attempt
 * began, so a redrive after a timeout gets a fresh deadline.
 */
export function waitStart(resourceStartMs: number | undefined, attempt: Attempt | undefined): number {
  const a = attempt ? Date.parse(attempt.startedAt) : Number.NaN;
  const r = resourceStartMs ?? Number.NaN;
  if (Number.isNaN(a)) return Number.isNaN(r) ? 0 : r;
  if (Number.isNaN(r)) return a;
  return Math.max(a, r);
}

/**
 * Elapsed seconds since `startMs`; throws `kiln.Timeout` with `what` when the deadline passed.
 */
export function checkDeadline(nowMs: number, startMs: number, timeoutSeconds: number, what: string): number {
  const elapsed = Math.max(0, (nowMs - startMs) / 1000);
  if (elapsed > timeoutSeconds) throw new TimeoutError(`${what} (waited ${Math.round(elapsed)} s, timeout ${timeoutSeconds} s)`);
  return elapsed;
}
