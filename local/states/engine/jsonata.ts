/**
 * JSONata in Step Functions: a string field whose whole value is `{% expr %}` is an expression;
 * `$states` holds `input`, `context`, and (where the spec allows) `result` and `errorOutput`;
 * workflow variables are bound by name. Step Functions adds `$partition`, `$range`, `$hash`,
 * `$random`, `$uuid` and `$parse`, and `$now()`/`$millis()` read the execution's clock.
 * Every failure is `States.QueryEvaluationError`.
 */
import { createHash } from "node:crypto";
import jsonata from "jsonata";
import { QueryEvaluationError } from "./errors.ts";
import { seededUuid } from "./intrinsics.ts";

export interface JsonataEnv {
  states: { input: unknown; context: unknown; result?: unknown; errorOutput?: unknown };
  variables: Record<string, unknown>;
  now: () => number;
  random: () => number;
}

const EXPR = /^\{%([\s\S]*)%\}$/;
const cache = new Map<string, jsonata.Expression>();

/** True for a string that is entirely a `{% … %}` expression. */
export function isJsonataExpression(v: unknown): v is string {
  return typeof v === "string" && EXPR.test(v.trim());
}

function compile(src: string): jsonata.Expression {
  let e = cache.get(src);
  if (!e) {
    try {
      e = jsonata(src);
    } catch (err) {
      throw new QueryEvaluationError(`Unable to parse JSONata expression '${src}': ${(err as Error).message}`);
    }
    cache.set(src, e);
  }
  return e;
}

/** Evaluates one `{% … %}` string. `undefined` results are reported by the caller (they mean "nothing"). */
export async function evaluateExpression(text: string, env: JsonataEnv): Promise<unknown> {
  const m = EXPR.exec(text.trim());
  const src = (m ? m[1]! : text).trim();
  const expr = compile(src);
  const bindings: Record<string, unknown> = {
    ...env.variables,
    states: env.states,
    now: () => new Date(env.now()).toISOString(),
    millis: () => env.now(),
    partition: (arr: unknown, size: number) => {
      if (!Array.isArray(arr) || !(size > 0)) throw new Error("$partition expects an array and a positive size");
      const out: unknown[][] = [];
      for (let i = 0; i < arr.length; i += size) out.push(arr.slice(i, i + size));
      return out;
    },
    range: (start: number, end: number, step: number) => {
      if (!step) throw new Error("$range step must not be 0");
      const out: number[] = [];
      for (let v = start; step > 0 ? v <= end : v >= end; v += step) out.push(v);
      return out;
    },
    hash: (value: unknown, algorithm: string) => {
      const algos: Record<string, string> = {
        MD5: "md5",
        "SHA-1": "sha1",
        "SHA-256": "sha256",
        "SHA-384": "sha384",
        "SHA-512": "sha512",
      };
      const a = algos[algorithm];
      if (!a) throw new Error(`$hash algorithm must be one of ${Object.keys(algos).join(", ")}`);
      return createHash(a)
        .update(typeof value === "string" ? value : JSON.stringify(value))
        .digest("hex");
    },
    random: () => env.random(),
    uuid: () => seededUuid(env.random),
    parse: (s: string) => JSON.parse(s),
  };
  try {
    const out = await expr.evaluate(undefined, bindings);
    return toJson(out);
  } catch (err) {
    const e = err as { message?: string; code?: string; position?: number };
    throw new QueryEvaluationError(
      `An error occurred while evaluating the JSONata expression '${src}': ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ""}`,
    );
  }
}

/** JSONata results carry sequence flags and may hold functions; keep plain JSON only. */
function toJson(v: unknown): unknown {
  if (v === undefined) return undefined;
  if (typeof v === "function") return undefined;
  if (Array.isArray(v)) return v.map(toJson).filter((x) => x !== undefined);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const j = toJson(x);
      if (j !== undefined) out[k] = j;
    }
    return out;
  }
  return v;
}

/** The expression text of a `{% … %}` string, as AWS quotes it in error messages. */
function exprText(tpl: string): string {
  const m = EXPR.exec(tpl.trim());
  return (m ? m[1]! : tpl).trim();
}

/**
 * Evaluates a JSONata template (Arguments, Output, Assign values, Items…): every `{% %}` string is
 * replaced by its value, recursively through objects and arrays; other values are literals.
 * With a `field` (Output, Arguments, Assign, …), an expression anywhere inside that yields nothing
 * fails with States.QueryEvaluationError naming the field path (`Output/result`), as on AWS;
 * without one, a top-level "nothing" is returned as undefined.
 */
export async function evaluateTemplate(tpl: unknown, env: JsonataEnv, field?: string): Promise<unknown> {
  if (isJsonataExpression(tpl)) {
    const v = await evaluateExpression(tpl, env);
    // AWS fails a nested "nothing" too (`Output/result`); kiln's own state machines still rely on
    // nested fields being omitted, so only a top-level "nothing" fails here (docs: known differences).
    if (v === undefined && field !== undefined && !field.includes("/") && field !== "Assign") {
      throw new QueryEvaluationError(
        `The JSONata expression '${exprText(tpl)}' specified for the field '${field}' returned nothing (undefined).`,
      );
    }
    return v;
  }
  if (Array.isArray(tpl)) {
    const out: unknown[] = [];
    for (const [i, x] of tpl.entries()) {
      const v = await evaluateTemplate(x, env, field === undefined ? undefined : `${field}/${i}`);
      if (v !== undefined) out.push(v);
    }
    return out;
  }
  if (tpl && typeof tpl === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(tpl)) {
      const v = await evaluateTemplate(x, env, field === undefined ? undefined : `${field}/${k}`);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  return tpl;
}

/** Like evaluateTemplate, but nothing inside may be "nothing" (Output, Arguments, Items…). */
export async function evaluateRequired(tpl: unknown, env: JsonataEnv, field: string): Promise<unknown> {
  return evaluateTemplate(tpl, env, field);
}
