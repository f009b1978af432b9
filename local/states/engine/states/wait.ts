/**
 * Wait: pauses for `Seconds` or until `Timestamp` (or their `…Path` forms; JSONata expressions in
 * JSONata states) on the execution's clock.
 */
import { QueryEvaluationError, RuntimeError } from "../errors.ts";
import type { StateImpl } from "../executor.ts";
import { applyInputPath, applyOutputPath } from "../io.ts";
import { PathNotFound, queryPath } from "../jsonpath.ts";
import { evaluateRequired, evaluateTemplate } from "../jsonata.ts";
import { assignJsonPath, assignJsonata, nextOf } from "./common.ts";

/** RFC 3339 timestamps as Step Functions accepts them (an uppercase T and a zone are required). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export function parseTimestamp(v: unknown): number | undefined {
  if (typeof v !== "string" || !RFC3339.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

export const waitState: StateImpl = async (run) => {
  const { def, input, frame } = run;
  const clock = frame.rt.clock;
  let seconds: unknown;
  let timestamp: unknown;
  let output: unknown;
  let assign: Record<string, unknown> | undefined;
  if (run.ql === "JSONata") {
    const env = run.jsonata({});
    if (def.Seconds !== undefined) seconds = await evaluateTemplate(def.Seconds, env);
    if (def.Timestamp !== undefined) timestamp = await evaluateTemplate(def.Timestamp, env);
    output = def.Output === undefined ? input : await evaluateRequired(def.Output, env, "Output");
    assign = await assignJsonata(def.Assign, env);
  } else {
    const refs = run.refs();
    const effective = applyInputPath(input, def.InputPath, refs);
    const read = (p: string) => {
      try {
        return queryPath(p, effective, refs);
      } catch (e) {
        if (e instanceof PathNotFound) throw new RuntimeError(`Invalid path '${p}' : No results for path: ${p}`);
        throw e;
      }
    };
    seconds = def.SecondsPath !== undefined ? read(def.SecondsPath) : def.Seconds;
    timestamp = def.TimestampPath !== undefined ? read(def.TimestampPath) : def.Timestamp;
    assign = assignJsonPath(run, def.Assign, effective);
    output = applyOutputPath(effective, def.OutputPath, refs);
  }
  let ms = 0;
  if (seconds !== undefined) {
    if (typeof seconds !== "number" || !Number.isInteger(seconds) || seconds < 0) {
      throw new RuntimeError(`The Seconds of a Wait state must be a non-negative integer, got ${JSON.stringify(seconds)}`);
    }
    ms = seconds * 1000;
  } else if (timestamp !== undefined) {
    const at = parseTimestamp(timestamp);
    if (at === undefined) {
      if (run.ql === "JSONata") {
        throw new QueryEvaluationError(
          `The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: ${typeof timestamp === "string" ? timestamp : JSON.stringify(timestamp)}`,
        );
      }
      throw new RuntimeError(`The Timestamp of a Wait state must be an RFC 3339 timestamp, got ${JSON.stringify(timestamp)}`);
    }
    ms = Math.max(0, at - clock.now());
  }
  if (ms > 0) await frame.cancel.sleep(clock, ms);
  return { output, next: nextOf(def), assign };
};
