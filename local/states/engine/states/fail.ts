/**
 * Fail: stops its graph with an error. `Error`/`Cause` are literals; `ErrorPath`/`CausePath` are
 * paths or intrinsic calls (JSONPath); in JSONata, `Error`/`Cause` may be expressions.
 */
import { RuntimeError, StatesError } from "../errors.ts";
import type { StateImpl } from "../executor.ts";
import { evaluateIntrinsic, isIntrinsic } from "../intrinsics.ts";
import { PathNotFound, queryPath } from "../jsonpath.ts";
import { evaluateTemplate } from "../jsonata.ts";

export const failState: StateImpl = async (run) => {
  const { def, input } = run;
  let error: unknown = def.Error;
  let cause: unknown = def.Cause;
  if (run.ql === "JSONata") {
    const env = run.jsonata({});
    error = await evaluateTemplate(def.Error, env);
    cause = await evaluateTemplate(def.Cause, env);
  } else {
    const refs = run.refs();
    const read = (p: string, field: string) => {
      if (isIntrinsic(p)) return evaluateIntrinsic(p, { data: input, refs, random: () => run.frame.rt.random() });
      try {
        return queryPath(p, input, refs);
      } catch (e) {
        if (e instanceof PathNotFound)
          throw new RuntimeError(`Invalid path '${p}' for field '${field}': No results for path: ${p}`);
        throw e;
      }
    };
    if (def.ErrorPath !== undefined) error = read(def.ErrorPath, "ErrorPath");
    if (def.CausePath !== undefined) cause = read(def.CausePath, "CausePath");
  }
  if ((error !== undefined && typeof error !== "string") || (cause !== undefined && typeof cause !== "string")) {
    throw new RuntimeError("The Error and Cause of a Fail state must be strings");
  }
  // An absent Error still fails the execution; Step Functions reports it with empty fields.
  return { output: input, fail: new StatesError((error as string | undefined) ?? "", (cause as string | undefined) ?? "") };
};
