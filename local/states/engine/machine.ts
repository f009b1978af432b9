/**
 * Runs a States graph from `StartAt` (or from a redrive checkpoint) to its end, one state at a
 * time. Never throws for state failures: it returns FAILED/ABORTED with the checkpoint of the
 * state that did not complete, which is where a redrive resumes.
 */
import { AbortedSignal, asStatesError } from "./errors.ts";
import { executeState, innerOf, type StateImpl } from "./executor.ts";
import type { Frame } from "./runtime.ts";
import { choiceState } from "./states/choice.ts";
import { failState } from "./states/fail.ts";
import { mapState } from "./states/map.ts";
import { parallelState } from "./states/parallel.ts";
import { passState } from "./states/pass.ts";
import { succeedState } from "./states/succeed.ts";
import { taskState } from "./states/task.ts";
import { waitState } from "./states/wait.ts";
import type { Checkpoint, RunResult, StatesGraph } from "./types.ts";

/** One implementation per state type. */
export const STATE_IMPLS: Record<string, StateImpl> = {
  Task: taskState,
  Pass: passState,
  Choice: choiceState,
  Wait: waitState,
  Succeed: succeedState,
  Fail: failState,
  Parallel: parallelState,
  Map: mapState,
};

export async function runGraph(graph: StatesGraph, input: unknown, frame: Frame, resume?: Checkpoint): Promise<RunResult> {
  let name = resume?.state ?? graph.StartAt;
  let stateInput = resume ? resume.input : input;
  let inner = resume?.inner;
  if (resume) frame.scope.restore(resume.vars);
  for (;;) {
    const def = graph.States[name];
    const checkpoint = (): Checkpoint => ({ state: name, input: stateInput, vars, inner: undefined });
    const vars = frame.scope.snapshot();
    if (!def) {
      return { status: "FAILED", error: "States.Runtime", cause: `State '${name}' does not exist`, checkpoint: checkpoint() };
    }
    try {
      const t = await executeState({ name, def, input: stateInput, frame, inner, impls: STATE_IMPLS, runGraph });
      inner = undefined;
      if (t.next === undefined) return { status: "SUCCEEDED", output: t.output };
      name = t.next;
      stateInput = t.output;
    } catch (e) {
      const cp = { ...checkpoint(), inner: innerOf(e) };
      if (e instanceof AbortedSignal) return { status: "ABORTED", reason: e.reason, checkpoint: cp };
      const err = asStatesError(e);
      return { status: "FAILED", error: err.error, cause: err.causeText, checkpoint: cp };
    }
  }
}
