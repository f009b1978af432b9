/**
 * Parallel: runs every branch on the same input, each in its own variable scope; the result is the
 * array of branch outputs. The first failing branch stops the others and fails the state with that
 * branch's error. On redrive, only branches that failed or were stopped run again.
 */
import { AbortedSignal, StatesError } from "../errors.ts";
import type { StateImpl } from "../executor.ts";
import { applyInputPath, applyOutputPath, applyPayloadTemplate, applyResultPath, applyResultSelector } from "../io.ts";
import { evaluateRequired } from "../jsonata.ts";
import { Cancel, type Frame, Scope } from "../runtime.ts";
import type { BranchProgress, RunResult, StatesGraph } from "../types.ts";
import { assignJsonPath, assignJsonata, nextOf } from "./common.ts";

export const parallelState: StateImpl = async (run) => {
  const { def, input, frame } = run;
  const rt = frame.rt;
  const branches: StatesGraph[] = def.Branches ?? [];
  let branchInput: unknown;
  if (run.ql === "JSONata") {
    branchInput = def.Arguments !== undefined ? await evaluateRequired(def.Arguments, run.jsonata({}), "Arguments") : input;
  } else {
    const refs = run.refs();
    const effective = applyInputPath(input, def.InputPath, refs);
    branchInput =
      def.Parameters !== undefined
        ? applyPayloadTemplate(def.Parameters, effective, { refs, random: () => rt.random() })
        : effective;
  }

  const startedId = run.emit("ParallelStateStarted");
  const previous = run.inner?.kind === "parallel" ? run.inner.branches : undefined;
  const progress: BranchProgress[] = branches.map((_, i) => {
    const p = previous?.[i];
    return p?.done ? p : { done: false, checkpoint: p && !p.done ? p.checkpoint : undefined };
  });
  const group = new Cancel(frame.cancel);
  let failure: Extract<RunResult, { status: "FAILED" }> | undefined;
  await Promise.all(
    branches.map(async (branch, i) => {
      const p = progress[i]!;
      if (p.done) return;
      const f: Frame = {
        rt,
        scope: new Scope(frame.scope),
        cancel: new Cancel(group),
        cursor: { last: startedId },
        queryLanguage: frame.queryLanguage,
      };
      const r = await run.runGraph({ QueryLanguage: frame.queryLanguage, ...branch }, branchInput, f, p.checkpoint);
      f.cancel.dispose();
      if (r.status === "SUCCEEDED") progress[i] = { done: true, output: r.output };
      else {
        progress[i] = { done: false, checkpoint: r.checkpoint };
        if (r.status === "FAILED" && !failure) {
          failure = r;
          group.abort("sibling");
        }
      }
    }),
  );
  group.dispose();
  run.setInner({ kind: "parallel", branches: progress });
  if (frame.cancel.reason) throw new AbortedSignal(frame.cancel.reason);
  if (failure) {
    run.emit("ParallelStateFailed");
    throw new StatesError(failure.error, failure.cause);
  }
  run.emit("ParallelStateSucceeded");
  const results = progress.map((p) => (p.done ? p.output : null));

  if (run.ql === "JSONata") {
    const env = run.jsonata({ result: results });
    const output = def.Output === undefined ? results : await evaluateRequired(def.Output, env, "Output");
    return { output, next: nextOf(def), assign: await assignJsonata(def.Assign, env) };
  }
  const refs = run.refs();
  const result = applyResultSelector(results, def.ResultSelector, { refs, random: () => rt.random() });
  const assign = assignJsonPath(run, def.Assign, result);
  return {
    output: applyOutputPath(applyResultPath(input, result, def.ResultPath), def.OutputPath, refs),
    next: nextOf(def),
    assign,
  };
};
