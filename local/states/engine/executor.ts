/**
 * Executes ONE state: history entry/exit events, the state type's own behaviour (states/*.ts),
 * Retry with backoff on the clock, Catch, and variable assignment. A failure that is not handled
 * is rethrown to the graph runner (machine.ts) with whatever inner progress the state made, so
 * redrive can resume inside a Map or Parallel.
 */
import { AbortedSignal, StatesError, StatesErrorNames, asStatesError } from "./errors.ts";
import { applyPayloadTemplate, applyResultPath } from "./io.ts";
import type { PathRefs } from "./jsonpath.ts";
import { type JsonataEnv, evaluateRequired, evaluateTemplate } from "./jsonata.ts";
import { type Catcher, type Retrier, findHandler, retrierDefaults, retryDelayMs } from "./retry.ts";
import type { Frame } from "./runtime.ts";
import type { Checkpoint, InnerCheckpoint, QueryLanguage, RunResult, StateDefinition, StatesGraph } from "./types.ts";

/** Everything a state type's implementation gets. */
export interface StateRun {
  readonly name: string;
  readonly def: StateDefinition;
  readonly input: unknown;
  readonly frame: Frame;
  readonly ql: QueryLanguage;
  /** Id of this state's `…StateEntered` event (AWS error messages cite it). */
  readonly enteredId: number;
  /** Retries made so far (`$$.State.RetryCount`). */
  readonly attempt: number;
  /** Progress from a previous attempt (redrive only). */
  readonly inner?: InnerCheckpoint;
  /** The context object, with optional extra members (`Task`, `Map`). */
  context(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Resolution of `$$` and `$var` for JSONPath. */
  refs(extra?: Record<string, unknown>): PathRefs;
  /** Bindings for JSONata (`$states`, variables, clock). */
  jsonata(states: Partial<JsonataEnv["states"]>, extraContext?: Record<string, unknown>): JsonataEnv;
  /** Appends a history event on this branch. */
  emit(type: string, details?: Record<string, unknown>): number;
  /** Runs a nested graph (Parallel branch, Map iteration). */
  runGraph(graph: StatesGraph, input: unknown, frame: Frame, resume?: Checkpoint): Promise<RunResult>;
  /** Records inner progress so a failure or abort can be resumed by redrive. */
  setInner(inner: InnerCheckpoint): void;
  /**
   * Waits for an outside caller (a task token's answer): while `p` is pending this state does not
   * demand clock time, so a served virtual clock idles instead of jumping to the task's timeout.
   */
  awaitOutside<T>(p: Promise<T>): Promise<T>;
}

export interface StateOutcome {
  output: unknown;
  /** Next state, unless the state ends its graph. */
  next?: string;
  /** Variables to assign (already evaluated with the pre-state values). */
  assign?: Record<string, unknown>;
  /** Set by Fail: no exit event; the error is raised instead. */
  fail?: StatesError;
}

export type StateImpl = (run: StateRun) => Promise<StateOutcome>;

/** Inner progress of a failed/aborted Map or Parallel, attached to the thrown error. */
const innerProgress = new WeakMap<Error, InnerCheckpoint>();
export function innerOf(err: unknown): InnerCheckpoint | undefined {
  return err instanceof Error ? innerProgress.get(err) : undefined;
}

/** Errors raised by data processing (not by a task): AWS prefixes their cause with where they happened. */
const PROCESSING = new Set<string>([
  StatesErrorNames.Runtime,
  StatesErrorNames.ParameterPathFailure,
  StatesErrorNames.ResultPathMatchFailure,
  StatesErrorNames.IntrinsicFailure,
  StatesErrorNames.QueryEvaluationError,
]);

/** The event written when a running state is stopped, by state type. */
const ABORTED_EVENT: Record<string, string> = {
  Task: "TaskStateAborted",
  Wait: "WaitStateAborted",
  Map: "MapStateAborted",
  Parallel: "ParallelStateAborted",
};

export interface ExecuteArgs {
  name: string;
  def: StateDefinition;
  input: unknown;
  frame: Frame;
  inner?: InnerCheckpoint;
  impls: Record<string, StateImpl>;
  runGraph: StateRun["runGraph"];
}

/** The result of a state: where to go next and with what (`next` undefined ends the graph). */
export interface Transition {
  output: unknown;
  next?: string;
}

export async function executeState(a: ExecuteArgs): Promise<Transition> {
  const { name, def, frame } = a;
  const rt = frame.rt;
  const ql: QueryLanguage = def.QueryLanguage ?? frame.queryLanguage;
  const enteredTime = rt.clock.date().toISOString();
  const emit = (type: string, details?: Record<string, unknown>) => rt.history.add(type, details, frame.cursor);
  const enteredId = emit(`${def.Type}StateEntered`, { name, input: toJson(a.input), inputDetails: { truncated: false } });
  if (!a.impls[def.Type]) throw new StatesError(StatesErrorNames.Runtime, `Unsupported state type ${def.Type}`);

  // A running leaf state waits on the clock (its Wait, its task's work); Map and Parallel only
  // through their children, except while they sleep between retries.
  const leaf = def.Type !== "Map" && def.Type !== "Parallel";
  let release = leaf ? rt.clock.demand?.() : undefined;
  try {
    return await runAttempts(a, enteredId, enteredTime, emit, ql, {
      pause: () => {
        release?.();
        release = undefined;
      },
      resume: () => {
        if (leaf && !release) release = rt.clock.demand?.();
      },
    });
  } finally {
    release?.();
  }
}

interface DemandControl {
  pause(): void;
  resume(): void;
}

async function runAttempts(
  a: ExecuteArgs,
  enteredId: number,
  enteredTime: string,
  emit: (type: string, details?: Record<string, unknown>) => number,
  ql: QueryLanguage,
  demand: DemandControl,
): Promise<Transition> {
  const { name, def, frame } = a;
  const rt = frame.rt;
  const impl = a.impls[def.Type]!;
  const retriers: Retrier[] = def.Retry ?? [];
  const retryCounts = retriers.map(() => 0);
  let attempt = 0;
  let inner = a.inner;

  for (;;) {
    let lastInner: InnerCheckpoint | undefined;
    const context = (extra?: Record<string, unknown>) => ({
      ...rt.contextBase(),
      State: { EnteredTime: enteredTime, Name: name, RetryCount: attempt },
      ...(extra ?? {}),
    });
    const run: StateRun = {
      name,
      def,
      input: a.input,
      frame,
      ql,
      enteredId,
      attempt,
      inner,
      context,
      refs: (extra) => refsFor(frame, context(extra)),
      jsonata: (states, extra) => ({
        states: { input: a.input, context: context(extra), ...states },
        variables: frame.scope.all(),
        now: () => rt.clock.now(),
        random: () => rt.random(),
      }),
      emit,
      runGraph: a.runGraph,
      setInner: (i) => {
        lastInner = i;
      },
      awaitOutside: async (p) => {
        demand.pause();
        try {
          return await p;
        } finally {
          demand.resume();
        }
      },
    };
    try {
      frame.cancel.throwIfAborted();
      const out = await impl(run);
      if (out.fail) throw out.fail;
      if (out.assign) frame.scope.assign(out.assign);
      emit(`${def.Type}StateExited`, {
        name,
        output: toJson(out.output),
        outputDetails: { truncated: false },
        ...(out.assign && Object.keys(out.assign).length > 0
          ? {
              assignedVariables: Object.fromEntries(Object.entries(out.assign).map(([k, v]) => [k, toJson(v)])),
              assignedVariablesDetails: { truncated: false },
            }
          : {}),
      });
      return { output: out.output, next: out.next };
    } catch (thrown) {
      if (thrown instanceof AbortedSignal) {
        const ev = ABORTED_EVENT[def.Type];
        if (ev) safeEmit(() => emit(ev));
        if (lastInner) innerProgress.set(thrown, lastInner);
        throw thrown;
      }
      let err = asStatesError(thrown);
      if (PROCESSING.has(err.error) && !err.causeText.startsWith("An error occurred while executing the state")) {
        err = new StatesError(
          err.error,
          `An error occurred while executing the state '${name}' (entered at the event id #${enteredId}). ${err.causeText}`,
        );
      }
      if (def.Type === "Fail") throw err;

      const ri = findHandler(retriers, err.error);
      if (ri >= 0) {
        const r = retriers[ri]!;
        const count = retryCounts[ri]!;
        if (count < retrierDefaults(r).MaxAttempts) {
          retryCounts[ri] = count + 1;
          const backoff = rt.clock.demand?.();
          await frame.cancel
            .sleep(
              rt.clock,
              retryDelayMs(r, count, () => rt.random()),
            )
            .catch((e) => {
              if (e instanceof AbortedSignal) {
                const ev = ABORTED_EVENT[def.Type];
                if (ev) safeEmit(() => emit(ev));
              }
              throw e;
            })
            .finally(() => backoff?.());
          attempt++;
          // A retry starts the state's work over: a Map or Parallel runs every iteration again.
          inner = undefined;
          continue;
        }
      }

      const ci = findHandler<Catcher>(def.Catch, err.error);
      if (ci >= 0) {
        const c = (def.Catch as Catcher[])[ci]!;
        const errorOutput = err.toOutput();
        let output: unknown;
        let assign: Record<string, unknown> | undefined;
        if (ql === "JSONata") {
          const env = run.jsonata({ errorOutput });
          output = c.Output === undefined ? errorOutput : await evaluateRequired(c.Output, env, "Output");
          if (c.Assign) assign = (await evaluateTemplate(c.Assign, env, "Assign")) as Record<string, unknown>;
        } else {
          output = applyResultPath(a.input, errorOutput, c.ResultPath === undefined ? "$" : c.ResultPath);
          if (c.Assign)
            assign = applyPayloadTemplate(c.Assign, errorOutput, { refs: run.refs(), random: () => rt.random() }) as Record<
              string,
              unknown
            >;
        }
        if (assign) frame.scope.assign(assign);
        emit(`${def.Type}StateExited`, { name, output: toJson(output), outputDetails: { truncated: false } });
        return { output, next: c.Next };
      }
      if (lastInner) innerProgress.set(err, lastInner);
      throw err;
    }
  }
}

function safeEmit(fn: () => void): void {
  try {
    fn();
  } catch {
    // The history limit was reached: the aborted event is dropped, the execution fails anyway.
  }
}

/** `$$` is the context object; `$name` reads the frame's variables. */
export function refsFor(frame: Frame, context: Record<string, unknown>): PathRefs {
  return { context, variable: (n) => frame.scope.get(n) };
}

/** History carries payloads as JSON text. */
export function toJson(v: unknown): string {
  return JSON.stringify(v === undefined ? null : v);
}
