/**
 * What the execution page shows, read only through the Step Functions API (plus the service's live
 * status through EC2, Auto Scaling and ELBv2): the machine's graph with each state's outcome, the
 * event history, each step's result, and which operator actions apply.
 */
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  DescribeStateMachineForExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
} from "@aws-sdk/client-sfn";
import { type KilnConfig, loadConfig, serviceConfig } from "../../lib/config/index.ts";
import { causeMessage, judgedFailure } from "../../lib/ops/redrive.ts";
import { type ServiceStatus, serviceStatus } from "../../lib/ops/status.ts";
import { type ExecutionUnit, machineOfExecution, parseInput, unitOfInput } from "../../lib/ops/target.ts";
import type { Target } from "../cli/target.ts";
import { type GraphLayout, layoutGraph, stateGraph } from "./graph.ts";

/** Outcome of a state as the history tells it. `notRun` states never appear in the history. */
export type StateOutcome = "notRun" | "running" | "succeeded" | "failed" | "aborted";

/** One result of a step: a task's output (what its checks saw) or its error and cause. */
export interface StepResult {
  eventId: number;
  at: string;
  state: string;
  ok: boolean;
  /** The task's result; a Lambda invoke's `Payload` is unwrapped. Large values are cut to a string. */
  output?: unknown;
  error?: string;
  cause?: string;
}

export interface StateRun {
  outcome: StateOutcome;
  visits: number;
  enteredAt?: string;
  /** The latest results, newest last. */
  results: StepResult[];
}

export interface EventRow {
  id: number;
  at: string;
  type: string;
  state?: string;
  detail?: string;
}

export interface Replay {
  states: Record<string, StateRun>;
  /** States running now (only while the execution runs). */
  current: string[];
  /** The state the execution failed at (its latest failure), if it is failed now. */
  failed?: string;
  events: EventRow[];
}

/** An action the page may offer, and if not, why not. */
export interface ActionAvailability {
  enabled: boolean;
  why?: string;
  /** The action asks the operator to confirm this first (and is then sent with `force`). */
  confirm?: string;
}

export interface ExecutionView {
  execution: {
    arn: string;
    name: string;
    status: string;
    stateMachineArn: string;
    startDate?: string;
    stopDate?: string;
    error?: string;
    cause?: string;
    redriveCount: number;
    redriveStatus?: string;
    redriveStatusReason?: string;
    input?: unknown;
  };
  service?: string;
  /** The environment the execution acts on (from its input). */
  environment?: string;
  graph: GraphLayout;
  replay: Replay;
  status?: ServiceStatus;
  actions: Record<"approve" | "reject" | "abort" | "redrive", ActionAvailability>;
}

