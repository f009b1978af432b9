/**
 * Intrinsic functions (`States.Format(...)` and friends) usable in `.$` fields of payload templates
 * (Parameters, ResultSelector, ItemSelector, Assign) and in Fail's ErrorPath/CausePath.
 * Grammar: `States.Name(arg, …)` where an arg is a 'string' (escapes `\'`, `\{`, `\}`, `\\`),
 * a number, true/false/null, a path (`$…`, `$$…`, `$var…`) or a nested intrinsic call.
 * Every failure is `States.IntrinsicFailure`.
 */
import { createHash } from "node:crypto";
import { IntrinsicFailureError } from "./errors.ts";
import { type PathRefs, PathNotFound, queryPath } from "./jsonpath.ts";

type Arg = { kind: "literal"; value: unknown } | { kind: "path"; path: string } | { kind: "call"; name: string; args: Arg[] };

/** True when a `.$` value is an intrinsic call rather than a path. */
export function isIntrinsic(s: string): boolean {
  return /^States\.[A-Za-z0-9]+\(/.test(s.trim());
}

class Parser {
  i = 0;
  constructor(readonly src: string) {}
  fail(why: string): never {
    throw new IntrinsicFailureError(`Invalid intrinsic function expression '${this.src}': ${why}`);
  }
  ws(): void {
    while (/\s/.test(this.src[this.i] ?? "")) this.i++;
  }
  call(): Arg {
    this.ws();
    const m = /^States\.([A-Za-z0-9]+)\(/.exec(this.src.slice(this.i));
    if (!m) this.fail(`expected States.<Function>( at ${this.i}`);
    this.i += m[0].length;
    const args: Arg[] = [];
    this.ws();
    if (this.src[this.i] === ")") {
      this.i++;
      return { kind: "call", name: m[1]!, args };
    }
    for (;;) {
      args.push(this.arg());
      this.ws();
      const c = this.src[this.i];
      if (c === ",") {
        this.i++;
        continue;
      }
      if (c === ")") {
        this.i++;
        return { kind: "call", name: m[1]!, args };
      }
      this.fail(`expected , or ) at ${this.i}`);
    }
  }
  arg(): Arg {
    this.ws();
    const rest = this.src.slice(this.i);
    if (rest.startsWith("States.")) return this.call();
    if (rest.startsWith("'")) {
      let out = "";
      this.i++;
      for (;;) {
        const c = this.src[this.i];
        if (c === undefined) this.fail("unterminated string");
        if (c === "\\") {
          const n = this.src[this.i + 1];
          if (n === undefined) this.fail("dangling escape");
          // `\{` and `\}` stay escaped so States.Format can tell a literal brace from a placeholder.
          out += n === "{" || n === "}" ? `\\${n}` : n;
          this.i += 2;
          continue;
        }
        if (c === "'") {
          this.i++;
          return { kind: "literal", value: out };
        }
        out += c;
        this.i++;
      }
    }
    if (rest.startsWith("$")) {
      let depth = 0;
      let j = this.i;
      let quote: string | undefined;
      for (; j < this.src.length; j++) {
        const c = this.src[j]!;
        if (quote) {
          if (c === "\\") j++;
          else if (c === quote) quote = undefined;
          continue;
        }
        if (c === "'" || c === '"') quote = c;
        else if (c === "[" || c === "(") depth++;
        else if (c === "]" || (c === ")" && depth > 0)) depth--;
        else if (depth === 0 && (c === "," || c === ")")) break;
      }
      const path = this.src.slice(this.i, j).trim();
      this.i = j;
      return { kind: "path", path };
    }
    const lit = /^(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(rest);
    if (lit) {
      this.i += lit[0].length;
      return { kind: "literal", value: JSON.parse(lit[0]) };
    }
    return this.fail(`unexpected argument at ${this.i}`);
  }
}

/** Parses an intrinsic call expression. */
export function parseIntrinsic(src: string): Arg {
  const p = new Parser(src.trim());
  const call = p.call();
  p.ws();
  if (p.i !== p.src.length) p.fail("trailing characters");
  return call;
}

export interface IntrinsicEnv {
  data: unknown;
  refs?: PathRefs;
  /** Seeded uniform [0,1) for MathRandom/UUID. */
  random: () => number;
}

/** Evaluates an intrinsic call against the state's data, context object and variables. */
export function evaluateIntrinsic(src: string, env: IntrinsicEnv): unknown {
  return evalArg(parseIntrinsic(src), env, src);
}

function evalArg(a: Arg, env: IntrinsicEnv, src: string): unknown {
  if (a.kind === "literal") return typeof a.value === "string" ? unescapeBraces(a.value) : a.value;
  if (a.kind === "path") {
    try {
      return queryPath(a.path, env.data, env.refs);
    } catch (e) {
      if (e instanceof PathNotFound)
        throw new IntrinsicFailureError(
          `The JsonPath argument ${a.path} for the function ${src} could not be found in the input`,
        );
      throw e;
    }
  }
  const fn = FUNCTIONS[a.name];
  if (!fn) throw new IntrinsicFailureError(`The intrinsic function States.${a.name} is not supported`);
  // Format needs the raw template (escaped braces), everything else the plain strings.
  const args = a.args.map((x, i) => (a.name === "Format" && i === 0 && x.kind === "literal" ? x.value : evalArg(x, env, src)));
  return fn(args, env, `States.${a.name}`);
}

function unescapeBraces(s: string): string {
  return s.replace(/\\([{}])/g, "$1");
}

function fail(fn: string, why: string): never {
  throw new IntrinsicFailureError(`Invalid arguments in ${fn}: ${why}`);
}
function arity(fn: string, args: unknown[], min: number, max = min): void {
  if (args.length < min || args.length > max)
    fail(fn, `expected ${min === max ? min : `${min}-${max}`} argument(s), got ${args.length}`);
}
function asArray(fn: string, v: unknown): unknown[] {
  if (!Array.isArray(v)) fail(fn, `expected an array, got ${JSON.stringify(v)}`);
  return v;
}
function asString(fn: string, v: unknown): string {
  if (typeof v !== "string") fail(fn, `expected a string, got ${JSON.stringify(v)}`);
  return v;
}
function asNumber(fn: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(fn, `expected a number, got ${JSON.stringify(v)}`);
  return v;
}
function asInt(fn: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) fail(fn, `expected an integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Structural equality of JSON values (ArrayContains, ArrayUnique). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) => Object.hasOwn(b as object, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}

/** A v4 UUID from a seeded source, so runs are reproducible. */
export function seededUuid(random: () => number): string {
  const b = Array.from({ length: 16 }, () => Math.floor(random() * 256));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const HASHES: Record<string, string> = {
  MD5: "md5",
  "SHA-1": "sha1",
  "SHA-256": "sha256",
  "SHA-384": "sha384",
  "SHA-512": "sha512",
};

/** Step Functions caps ArrayRange at 1000 elements. */
const MAX_RANGE = 1000;

type Fn = (args: unknown[], env: IntrinsicEnv, name: string) => unknown;

const FUNCTIONS: Record<string, Fn> = {
  Format(args, _env, n) {
    if (args.length < 1) fail(n, "expected a template");
    const tpl = asString(n, args[0]);
    let k = 1;
    let out = "";
    for (let i = 0; i < tpl.length; i++) {
      const c = tpl[i];
      if (c === "\\" && (tpl[i + 1] === "{" || tpl[i + 1] === "}")) {
        out += tpl[i + 1];
        i++;
      } else if (c === "{" && tpl[i + 1] === "}") {
        if (k >= args.length) fail(n, "the number of arguments does not match the number of placeholders");
        const v = args[k++];
        out += typeof v === "string" ? v : JSON.stringify(v);
        i++;
      } else out += c;
    }
    if (k !== args.length) fail(n, "the number of arguments does not match the number of placeholders");
    return out;
  },
  StringToJson(args, _e, n) {
    arity(n, args, 1);
    const text = asString(n, args[0]);
    // AWS answers null for an empty or blank string.
    if (text.trim() === "") return null;
    try {
      return JSON.parse(text);
    } catch {
      return fail(n, "the argument is not valid JSON");
    }
  },
  JsonToString(args, _e, n) {
    arity(n, args, 1);
    return JSON.stringify(args[0]);
  },
  Array(args) {
    return [...args];
  },
  ArrayPartition(args, _e, n) {
    arity(n, args, 2);
    const arr = asArray(n, args[0]);
    const size = asInt(n, args[1]);
    if (size <= 0) fail(n, "the chunk size must be greater than 0");
    const out: unknown[][] = [];
    for (let i = 0; i < arr.length; i += size) out.push(arr.slice(i, i + size));
    return out;
  },
  ArrayContains(args, _e, n) {
    arity(n, args, 2);
    return asArray(n, args[0]).some((x) => jsonEqual(x, args[1]));
  },
  ArrayRange(args, _e, n) {
    arity(n, args, 3);
    const [start, end, step] = [asInt(n, args[0]), asInt(n, args[1]), asInt(n, args[2])];
    if (step === 0) fail(n, "step must not be 0");
    const out: number[] = [];
    for (let v = start; step > 0 ? v <= end : v >= end; v += step) {
      out.push(v);
      if (out.length > MAX_RANGE) fail(n, `the result exceeds ${MAX_RANGE} elements`);
    }
    return out;
  },
  ArrayGetItem(args, _e, n) {
    arity(n, args, 2);
    const arr = asArray(n, args[0]);
    const i = asInt(n, args[1]);
    if (i < 0 || i >= arr.length) fail(n, `index ${i} is out of bounds`);
    return arr[i];
  },
  ArrayLength(args, _e, n) {
    arity(n, args, 1);
    return asArray(n, args[0]).length;
  },
  ArrayUnique(args, _e, n) {
    arity(n, args, 1);
    const out: unknown[] = [];
    for (const x of asArray(n, args[0])) if (!out.some((y) => jsonEqual(x, y))) out.push(x);
    return out;
  },
  Base64Encode(args, _e, n) {
    arity(n, args, 1);
    return Buffer.from(asString(n, args[0]), "utf8").toString("base64");
  },
  Base64Decode(args, _e, n) {
    arity(n, args, 1);
    const s = asString(n, args[0]);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) fail(n, "the argument is not valid base64");
    return Buffer.from(s, "base64").toString("utf8");
  },
  Hash(args, _e, n) {
    arity(n, args, 2);
    const algo = HASHES[asString(n, args[1])];
    if (!algo) fail(n, `the hash algorithm must be one of ${Object.keys(HASHES).join(", ")}`);
    const data = typeof args[0] === "string" ? args[0] : JSON.stringify(args[0]);
    return createHash(algo).update(data, "utf8").digest("hex");
  },
  JsonMerge(args, _e, n) {
    arity(n, args, 3);
    const [a, b, deep] = args;
    const isObj = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
    if (!isObj(a) || !isObj(b)) fail(n, "both arguments must be JSON objects");
    // Step Functions only supports the shallow mode.
    if (deep !== false) fail(n, "deep merging is not supported; the third argument must be false");
    return { ...(a as object), ...(b as object) };
  },
  MathRandom(args, env, n) {
    arity(n, args, 2, 3);
    const start = asInt(n, args[0]);
    const end = asInt(n, args[1]);
    if (end <= start) fail(n, "the end must be greater than the start");
    const r = args.length === 3 ? seeded(asInt(n, args[2])) : env.random();
    return start + Math.floor(r * (end - start));
  },
  MathAdd(args, _e, n) {
    arity(n, args, 2);
    // AWS rounds each operand half up (1.5 + 0 = 2, -1.5 + 0 = -1) before adding.
    return Math.round(asNumber(n, args[0])) + Math.round(asNumber(n, args[1]));
  },
  StringSplit(args, _e, n) {
    arity(n, args, 2);
    const s = asString(n, args[0]);
    const delims = new Set(asString(n, args[1]));
    const out: string[] = [];
    let cur = "";
    for (const c of s) {
      if (delims.has(c)) {
        if (cur) out.push(cur);
        cur = "";
      } else cur += c;
    }
    if (cur) out.push(cur);
    return out;
  },
  UUID(args, env, n) {
    arity(n, args, 0);
    return seededUuid(env.random);
  },
};

function seeded(seed: number): number {
  let t = (seed + 0x6d2b79f5) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
