/**
 * Input and output processing of JSONPath states, as pure functions in the order the spec applies
 * them: InputPath → Parameters (payload template) → [task] → ResultSelector → ResultPath → OutputPath.
 * JSONata states replace all of these with `Arguments` and `Output` (see jsonata.ts).
 */
import { ParameterPathFailureError, ResultPathMatchFailureError, RuntimeError, StatesError } from "./errors.ts";
import { evaluateIntrinsic, isIntrinsic } from "./intrinsics.ts";
import { type PathRefs, PathNotFound, queryPath, setAtPath } from "./jsonpath.ts";

export interface PathEnv {
  refs: PathRefs;
  random: () => number;
}

/** AWS quotes payloads in messages as compact JSON. */
function show(v: unknown): string {
  return JSON.stringify(v) ?? "null";
}

/** `InputPath`: absent → the whole input; null → `{}`; otherwise the selected value (States.Runtime if nothing). */
export function applyInputPath(input: unknown, inputPath: string | null | undefined, refs: PathRefs): unknown {
  if (inputPath === undefined) return input;
  if (inputPath === null) return {};
  try {
    return queryPath(inputPath, input, refs);
  } catch (e) {
    if (e instanceof PathNotFound) throw new RuntimeError(`Invalid path '${inputPath}' : No results for path: ${inputPath}`);
    throw e;
  }
}

/**
 * A payload template (`Parameters`, `ResultSelector`, `ItemSelector`, JSONPath `Assign`): fields
 * whose name ends in `.$` take the value of a path (`$…`, `$$…`, `$var…`) or an intrinsic call,
 * evaluated against `data`; the `.$` suffix is dropped. Other fields are copied as they are.
 */
export function applyPayloadTemplate(template: unknown, data: unknown, env: PathEnv): unknown {
  if (Array.isArray(template)) return template.map((t) => applyPayloadTemplate(t, data, env));
  if (template === null || typeof template !== "object") return template;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(template as Record<string, unknown>)) {
    if (key.endsWith(".$") && typeof value === "string") {
      out[key.slice(0, -2)] = resolveDynamic(key, value, data, env);
    } else {
      out[key] = applyPayloadTemplate(value, data, env);
    }
  }
  return out;
}

function resolveDynamic(key: string, value: string, data: unknown, env: PathEnv): unknown {
  if (isIntrinsic(value)) return evaluateIntrinsic(value, { data, refs: env.refs, random: env.random });
  try {
    return queryPath(value, data, env.refs);
  } catch (e) {
    if (e instanceof PathNotFound) {
      throw new ParameterPathFailureError(
        `The JSONPath '${value}' specified for the field '${key}' could not be found in the input '${show(data)}'`,
      );
    }
    if (e instanceof StatesError) throw e;
    throw new ParameterPathFailureError(
      `The JSONPath '${value}' specified for the field '${key}' is invalid: ${(e as Error).message}`,
    );
  }
}

/** `ResultSelector`: a payload template evaluated against the raw result. */
export function applyResultSelector(result: unknown, selector: unknown, env: PathEnv): unknown {
  if (selector === undefined) return result;
  return applyPayloadTemplate(selector, result, env);
}

/**
 * `ResultPath`: absent or `$` → the result replaces the input; null → the input passes through
 * unchanged; a reference path → the result is written there inside a copy of the input.
 */
export function applyResultPath(input: unknown, result: unknown, resultPath: string | null | undefined): unknown {
  if (resultPath === undefined || resultPath === "$") return result;
  if (resultPath === null) return input;
  const r = setAtPath(input, resultPath, result);
  if (!r.ok) throw new ResultPathMatchFailureError(`Unable to apply ResultPath "${resultPath}" to input "${show(input)}"`);
  return r.value;
}

/** `OutputPath`: absent → everything; null → `{}`; otherwise the selected value (States.Runtime if nothing). */
export function applyOutputPath(output: unknown, outputPath: string | null | undefined, refs: PathRefs): unknown {
  if (outputPath === undefined) return output;
  if (outputPath === null) return {};
  try {
    return queryPath(outputPath, output, refs);
  } catch (e) {
    if (e instanceof PathNotFound) throw new RuntimeError(`Invalid path '${outputPath}' : No results for path: ${outputPath}`);
    throw e;
  }
}