const RESULTS_PER_STATE = 5;
const MAX_OUTPUT_CHARS = 16_000;
const MAX_CAUSE_CHARS = 8_000;

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}… (${s.length - max} more characters)` : s;
}

function parseJson(s: string | undefined): unknown {
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

/** A task's output as the operator wants to read it: a Lambda invoke's Payload, cut if huge. */
export function taskOutput(raw: string | undefined): unknown {
  let v = parseJson(raw);
  if (v && typeof v === "object" && !Array.isArray(v) && "Payload" in v && "StatusCode" in v)
    v = (v as { Payload: unknown }).Payload;
  const text = typeof v === "string" ? v : JSON.stringify(v);
  return text !== undefined && text.length > MAX_OUTPUT_CHARS ? clip(text, MAX_OUTPUT_CHARS) : v;
}

/** A failure's cause: Lambda errors arrive as `{"errorType","errorMessage","trace"}` JSON; the message is what matters. */
export function causeText(cause: string | undefined): string | undefined {
  return cause === undefined ? undefined : clip(causeMessage(cause), MAX_CAUSE_CHARS);
}

/** One line for the history table: a step result's `status` and what it saw, cut short. */
function summary(output: unknown): string | undefined {
  if (output === undefined || output === null) return undefined;
  const text = typeof output === "string" ? output : JSON.stringify(output);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

interface FailureDetails {
  error?: string;
  cause?: string;
}

function failureOf(e: HistoryEvent): FailureDetails | undefined {
  return (
    e.taskFailedEventDetails ??
    e.taskTimedOutEventDetails ??
    e.taskStartFailedEventDetails ??
    e.taskSubmitFailedEventDetails ??
    e.lambdaFunctionFailedEventDetails ??
    e.lambdaFunctionTimedOutEventDetails ??
    e.lambdaFunctionStartFailedEventDetails ??
    e.lambdaFunctionScheduleFailedEventDetails ??
    e.activityFailedEventDetails ??
    e.activityTimedOutEventDetails
  );
}

function successOutput(e: HistoryEvent): string | undefined {
  return (e.taskSucceededEventDetails ?? e.lambdaFunctionSucceededEventDetails ?? e.activitySucceededEventDetails)?.output;
}

/**
 * Replays an execution's history (oldest first) into per-state outcomes and step results.
 *
 * Task events are attributed to the state they belong to by following `previousEventId` back to the
 * nearest `…StateEntered` event (AWS chains every event to its predecessor in the same branch, which
 * keeps this right inside Parallel branches), falling back to the latest entered state. A state still
 * running when the execution fails, times out or is aborted is the one it stopped at. A redrive
 * re-enters failed states, so their outcome follows the newest attempt.
 */
export function replayHistory(history: HistoryEvent[], topLevel: Iterable<string>): Replay {
  const states: Record<string, StateRun> = {};
  for (const id of topLevel) states[id] = { outcome: "notRun", visits: 0, results: [] };
  const byId = new Map<number, HistoryEvent>();
  const enteredName = new Map<number, string>();
  const events: EventRow[] = [];
  let lastEntered: string | undefined;
  let executionStatus = "RUNNING";
  let failed: string | undefined;

  const owner = (e: HistoryEvent): string | undefined => {
    let prev = e.previousEventId;
    for (let hops = 0; prev !== undefined && prev > 0 && hops < 1_000; hops++) {
      const name = enteredName.get(prev);
      if (name !== undefined) return name;
      const p = byId.get(prev);
      if (!p || p.stateExitedEventDetails) break;
      prev = p.previousEventId;
    }
    return lastEntered;
  };

  for (const e of history) {
    const id = e.id ?? byId.size + 1;
    byId.set(id, e);
    const type = e.type ?? "Unknown";
    const at = e.timestamp ? new Date(e.timestamp).toISOString() : "";
    const row: EventRow = { id, at, type };
    if (e.stateEnteredEventDetails?.name !== undefined) {
      const name = e.stateEnteredEventDetails.name;
      enteredName.set(id, name);
      lastEntered = name;
      row.state = name;
      const s = states[name];
      if (s) {
        s.outcome = "running";
        s.visits++;
        s.enteredAt = at;
      }
    } else if (e.stateExitedEventDetails?.name !== undefined) {
      const name = e.stateExitedEventDetails.name;
      row.state = name;
      const s = states[name];
      if (s) s.outcome = "succeeded";
    } else if (type === "ExecutionRedriven") {
      executionStatus = "RUNNING";
      failed = undefined;
    } else if (type === "ExecutionSucceeded") {
      executionStatus = "SUCCEEDED";
    } else if (type === "ExecutionFailed" || type === "ExecutionTimedOut" || type === "ExecutionAborted") {
      executionStatus = type === "ExecutionFailed" ? "FAILED" : type === "ExecutionTimedOut" ? "TIMED_OUT" : "ABORTED";
      const f = e.executionFailedEventDetails ?? e.executionTimedOutEventDetails ?? e.executionAbortedEventDetails;
      if (f) row.detail = [f.error, causeText(f.cause)].filter(Boolean).join(": ");
      for (const [name, s] of Object.entries(states)) {
        if (s.outcome !== "running") continue;
        s.outcome = type === "ExecutionAborted" ? "aborted" : "failed";
        if (s.outcome === "failed") failed = name;
      }
    } else {
      const f = failureOf(e);
      const out = successOutput(e);
      // Execution-level events belong to no state.
      const state = type.startsWith("Execution") ? undefined : owner(e);
      row.state = state;
      if (f || out !== undefined) {
        const result: StepResult = f
          ? { eventId: id, at, state: state ?? "", ok: false, error: f.error, cause: causeText(f.cause) }
          : { eventId: id, at, state: state ?? "", ok: true, output: taskOutput(out) };
        row.detail = f ? [f.error, result.cause].filter(Boolean).join(": ") : summary(result.output);
        const s = state === undefined ? undefined : states[state];
        if (s) {
          s.results.push(result);
          if (s.results.length > RESULTS_PER_STATE) s.results.shift();
        }
      }
    }
    events.push(row);
  }
  const current = executionStatus === "RUNNING" ? Object.keys(states).filter((k) => states[k]!.outcome === "running") : [];
  return { states, current, failed, events };
}

/** Every event of an execution, oldest first (all pages). */
export async function executionHistory(t: Target, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const r = await t.clients.sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 1000 }));
    events.push(...(r.events ?? []));
    nextToken = r.nextToken;
  } while (nextToken);
  return events;
}

export { machineOfExecution };

/** Which operator actions apply to an execution, and why the others do not. */
export function availableActions(
  t: Target,
  d: Pick<
    DescribeExecutionCommandOutput,
    "status" | "redriveStatus" | "redriveStatusReason" | "executionArn" | "error" | "cause"
  >,
  replay: Replay,
  graph: GraphLayout,
): ExecutionView["actions"] {
  const status = d.status ?? "";
  const isDeploy = t.stateMachines.deploy !== undefined && machineOfExecution(d.executionArn ?? "") === t.stateMachines.deploy;
  const waiting = replay.current.some((s) => graph.nodes.find((n) => n.id === s)?.callback);
  const decision: ActionAvailability =
    status !== "RUNNING"
      ? { enabled: false, why: `the execution is ${status}` }
      : !waiting
        ? { enabled: false, why: "no step is waiting for approval" }
        : !t.tables.DeploymentsTable
          ? { enabled: false, why: "the deployments table is not known for this target" }
          : { enabled: true };
  const redrivable = ["FAILED", "TIMED_OUT", "ABORTED"].includes(status);
  const judged = judgedFailure(d);
  return {
    approve: decision,
    reject: decision,
    abort: !isDeploy
      ? { enabled: false, why: "only deployments can be aborted" }
      : !t.stateMachines.abort
        ? { enabled: false, why: "the abort state machine is not deployed in this stack" }
        : status === "SUCCEEDED"
          ? { enabled: false, why: "the deployment succeeded (roll back instead)" }
          : { enabled: true },
    redrive: !redrivable
      ? { enabled: false, why: `only failed, timed-out or aborted executions can be redriven (this one is ${status})` }
      : d.redriveStatus && d.redriveStatus !== "REDRIVABLE"
        ? { enabled: false, why: d.redriveStatusReason ?? `redrive status ${d.redriveStatus}` }
        : judged
          ? {
              enabled: true,
              confirm: `This commit failed the canary: ${judged}\n\nA redrive judges the same commit again on fresh traffic. The way forward is Abort or a new push.\n\nRedrive anyway?`,
            }
          : { enabled: true },
  };
}

const layouts = new Map<string, GraphLayout>();

/** Layouts are cached by definition text: a machine's definition changes rarely, executions poll often. */
function layoutOf(definition: string): GraphLayout {
  let l = layouts.get(definition);
  if (!l) {
    l = layoutGraph(stateGraph(definition));
    if (layouts.size >= 32) layouts.delete(layouts.keys().next().value!);
    layouts.set(definition, l);
  }
  return l;
}

/**
 * The unit an execution acts on, from its input (never its name) — if kiln.config.yaml knows the
 * service. An input without an environment (from before environments) gets its branch's.
 */
function unitOf(d: DescribeExecutionCommandOutput, config: KilnConfig): ExecutionUnit | undefined {
  return unitOfInput(parseInput(d.input), config);
}

/** Everything the execution page shows, in one read. */
export async function executionView(t: Target, executionArn: string): Promise<ExecutionView> {
  const [d, machine, history] = await Promise.all([
    t.clients.sfn.send(new DescribeExecutionCommand({ executionArn })),
    t.clients.sfn.send(new DescribeStateMachineForExecutionCommand({ executionArn })),
    executionHistory(t, executionArn),
  ]);
  const graph = layoutOf(machine.definition ?? "{}");
  const replay = replayHistory(
    history,
    graph.nodes.map((n) => n.id),
  );
  const config = loadConfig();
  const unit = unitOf(d, config);
  const service = unit?.service;
  const status = unit
    ? await serviceStatus(unit.service, serviceConfig(config, unit.service, unit.environment), t.clients, {
        deployStateMachineArn: t.stateMachines.deploy,
        executions: 5,
        config,
        ...(unit.environment ? { environment: unit.environment } : {}),
      })
    : undefined;
  const input = parseJson(d.input);
  return {
    execution: {
      arn: d.executionArn ?? executionArn,
      name: d.name ?? "",
      status: d.status ?? "UNKNOWN",
      stateMachineArn: d.stateMachineArn ?? "",
      startDate: d.startDate?.toISOString(),
      stopDate: d.stopDate?.toISOString(),
      error: d.error,
      cause: causeText(d.cause),
      redriveCount: d.redriveCount ?? 0,
      redriveStatus: d.redriveStatus,
      redriveStatusReason: d.redriveStatusReason,
      input: typeof input === "string" ? clip(input, MAX_OUTPUT_CHARS) : input,
    },
    service,
    ...(unit?.environment ? { environment: unit.environment } : {}),
    graph,
    replay,
    status,
    actions: availableActions(t, d, replay, graph),
  };
}
