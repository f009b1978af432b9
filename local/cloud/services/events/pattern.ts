/**
 * EventBridge event patterns: validation and matching, following the "Content filtering in Amazon
 * EventBridge event patterns" rules.
 *
 * A pattern mirrors the event's structure. A key holding an object descends into the event; a key
 * holding an array lists the values the event's field may take (any of them matches). When the
 * event's field is itself an array, the pattern matches if any element does. Supported matchers:
 * exact values (string, number, boolean, null), `prefix`, `suffix` (both also with
 * `equals-ignore-case`), `anything-but` (value, list, `prefix`, `suffix`, `equals-ignore-case`,
 * `wildcard`), `numeric` (one or two comparisons), `exists`, `equals-ignore-case`, `wildcard`,
 * `cidr` (IPv4), and `$or` at any level.
 */

/** Thrown for a pattern EventBridge would refuse (`InvalidEventPatternException`). */
export class InvalidPatternError extends Error {
  override readonly name = "InvalidPatternError";
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type EventPattern = { [k: string]: Json };

const NUMERIC_OPS = new Set(["=", "<", "<=", ">", ">="]);

/** Parses and validates a pattern (as PutRule / TestEventPattern receive it). */
export function parsePattern(text: string): EventPattern {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidPatternError(`Event pattern is not valid. Reason: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new InvalidPatternError("Event pattern is not valid. Reason: Filter is not an object");
  validateObject(parsed as EventPattern, "");
  return parsed as EventPattern;
}

function fail(path: string, why: string): never {
  throw new InvalidPatternError(`Event pattern is not valid. Reason: ${why}${path ? ` at ${path}` : ""}`);
}

function validateObject(p: { [k: string]: Json }, path: string): void {
  const keys = Object.keys(p);
  if (keys.length === 0) fail(path, "Empty objects are not allowed");
  for (const key of keys) {
    const v = p[key]!;
    const at = path ? `${path}.${key}` : key;
    if (key === "$or") {
      if (!Array.isArray(v) || v.length < 2) fail(at, "$or must be an array of at least 2 patterns");
      for (const alt of v) {
        if (!isObject(alt)) fail(at, "each $or alternative must be an object");
        validateObject(alt as { [k: string]: Json }, at);
      }
      continue;
    }
    if (isObject(v)) validateObject(v as { [k: string]: Json }, at);
    else if (Array.isArray(v)) {
      if (v.length === 0) fail(at, "Empty arrays are not allowed");
      for (const m of v) validateMatcher(m, at);
    } else fail(at, `"${key}" must be an object or an array`);
  }
}

function validateMatcher(m: Json, at: string): void {
  if (m === null || typeof m === "string" || typeof m === "number" || typeof m === "boolean") return;
  if (Array.isArray(m)) fail(at, "Match value must be String, number, true, false, or null");
  const keys = Object.keys(m);
  if (keys.length !== 1) fail(at, "Only one key allowed in match expression");
  const op = keys[0]!;
  const arg = (m as Record<string, Json>)[op]!;
  switch (op) {
    case "prefix":
    case "suffix":
      if (typeof arg === "string") return;
      if (
        isObject(arg) &&
        Object.keys(arg).length === 1 &&
        typeof (arg as Record<string, Json>)["equals-ignore-case"] === "string"
      )
        return;
      return fail(at, `${op} match pattern must be a string`);
    case "equals-ignore-case":
      if (typeof arg !== "string") fail(at, "equals-ignore-case match pattern must be a string");
      return;
    case "wildcard":
      if (typeof arg !== "string") fail(at, "wildcard match pattern must be a string");
      if (arg.includes("**")) fail(at, "Consecutive wildcard characters are not allowed");
      return;
    case "exists":
      if (typeof arg !== "boolean") fail(at, "exists match pattern must be either true or false.");
      return;
    case "cidr":
      if (typeof arg !== "string" || !parseCidr(arg)) fail(at, "Malformed CIDR, one '/' required");
      return;
    case "numeric":
      return validateNumeric(arg, at);
    case "anything-but":
      return validateAnythingBut(arg, at);
    default:
      return fail(at, `Unrecognized match type ${op}`);
  }
}

function validateNumeric(arg: Json, at: string): void {
  if (!Array.isArray(arg) || (arg.length !== 2 && arg.length !== 4))
    fail(at, "Value of numeric must be an array of one or two comparisons");
  for (let i = 0; i < arg.length; i += 2) {
    const op = arg[i];
    const n = arg[i + 1];
    if (typeof op !== "string" || !NUMERIC_OPS.has(op)) fail(at, `Unrecognized numeric range operator: ${JSON.stringify(op)}`);
    if (typeof n !== "number") fail(at, "Value of numeric comparison must be a number");
  }
  if (arg.length === 4) {
    const [op1, , op2] = arg as [string, number, string, number];
    const lower = (o: string) => o === ">" || o === ">=";
    const upper = (o: string) => o === "<" || o === "<=";
    if (!(lower(op1) && upper(op2))) fail(at, "Bad numeric range: a lower bound must be followed by an upper bound");
    if ((arg[1] as number) >= (arg[3] as number)) fail(at, "Bad numeric range, start must be less than end");
  }
}

function validateAnythingBut(arg: Json, at: string): void {
  if (typeof arg === "string" || typeof arg === "number") return;
  if (Array.isArray(arg)) {
    if (arg.length === 0) fail(at, "Empty arrays are not allowed");
    const kinds = new Set(arg.map((x) => typeof x));
    if (kinds.size !== 1 || !(kinds.has("string") || kinds.has("number")))
      fail(at, "Inside anything but list, mixed types are not allowed; only strings or only numbers");
    return;
  }
  if (isObject(arg)) {
    const keys = Object.keys(arg);
    const op = keys[0];
    const v = (arg as Record<string, Json>)[op ?? ""];
    if (keys.length !== 1) fail(at, "Only one key allowed in anything-but expression");
    if ((op === "prefix" || op === "suffix") && typeof v === "string") return;
    if (
      (op === "equals-ignore-case" || op === "wildcard") &&
      (typeof v === "string" || (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string")))
    )
      return;
    fail(at, `Unsupported anything-but pattern: ${op}`);
  }
  fail(at, "Value of anything-but must be an array or single string/number value.");
}

/** True when `event` matches `pattern`. */
export function matchesPattern(pattern: EventPattern, event: unknown): boolean {
  return matchObject(pattern, event);
}

function matchObject(pattern: { [k: string]: Json }, node: unknown): boolean {
  for (const [key, sub] of Object.entries(pattern)) {
    if (key === "$or") {
      if (!(sub as Json[]).some((alt) => matchObject(alt as { [k: string]: Json }, node))) return false;
      continue;
    }
    const value = isObject(node) ? (node as Record<string, unknown>)[key] : undefined;
    if (isObject(sub)) {
      // Arrays of objects in the event are matched element by element.
      const ok = Array.isArray(value)
        ? value.some((el) => matchObject(sub as { [k: string]: Json }, el))
        : matchObject(sub as { [k: string]: Json }, value);
      if (!ok) return false;
    } else if (!matchLeaf(sub as Json[], value)) return false;
  }
  return true;
}

function matchLeaf(matchers: Json[], value: unknown): boolean {
  if (value === undefined) return matchers.some((m) => isObject(m) && (m as Record<string, Json>).exists === false);
  // `exists` applies to leaves only: an object in the event does not "exist" for a leaf matcher.
  if (isObject(value)) return matchers.some((m) => isObject(m) && (m as Record<string, Json>).exists === false);
  if (Array.isArray(value)) {
    if (value.length === 0) return matchers.some((m) => isObject(m) && (m as Record<string, Json>).exists === false);
    return value.some((v) => matchers.some((m) => matchOne(m, v)));
  }
  return matchers.some((m) => matchOne(m, value));
}

function matchOne(m: Json, v: unknown): boolean {
  if (m === null) return v === null;
  if (typeof m === "string") return v === m;
  if (typeof m === "number") return typeof v === "number" && v === m;
  if (typeof m === "boolean") return v === m;
  const [op, arg] = Object.entries(m as Record<string, Json>)[0]!;
  switch (op) {
    case "exists":
      return arg === true;
    case "prefix":
      return typeof v === "string" && affix(arg, v, (s, a) => s.startsWith(a));
    case "suffix":
      return typeof v === "string" && affix(arg, v, (s, a) => s.endsWith(a));
    case "equals-ignore-case":
      return typeof v === "string" && v.toLowerCase() === String(arg).toLowerCase();
    case "wildcard":
      return typeof v === "string" && wildcard(String(arg), v);
    case "cidr":
      return typeof v === "string" && inCidr(String(arg), v);
    case "numeric":
      return typeof v === "number" && numeric(arg as (string | number)[], v);
    case "anything-but":
      return anythingBut(arg, v);
    default:
      return false;
  }
}

function affix(arg: Json, v: string, test: (s: string, a: string) => boolean): boolean {
  if (typeof arg === "string") return test(v, arg);
  const a = String((arg as Record<string, Json>)["equals-ignore-case"]);
  return test(v.toLowerCase(), a.toLowerCase());
}

function numeric(ops: (string | number)[], v: number): boolean {
  for (let i = 0; i < ops.length; i += 2) {
    const op = ops[i] as string;
    const n = ops[i + 1] as number;
    const ok = op === "=" ? v === n : op === "<" ? v < n : op === "<=" ? v <= n : op === ">" ? v > n : v >= n;
    if (!ok) return false;
  }
  return true;
}

function anythingBut(arg: Json, v: unknown): boolean {
  if (typeof arg === "string" || typeof arg === "number") return v !== arg;
  if (Array.isArray(arg)) return !arg.includes(v as Json);
  const [op, x] = Object.entries(arg as Record<string, Json>)[0]!;
  // The string forms of anything-but exclude strings only: any non-string value is "anything but" them.
  if (typeof v !== "string") return true;
  const list = Array.isArray(x) ? (x as string[]) : [String(x)];
  switch (op) {
    case "prefix":
      return !v.startsWith(String(x));
    case "suffix":
      return !v.endsWith(String(x));
    case "equals-ignore-case":
      return !list.some((s) => s.toLowerCase() === v.toLowerCase());
    case "wildcard":
      return !list.some((s) => wildcard(s, v));
    default:
      return false;
  }
}

/** `*` matches any run of characters; `\*` is a literal star. */
function wildcard(pattern: string, v: string): boolean {
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\" && (pattern[i + 1] === "*" || pattern[i + 1] === "\\")) {
      re += escapeRe(pattern[++i]!);
    } else if (c === "*") re += ".*";
    else re += escapeRe(c);
  }
  return new RegExp(`${re}$`, "s").test(v);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function parseIpv4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

function parseCidr(s: string): { base: number; bits: number } | undefined {
  const [ip, bits, extra] = s.split("/");
  if (extra !== undefined || ip === undefined || bits === undefined || !/^\d{1,2}$/.test(bits) || Number(bits) > 32)
    return undefined;
  const base = parseIpv4(ip);
  return base === undefined ? undefined : { base, bits: Number(bits) };
}

function inCidr(cidr: string, v: string): boolean {
  const c = parseCidr(cidr);
  const ip = parseIpv4(v);
  if (!c || ip === undefined) return false;
  const size = 2 ** (32 - c.bits);
  return Math.floor(ip / size) === Math.floor(c.base / size);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
