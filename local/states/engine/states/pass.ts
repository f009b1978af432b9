/** Pass: passes its input to its output, optionally injecting `Result` or reshaping with `Parameters`/`Output`. */
import type { StateImpl } from "../executor.ts";
import { applyInputPath, applyOutputPath, applyPayloadTemplate, applyResultPath } from "../io.ts";
import { evaluateRequired } from "../jsonata.ts";
import { assignJsonPath, assignJsonata, nextOf } from "./common.ts";

export const passState: StateImpl = async (run) => {
  const { def, input } = run;
  if (run.ql === "JSONata") {
    const env = run.jsonata({});
    const output = def.Output === undefined ? input : await evaluateRequired(def.Output, env, "Output");
    return { output, next: nextOf(def), assign: await assignJsonata(def.Assign, env) };
  }
  const refs = run.refs();
  const effective = applyInputPath(input, def.InputPath, refs);
  let result: unknown = effective;
  if (def.Parameters !== undefined)
    result = applyPayloadTemplate(def.Parameters, effective, { refs, random: () => run.frame.rt.random() });
  if (def.Result !== undefined) result = def.Result;
  const assign = assignJsonPath(run, def.Assign, result);
  const output = applyOutputPath(applyResultPath(input, result, def.ResultPath), def.OutputPath, refs);
  return { output, next: nextOf(def), assign };
};
