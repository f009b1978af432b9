/**
 * Reads `serverless.yml` the way the local stack needs it: the same file that deploys, with the
 * Serverless variables the project uses resolved for a local stage and CloudFormation intrinsic
 * functions kept as plain objects (`{Ref}`, `{"Fn::GetAtt"}`, …) for the stack to resolve against
 * local resources. Nothing is redefined for local runs.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse, type Tags } from "yaml";

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const cfnTags: Tags = [
  "Ref",
  "GetAtt",
  "Sub",
  "Join",
  "If",
  "Equals",
  "Not",
  "Select",
  "Split",
  "ImportValue",
  "FindInMap",
  "GetAZs",
  "Base64",
].flatMap((name) => {
  const key = name === "Ref" ? "Ref" : `Fn::${name}`;
  return [
    {
      tag: `!${name}`,
      resolve: (value: unknown) => ({ [key]: name === "GetAtt" && typeof value === "string" ? value.split(".") : value }),
    },
    {
      tag: `!${name}`,
      collection: "seq" as const,
      resolve: (value: unknown) => ({ [key]: (value as { toJSON(): unknown }).toJSON() }),
    },
    {
      tag: `!${name}`,
      collection: "map" as const,
      resolve: (value: unknown) => ({ [key]: (value as { toJSON(): unknown }).toJSON() }),
    },
  ];
}) as Tags;

export interface ServerlessFunction {
  handler: string;
  timeout?: number;
  memorySize?: number;
  environment?: Record<string, unknown>;
  url?: unknown;
  events?: Record<string, unknown>[];
  description?: string;
}

export interface ServerlessStateMachine {
  name?: string;
  definition: Record<string, unknown>;
  events?: Record<string, unknown>[];
}

export interface ServerlessConfig {
  service: string;
  provider: {
    stage?: string;
    region?: string;
    environment?: Record<string, unknown>;
    timeout?: number;
    memorySize?: number;
    [k: string]: unknown;
  };
  functions: Record<string, ServerlessFunction>;
  stepFunctions?: { stateMachines: Record<string, ServerlessStateMachine> };
  resources?: { Resources?: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
  custom?: Record<string, unknown>;
  params?: Record<string, Record<string, unknown>>;
}

/** Loads and resolves serverless.yml for `stage` (default `local`). */
export function loadServerless(
  opts: { file?: string; stage?: string; region?: string; accountId?: string } = {},
): ServerlessConfig {
  const file = opts.file ?? path.join(PROJECT_ROOT, "serverless.yml");
  const raw = parse(readFileSync(file, "utf8"), { customTags: cfnTags }) as Record<string, unknown>;
  const stage = opts.stage ?? "local";
  const region = opts.region ?? "us-east-1";
  const ctx: Ctx = { raw, stage, region, accountId: opts.accountId ?? "123456789012", dir: path.dirname(file), depth: 0 };
  return resolveValue(raw, ctx) as unknown as ServerlessConfig;
}

interface Ctx {
  raw: Record<string, unknown>;
  stage: string;
  region: string;
  accountId: string;
  dir: string;
  depth: number;
}

const VAR = /\$\{((?:[^${}]|\$\{[^}]*\})+)\}/;

function resolveValue(v: unknown, ctx: Ctx): unknown {
  if (typeof v === "string") return resolveString(v, ctx);
  if (Array.isArray(v)) return v.map((x) => resolveValue(x, ctx));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = resolveValue(x, ctx);
    return out;
  }
  return v;
}

/**
 * Resolves `${…}` Serverless variables in a string. A string that is exactly one variable takes the
 * variable's value (which may be an object, as with `${file(…)}`); otherwise values are spliced in.
 * `${AWS::Region}`-style CloudFormation pseudo parameters and ASL-style `${Placeholder}`s that are
 * not Serverless variable sources are left untouched.
 */
function resolveString(s: string, ctx: Ctx): unknown {
  if (ctx.depth > 20) throw new Error(`serverless.yml: variable resolution too deep at ${s}`);
  const whole = /^\$\{((?:[^${}]|\$\{[^}]*\})+)\}$/.exec(s);
  if (whole) {
    const r = resolveVariable(whole[1]!, ctx);
    if (r !== UNRESOLVED) return r;
    return s;
  }
  let out = "";
  let rest = s;
  for (;;) {
    const m = VAR.exec(rest);
    if (!m) return out + rest;
    const r = resolveVariable(m[1]!, ctx);
    out += rest.slice(0, m.index) + (r === UNRESOLVED ? m[0] : String(r));
    rest = rest.slice(m.index + m[0].length);
  }
}

const UNRESOLVED = Symbol("unresolved");

function resolveVariable(expr: string, ctx: Ctx): unknown {
  // `a, b` → first that resolves (defaults).
  const parts = splitTopLevel(expr);
  if (parts.length > 1) {
    for (const p of parts) {
      const r = resolveVariable(p, ctx);
      if (r !== UNRESOLVED && r !== undefined && r !== null) return r;
    }
    return UNRESOLVED;
  }
  const e = expr.trim();
  const inner = { ...ctx, depth: ctx.depth + 1 };
  if (/^'.*'$/.test(e) || /^".*"$/.test(e)) return e.slice(1, -1);
  if (/^-?\d+(\.\d+)?$/.test(e)) return Number(e);
  if (e === "sls:stage") return ctx.stage;
  if (e === "aws:region") return ctx.region;
  if (e === "aws:accountId") return ctx.accountId;
  if (e.startsWith("opt:")) {
    const k = e.slice(4);
    return k === "stage" ? ctx.stage : k === "region" ? ctx.region : UNRESOLVED;
  }
  if (e.startsWith("self:")) {
    let v: unknown = ctx.raw;
    for (const seg of e.slice(5).split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[seg] : undefined;
    return v === undefined ? UNRESOLVED : resolveValue(v, inner);
  }
  if (e.startsWith("param:")) {
    const params = (ctx.raw.params ?? {}) as Record<string, Record<string, unknown>>;
    const k = e.slice(6);
    const v = params[ctx.stage]?.[k] ?? params.default?.[k];
    return v === undefined ? UNRESOLVED : resolveValue(v, inner);
  }
  if (e.startsWith("env:")) return process.env[e.slice(4)] ?? UNRESOLVED;
  const file = /^file\(([^)]+)\)(?::(.+))?$/.exec(e);
  if (file) {
    const p = path.resolve(ctx.dir, file[1]!.trim());
    let v: unknown;
    if (/\.(c?js)$/.test(p)) {
      const mod = createRequire(import.meta.url)(p);
      v = file[2] ? mod[file[2]] : mod;
      if (typeof v === "function") v = (v as (a: unknown) => unknown)({ options: { stage: ctx.stage, region: ctx.region } });
    } else {
      const text = readFileSync(p, "utf8");
      v = p.endsWith(".json") ? JSON.parse(text) : parse(text, { customTags: cfnTags });
      if (file[2]) for (const seg of file[2].split(".")) v = (v as Record<string, unknown>)?.[seg];
    }
    return resolveValue(v, inner);
  }
  return UNRESOLVED; // not a Serverless variable: a CloudFormation/ASL placeholder, kept as is
}

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  let quote: string | undefined;
  for (const ch of s) {
    if (quote) {
      cur += ch;
      if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === "'" || ch === '"') quote = ch;
    if (ch === "(" || ch === "{") depth++;
    if (ch === ")" || ch === "}") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter(Boolean);
}
