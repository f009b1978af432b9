/**
 * Map (inline): runs the ItemProcessor once per item of `ItemsPath`/`Items`, at most
 * MaxConcurrency at a time (0 = no limit), each iteration in its own variable scope, and returns
 * the outputs in item order. ItemSelector (or the legacy Parameters) shapes each iteration's input
 * with `$$.Map.Item.{Index,Value}`. ToleratedFailureCount/Percentage let some iterations fail.
 * On redrive, only iterations that failed, were stopped, or never started run again.
 */
import {
  AbortedSignal,
  ExceedToleratedFailureThresholdError,
  QueryEvaluationError,
  RuntimeError,
  StatesError,
} from "../errors.ts";
import type { StateImpl } from "../executor.ts";
import { applyInputPath, applyOutputPath, applyPayloadTemplate, applyResultPath, applyResultSelector } from "../io.ts";
import { PathNotFound, queryPath } from "../jsonpath.ts";
import { evaluateRequired, evaluateTemplate } from "../jsonata.ts";
import { Cancel, type Frame, Scope } from "../runtime.ts";
import type { BranchProgress, RunResult, StatesGraph } from "../types.ts";
import { assignJsonPath, assignJsonata, nextOf } from "./common.ts";

export const mapState: StateImpl = async (run) => {
  const { def, input, frame, name } = run;
  const rt = frame.rt;
  const processor: StatesGraph = def.ItemProcessor ?? def.Iterator;
  const jsonata = run.ql === "JSONata";
  const refs = run.refs();
  const effective = jsonata ? input : applyInputPath(input, def.InputPath, refs);

  const num = async (literal: unknown, path: string | undefined, field: string): Promise<number | undefined> => {
    let v = literal;
    if (jsonata) v = await evaluateTemplate(literal, run.jsonata({}));
    else if (path !== undefined) {
      try {
        v = queryPath(path, effective, refs);
      } catch (e) {
        if (e instanceof PathNotFound) throw new RuntimeError(`Invalid path '${path}' : No results for path: ${path}`);
        throw e;
      }
    }
    if (v === undefined) return undefined;
    if (typeof v !== "number" || v < 0)
      throw new RuntimeError(`The ${field} of a Map state must be a non-negative number, got ${JSON.stringify(v)}`);
    return v;
  };

  let items: unknown;
  if (run.inner?.kind === "map") items = run.inner.items;
  else if (jsonata) items = def.Items !== undefined ? await evaluateRequired(def.Items, run.jsonata({}), "Items") : input;
  else if (def.ItemsPath !== undefined) {
    try {
      items = queryPath(def.ItemsPath, effective, refs);
    } catch (e) {
      if (e instanceof PathNotFound)
        throw new RuntimeError(`Invalid path '${def.ItemsPath}' : No results for path: ${def.ItemsPath}`);
      throw e;
    }
  } else items = effective;
  if (!Array.isArray(items)) {
    const why = `Map state input must be an array but was: ${JSON.stringify(items)}`;
    throw jsonata ? new QueryEvaluationError(why) : new RuntimeError(why);
  }
  const list = items as unknown[];

  const maxConcurrency = (await num(def.MaxConcurrency, def.MaxConcurrencyPath, "MaxConcurrency")) ?? 0;
  const tolCount = await num(def.ToleratedFailureCount, def.ToleratedFailureCountPath, "ToleratedFailureCount");
  const tolPct = await num(def.ToleratedFailurePercentage, def.ToleratedFailurePercentagePath, "ToleratedFailurePercentage");
  const tolerant = tolCount !== undefined || tolPct !== undefined;
  const selector = def.ItemSelector ?? def.Parameters;

  const itemInput = async (index: number): Promise<unknown> => {
    const mapCtx = { Map: { Item: { Index: index, Value: list[index] } } };
    if (jsonata) {
      return def.ItemSelector !== undefined
        ? evaluateRequired(def.ItemSelector, run.jsonata({}, mapCtx), "ItemSelector")
        : list[index];
    }
    return selector !== undefined
      ? applyPayloadTemplate(selector, effective, { refs: run.refs(mapCtx), random: () => rt.random() })
      : list[index];
  };

  run.emit("MapStateStarted", { length: list.length });
  const previous = run.inner?.kind === "map" ? run.inner.iterations : undefined;
  const progress: BranchProgress[] = list.map((_, i) => {
    const p = previous?.[i];
    return p?.done ? p : { done: false, checkpoint: p && !p.done ? p.checkpoint : undefined };
  });
  const pending = progress.flatMap((p, i) => (p.done ? [] : [i]));
  const group = new Cancel(frame.cancel);
  let failures = 0;
  let failure: { error: string; cause: string } | undefined;
  const exceeded = () => {
    if (!tolerant) return failures > 0;
    if (tolCount !== undefined && failures > tolCount) return true;
    return tolPct !== undefined && list.length > 0 && (failures / list.length) * 100 > tolPct;
  };

  const runOne = async (index: number): Promise<void> => {
    const p = progress[index]!;
    const iterStarted = run.emit("MapIterationStarted", { name, index });
    const f: Frame = {
      rt,
      scope: new Scope(frame.scope),
      cancel: new Cancel(group),
      cursor: { last: iterStarted },
      queryLanguage: frame.queryLanguage,
    };
    let r: RunResult;
    try {
      const resume = p.done ? undefined : p.checkpoint;
      r = await run.runGraph(
        { QueryLanguage: frame.queryLanguage, ...processor },
        resume ? undefined : await itemInput(index),
        f,
        resume,
      );
    } catch (e) {
      // ItemSelector failures fail the iteration like any state failure.
      if (e instanceof AbortedSignal) r = { status: "ABORTED", reason: e.reason, checkpoint: undefined as never };
      else {
        const se = e instanceof StatesError ? e : new RuntimeError(String(e));
        r = { status: "FAILED", error: se.error, cause: se.causeText, checkpoint: undefined as never };
      }
    } finally {
      f.cancel.dispose();
    }
    if (r.status === "SUCCEEDED") {
      progress[index] = { done: true, output: r.output };
      run.emit("MapIterationSucceeded", { name, index });
      return;
    }
    progress[index] = { done: false, checkpoint: r.checkpoint };
    if (r.status === "ABORTED") {
      run.emit("MapIterationAborted", { name, index });
      return;
    }
    run.emit("MapIterationFailed", { name, index });
    failures++;
    if (tolerant && !exceeded()) {
      progress[index] = { done: true, output: { Error: r.error, Cause: r.cause } };
      return;
    }
    if (!failure) {
      const e = tolerant
        ? new ExceedToleratedFailureThresholdError("The specified tolerated failure threshold was exceeded")
        : new StatesError(r.error, r.cause);
      failure = { error: e.error, cause: e.causeText };
      group.abort("sibling");
    }
  };

  // A simple pool: `limit` workers take the next pending index until none is left or the map fails.
  const limit = maxConcurrency > 0 ? Math.min(maxConcurrency, pending.length) : pending.length;
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < pending.length && !group.aborted) await runOne(pending[next++]!);
    }),
  );
  group.dispose();
  run.setInner({ kind: "map", items: list, iterations: progress });
  if (frame.cancel.reason) throw new AbortedSignal(frame.cancel.reason);
  if (failure) {
    run.emit("MapStateFailed");
    throw new StatesError(failure.error, failure.cause);
  }
  run.emit("MapStateSucceeded");
  const results = progress.map((p) => (p.done ? p.output : null));

  if (jsonata) {
    const env = run.jsonata({ result: results });
    const output = def.Output === undefined ? results : await evaluateRequired(def.Output, env, "Output");
    return { output, next: nextOf(def), assign: await assignJsonata(def.Assign, env) };
  }
  const result = applyResultSelector(results, def.ResultSelector, { refs, random: () => rt.random() });
  const assign = assignJsonPath(run, def.Assign, result);
  return {
    output: applyOutputPath(applyResultPath(input, result, def.ResultPath), def.OutputPath, refs),
    next: nextOf(def),
    assign,
  };
};
