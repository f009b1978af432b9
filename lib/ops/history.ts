/**
 * Reading an execution's history the way an operator does: one line per step (polling loops folded
 * into one line with a count), causes as text, and where a deployment is in its canary loop. Pure
 * functions over Step Functions' `HistoryEvent`s, plus the one read the status needs.
 */
import { GetExecutionHistoryCommand, type HistoryEvent } from "@aws-sdk/client-sfn";
import { causeMessage } from "./redrive.ts";
import { parseInput, type SfnSender } from "./target.ts";

/** The deploy machine's canary loop (state-machines/deploy.asl.json): ShiftTraffic → bake → verify → next. */
export const CANARY_STATES: ReadonlySet<string> = new Set([
  "ShiftTraffic",
  "BakeCanary",
  "BakeVerdict",
  "VerifyCanary",
  "CanaryVerdict",
  "WaitForReconcile",
  "NextCanaryStep",
]);

/** Canary step `step` of `steps` (1-based), sending `weight` % to green. */
export interface CanaryPosition {
  step: number;
  steps: number;
  weight: number;
}

/**
 * The canary step of a task's scheduled parameters: the canary tasks are invoked with
 * `{plan: {steps: [{weight}…]}, index}` (the plan PlanRoll wrote), so the step is read, not guessed.
 */
export function canaryFromParameters(parameters: string | undefined): CanaryPosition | undefined {
  const payload = parseInput(parameters)?.Payload as { plan?: { steps?: { weight?: unknown }[] }; index?: unknown } | undefined;
  const steps = payload?.plan?.steps;
  const index = payload?.index;
  if (!Array.isArray(steps) || typeof index !== "number" || !steps[index]) return undefined;
  const weight = steps[index]!.weight;
  if (typeof weight !== "number") return undefined;
  return { step: index + 1, steps: steps.length, weight };
}

/**
 * Where a running deployment in state `state` is in its canary loop, from its newest scheduled
 * canary task (one page of history, newest first); undefined outside the loop.
 */
export async function canaryOf(sfn: SfnSender, executionArn: string, state: string): Promise<CanaryPosition | undefined> {
  if (!CANARY_STATES.has(state)) return undefined;
  const r = await sfn.send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 200 }));
  for (const e of (r.events ?? []) as HistoryEvent[]) {
    const c = canaryFromParameters(e.taskScheduledEventDetails?.parameters);
    if (c) return c;
  }
  return undefined;
}

/**
 * A Lambda error cause (`{"errorType","errorMessage","trace"…}` JSON) as an operator reads it:
 * `errorType: errorMessage`, without the stack trace or file paths. Other causes are kept as text.
 */
export function readableCause(error: string | undefined, cause: string | undefined): string {
  const errorType = parseInput(cause)?.errorType;
  const type = typeof errorType === "string" && errorType ? errorType : error;
  let message = causeMessage(cause);
  // A message may still carry a stack (an error thrown with one in its text): keep what precedes it.
  message = message
    .split("\n")
    .filter((l) => !/^\s+at\s/.test(l))
    .join("\n")
    .replace(/\(?(?:file:\/\/)?\/(?:[\w.@-]+\/)+[\w.@-]+(?::\d+){0,2}\)?/g, "")
    .trim();
  if (message.length > 500) message = `${message.slice(0, 500)}…`;
  if (!type) return message;
  return message && message !== type ? `${type}: ${message}` : type;
}

/** One line of `kiln logs`: a step, its polling loop folded in. */
export interface StepLine {
  /** The step (the Task, or the first state, of the line). */
  state: string;
  /** How many times the step ran (a polling loop's iterations; 1 for a plain step). */
  count: number;
  start: string;
  end?: string;
  durationSeconds?: number;
  outcome: "succeeded" | "failed" | "running" | "redriven";
  /** Failures: `errorType: message` of the last one (retried ones included). */
  cause?: string;
  /** Failed attempts that were retried or caught before the step went on. */
  retries?: number;
}

const FAILURE_TYPES = /^(TaskFailed|TaskTimedOut|LambdaFunctionFailed|LambdaFunctionTimedOut|ExecutionFailed|ExecutionTimedOut)$/;

function failureOf(e: HistoryEvent): { error?: string; cause?: string } | undefined {
  if (!FAILURE_TYPES.test(e.type ?? "")) return undefined;
  return (
    e.taskFailedEventDetails ??
    e.taskTimedOutEventDetails ??
    e.lambdaFunctionFailedEventDetails ??
    e.lambdaFunctionTimedOutEventDetails ??
    e.executionFailedEventDetails ??
    e.executionTimedOutEventDetails ??
    {}
  );
}

/**
 * Folds a history (oldest first) into one line per step. A state entered again while the current
 * line's loop runs (a Task polled again after its Choice and Wait) adds to the count; Choice, Wait,
 * Pass and end states join the line of the step they follow. A redrive ends the line it interrupts.
 * `executionStatus` says whether an unfinished last line is running or failed.
 */
export function stepLines(events: HistoryEvent[], executionStatus: string): StepLine[] {
  const lines: (StepLine & { names: Set<string>; end?: string; pending: number })[] = [];
  let current: (typeof lines)[number] | undefined;
  for (const e of events) {
    const at = e.timestamp ? new Date(e.timestamp).toISOString() : "";
    const type = e.type ?? "";
    if (type === "ExecutionRedriven") {
      lines.push({ state: "(redriven)", count: 1, start: at, outcome: "redriven", names: new Set(), pending: 0 });
      current = undefined;
      continue;
    }
    const entered = e.stateEnteredEventDetails?.name;
    if (entered) {
      const isTask = type === "TaskStateEntered" || type === "MapStateEntered" || type === "ParallelStateEntered";
      if (current && current.names.has(entered)) {
        if (entered === current.state) current.count++;
      } else if (!current || isTask) {
        current = { state: entered, count: 1, start: at, outcome: "running", names: new Set([entered]), pending: 0 };
        lines.push(current);
      } else current.names.add(entered);
      current.outcome = "running";
      continue;
    }
    if (e.stateExitedEventDetails?.name && current) {
      current.end = at;
      current.outcome = "succeeded";
      if (current.pending) current.retries = (current.retries ?? 0) + current.pending;
      current.pending = 0;
      continue;
    }
    const f = failureOf(e);
    if (f && current && !type.startsWith("Execution")) {
      current.cause = readableCause(f.error, f.cause);
      current.pending++;
      current.end = at;
    } else if (f && current && type.startsWith("Execution") && !current.cause) current.cause = readableCause(f.error, f.cause);
  }
  const last = lines.at(-1);
  if (last && last.outcome === "running" && executionStatus !== "RUNNING" && executionStatus !== "PENDING_REDRIVE")
    last.outcome = executionStatus === "SUCCEEDED" ? "succeeded" : "failed";
  return lines.map(({ names: _n, pending, ...l }) => ({
    ...l,
    ...(l.outcome === "failed" && pending > 1 ? { retries: (l.retries ?? 0) + pending - 1 } : {}),
    ...(l.end ? { durationSeconds: Math.max(0, (Date.parse(l.end) - Date.parse(l.start)) / 1000) } : {}),
    // A step that went on after a failure was retried: its cause is history, shown with the count.
    ...(l.outcome === "succeeded" && !l.retries ? { cause: undefined } : {}),
  }));
}

/** `1h02m`, `3m05s`, `42s`: durations as operators read them. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
