/**
 * JSONPath as the States Language uses it (Jayway semantics on AWS): `$` is the state's data,
 * `$$` the context object, `$name` a workflow variable (variables are readable from JSONPath states
 * too). A *definite* path yields one value and fails when nothing matches; an indefinite one
 * (wildcards, filters, slices, unions, `..`) yields the array of matches.
 */
import { JSONPath } from "jsonpath-plus";

/** Where `$$` and `$name` resolve. */
export interface PathRefs {
  context: unknown;
  variable(name: string): { found: boolean; value?: unknown };
}

/** Raised when a path selects nothing; callers turn it into the state's own `States.*` error. */
export class PathNotFound extends Error {
  constructor(readonly path: string) {
    super(`No results for path: ${path}`);
    this.name = "PathNotFound";
  }
}

type Segment = string | number;

/** Splits a simple (definite, reference) path `$.a['b'][0]` into segments; undefined if not simple. */
export function parseReferencePath(path: string): Segment[] | undefined {
  if (!path.startsWith("$")) return undefined;
  const out: Segment[] = [];
  let i = 1;
  while (i < path.length) {
    const c = path[i];
    if (c === ".") {
      if (path[i + 1] === ".") return undefined;
      const m = /^[^.[\]*?()@,:'"\s]+/.exec(path.slice(i + 1));
      if (!m) return undefined;
      out.push(m[0]);
      i += 1 + m[0].length;
    } else if (c === "[") {
      const rest = path.slice(i);
      const num = /^\[(\d+)\]/.exec(rest);
      const str = /^\['((?:[^'\\]|\\.)*)'\]/.exec(rest) ?? /^\["((?:[^"\\]|\\.)*)"\]/.exec(rest);
      if (num) {
        out.push(Number(num[1]));
        i += num[0].length;
      } else if (str) {
        out.push(str[1]!.replace(/\\(.)/g, "$1"));
        i += str[0].length;
      } else return undefined;
    } else return undefined;
  }
  return out;
}

/** True when the path selects at most one node (no wildcard, filter, slice, union or deep scan). */
export function isDefinite(path: string): boolean {
  return parseReferencePath(path) !== undefined || !/(\*|\.\.|\?\(|:|,)/.test(stripQuoted(path));
}

function stripQuoted(p: string): string {
  return p.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g, "''");
}

/** `$$.x` → context, `$name.x` → a variable, `$.x`/`$` → data. Returns the root and the `$`-relative path. */
function resolveRoot(path: string, data: unknown, refs?: PathRefs): { root: unknown; rel: string } {
  if (path.startsWith("$$")) {
    if (!refs) throw new PathNotFound(path);
    return { root: refs.context, rel: `$${path.slice(2)}` };
  }
  const v = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(path);
  if (v) {
    const name = v[1]!;
    const got = refs?.variable(name);
    if (!got?.found) throw new PathNotFound(path);
    return { root: got.value, rel: `$${path.slice(1 + name.length)}` };
  }
  if (!path.startsWith("$")) throw new PathNotFound(path);
  return { root: data, rel: path };
}

/** True for `$$…`, `$…` and `$var…` strings (what a `.$` field may hold besides intrinsics). */
export function isPath(s: string): boolean {
  return s.startsWith("$");
}

/** Evaluates a JSONPath. Throws PathNotFound when a definite path selects nothing. */
export function queryPath(path: string, data: unknown, refs?: PathRefs): unknown {
  const { root, rel } = resolveRoot(path.trim(), data, refs);
  const segs = parseReferencePath(rel);
  if (segs) {
    let cur: unknown = root;
    for (const s of segs) {
      if (cur === null || typeof cur !== "object") throw new PathNotFound(path);
      if (Array.isArray(cur)) {
        if (typeof s !== "number" || s >= cur.length) throw new PathNotFound(path);
        cur = cur[s];
      } else {
        const key = String(s);
        if (!Object.hasOwn(cur, key)) throw new PathNotFound(path);
        cur = (cur as Record<string, unknown>)[key];
      }
    }
    return cur;
  }
  if (root === null || typeof root !== "object") throw new PathNotFound(path);
  const matches = JSONPath({ path: rel, json: root as object, wrap: true, eval: "safe" }) as unknown[];
  if (isDefinite(rel)) {
    if (matches.length === 0) throw new PathNotFound(path);
    return matches[0];
  }
  return matches;
}

/** Like queryPath but answers `{found:false}` instead of throwing (IsPresent, optional reads). */
export function tryPath(path: string, data: unknown, refs?: PathRefs): { found: boolean; value?: unknown } {
  try {
    return { found: true, value: queryPath(path, data, refs) };
  } catch (e) {
    if (e instanceof PathNotFound) return { found: false };
    throw e;
  }
}

/**
 * Writes `value` at a reference path inside a copy of `target` (ResultPath). Missing objects along
 * the way are created; a non-object in the way cannot be traversed (ResultPathMatchFailure).
 * Returns undefined when the path cannot be applied.
 */
export function setAtPath(target: unknown, path: string, value: unknown): { ok: true; value: unknown } | { ok: false } {
  const segs = parseReferencePath(path);
  if (!segs) return { ok: false };
  if (segs.length === 0) return { ok: true, value };
  if (target === null || typeof target !== "object" || Array.isArray(target)) return { ok: false };
  const root = structuredClone(target) as Record<string, unknown>;
  let cur: Record<string, unknown> | unknown[] = root;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (Array.isArray(cur)) {
      if (typeof s !== "number" || s >= cur.length) return { ok: false };
      if (last) cur[s] = value;
      else {
        const nxt = cur[s];
        if (nxt === null || typeof nxt !== "object") return { ok: false };
        cur = nxt as Record<string, unknown>;
      }
    } else {
      const key = String(s);
      if (last) cur[key] = value;
      else {
        let nxt = cur[key];
        if (nxt === undefined) {
          nxt = {};
          cur[key] = nxt;
        }
        if (nxt === null || typeof nxt !== "object") return { ok: false };
        cur = nxt as Record<string, unknown>;
      }
    }
  }
  return { ok: true, value: root };
}
