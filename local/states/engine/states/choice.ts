/**
 * Choice: picks the first rule that matches (JSONPath comparison operators or a JSONata
 * `Condition`), else `Default`, else fails with States.NoChoiceMatched.
 */
import { NoChoiceMatchedError, QueryEvaluationError, RuntimeError } from "../errors.ts";
import type { StateImpl } from "../executor.ts";
import { applyInputPath, applyOutputPath } from "../io.ts";
import { type PathRefs, PathNotFound, queryPath, tryPath } from "../jsonpath.ts";
import { evaluateRequired, evaluateTemplate } from "../jsonata.ts";
import { assignJsonPath, assignJsonata } from "./common.ts";
import { parseTimestamp } from "./wait.ts";

// `any`: a Choice rule as written in the definition
type Rule = Record<string, any>;

const COMPARATORS = [
  "StringEquals",
  "StringLessThan",
  "StringGreaterThan",
  "StringLessThanEquals",
  "StringGreaterThanEquals",
  "StringMatches",
  "NumericEquals",
  "NumericLessThan",
  "NumericGreaterThan",
  "NumericLessThanEquals",
  "NumericGreaterThanEquals",
  "BooleanEquals",
  "TimestampEquals",
  "TimestampLessThan",
  "TimestampGreaterThan",
  "TimestampLessThanEquals",
  "TimestampGreaterThanEquals",
  "IsNull",
  "IsPresent",
  "IsNumeric",
  "IsString",
  "IsBoolean",
  "IsTimestamp",
] as const;

/** `*` matches any run of characters; `\*` and `\\` are literal (ASL StringMatches). */
export function stringMatches(value: string, pattern: string): boolean {
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\" && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i]!);
    } else if (c === "*") re += "[\\s\\S]*";
    else re += escapeRe(c);
  }
  return new RegExp(`${re}$`).test(value);
}
function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

function cmp<T>(a: T, b: T, op: string): boolean {
  if (op.endsWith("GreaterThanEquals")) return a >= b;
  if (op.endsWith("LessThanEquals")) return a <= b;
  if (op.endsWith("GreaterThan")) return a > b;
  if (op.endsWith("LessThan")) return a < b;
  return a === b;
}

/** Evaluates one JSONPath choice rule (recursively for And/Or/Not) against the state's input. */
export function evaluateRule(rule: Rule, data: unknown, refs: PathRefs): boolean {
  if (Array.isArray(rule.And)) return rule.And.every((r: Rule) => evaluateRule(r, data, refs));
  if (Array.isArray(rule.Or)) return rule.Or.some((r: Rule) => evaluateRule(r, data, refs));
  if (rule.Not) return !evaluateRule(rule.Not, data, refs);
  const variable: string = rule.Variable;
  const op = COMPARATORS.find((c) => rule[c] !== undefined || rule[`${c}Path`] !== undefined);
  if (!op) throw new RuntimeError(`Choice rule has no comparison operator: ${JSON.stringify(rule)}`);
  const got = tryPath(variable, data, refs);
  if (op === "IsPresent") return got.found === rule.IsPresent;
  if (!got.found) {
    throw new RuntimeError(`Invalid path '${variable}': The choice state's condition path references an invalid value.`);
  }
  const v = got.value;
  let expected: unknown = rule[op];
  if (expected === undefined) {
    const p: string = rule[`${op}Path`];
    try {
      expected = queryPath(p, data, refs);
    } catch (e) {
      if (e instanceof PathNotFound)
        throw new RuntimeError(`Invalid path '${p}': The choice state's condition path references an invalid value.`);
      throw e;
    }
  }
  switch (op) {
    case "IsNull":
      return (v === null) === expected;
    case "IsNumeric":
      return (typeof v === "number") === expected;
    case "IsString":
      return (typeof v === "string") === expected;
    case "IsBoolean":
      return (typeof v === "boolean") === expected;
    case "IsTimestamp":
      return (parseTimestamp(v) !== undefined) === expected;
    case "BooleanEquals":
      return typeof v === "boolean" && v === expected;
    case "StringMatches":
      return typeof v === "string" && typeof expected === "string" && stringMatches(v, expected);
  }
  if (op.startsWith("String")) return typeof v === "string" && typeof expected === "string" && cmp(v, expected, op);
  if (op.startsWith("Numeric")) return typeof v === "number" && typeof expected === "number" && cmp(v, expected, op);
  // Timestamps compare as instants, not strings.
  const a = parseTimestamp(v);
  const b = parseTimestamp(expected);
  return a !== undefined && b !== undefined && cmp(a, b, op);
}

export const choiceState: StateImpl = async (run) => {
  const { def, input, name } = run;
  const rules: Rule[] = def.Choices ?? [];
  if (run.ql === "JSONata") {
    const env = run.jsonata({});
    for (const rule of rules) {
      const ok = await evaluateTemplate(rule.Condition, env);
      if (typeof ok !== "boolean")
        throw new QueryEvaluationError(`The Condition of a Choice rule must evaluate to a boolean, got ${JSON.stringify(ok)}`);
      if (ok) {
        const output =
          rule.Output !== undefined
            ? await evaluateRequired(rule.Output, env, "Output")
            : def.Output !== undefined
              ? await evaluateRequired(def.Output, env, "Output")
              : input;
        return { output, next: rule.Next, assign: await assignJsonata(rule.Assign, env) };
      }
    }
    if (def.Default === undefined)
      throw new NoChoiceMatchedError(`No Choice Rules matched and no Default was specified in state '${name}'`);
    const output = def.Output !== undefined ? await evaluateRequired(def.Output, env, "Output") : input;
    return { output, next: def.Default, assign: await assignJsonata(def.Assign, env) };
  }
  const refs = run.refs();
  const effective = applyInputPath(input, def.InputPath, refs);
  for (const rule of rules) {
    if (evaluateRule(rule, effective, refs)) {
      return {
        output: applyOutputPath(effective, def.OutputPath, refs),
        next: rule.Next,
        assign: assignJsonPath(run, rule.Assign, effective),
      };
    }
  }
  if (def.Default === undefined)
    throw new NoChoiceMatchedError(`No Choice Rules matched and no Default was specified in state '${name}'`);
  return {
    output: applyOutputPath(effective, def.OutputPath, refs),
    next: def.Default,
    assign: assignJsonPath(run, def.Assign, effective),
  };
};
