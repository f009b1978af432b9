/** Helpers every state type shares: transitions and variable assignment in both query languages. */
import { QueryEvaluationError } from "../errors.ts";
import type { StateRun } from "../executor.ts";
import { applyPayloadTemplate } from "../io.ts";
import { type JsonataEnv, evaluateTemplate } from "../jsonata.ts";
import type { StateDefinition } from "../types.ts";

/** `Next`, or undefined when the state has `End: true`. */
export function nextOf(def: StateDefinition): string | undefined {
  return def.End ? undefined : def.Next;
}

/**
 * `Assign` of a JSONPath state: a payload template whose `$` is the given data (the state's result
 * for Task/Map/Parallel/Pass, the input for Wait and Choice). All values are computed before any is
 * assigned, so they see the variables as they were when the state was entered.
 */
export function assignJsonPath(run: StateRun, assign: unknown, data: unknown): Record<string, unknown> | undefined {
  if (assign === undefined) return undefined;
  return applyPayloadTemplate(assign, data, { refs: run.refs(), random: () => run.frame.rt.random() }) as Record<string, unknown>;
}

/** `Assign` of a JSONata state, evaluated with `$states.input` (and `$states.result` when there is one). */
export async function assignJsonata(assign: unknown, env: JsonataEnv): Promise<Record<string, unknown> | undefined> {
  if (assign === undefined) return undefined;
  const v = await evaluateTemplate(assign, env, "Assign");
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new QueryEvaluationError("The field 'Assign' must evaluate to a JSON object");
  return v as Record<string, unknown>;
}
