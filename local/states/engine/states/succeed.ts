/** Succeed: ends its graph successfully (InputPath/OutputPath or JSONata Output still apply). */
import type { StateImpl } from "../executor.ts";
import { applyInputPath, applyOutputPath } from "../io.ts";
import { evaluateRequired } from "../jsonata.ts";

export const succeedState: StateImpl = async (run) => {
  const { def, input } = run;
  if (run.ql === "JSONata") {
    const output = def.Output === undefined ? input : await evaluateRequired(def.Output, run.jsonata({}), "Output");
    return { output, next: undefined };
  }
  const refs = run.refs();
  return { output: applyOutputPath(applyInputPath(input, def.InputPath, refs), def.OutputPath, refs), next: undefined };
};
