/**
 * Response shapes: what a differential test compares when two implementations of an AWS API cannot
 * be expected to return the same values (ids, times, counts) but must return the same structure.
 *
 * A shape keeps key names, nesting and value types (string, number, boolean, Date, array, object)
 * and forgets values. Array elements are merged into one element shape, so a list of three
 * instances compares like a list of one.
 */

/** The type of one value, with the shape of its members for objects and arrays. */
export type Shape =
  | { kind: "string" | "number" | "boolean" | "Date" | "null" | "bytes" }
  | { kind: "array"; element?: Shape }
  | { kind: "object"; keys: Record<string, Shape> };

/** The shape of a value as an AWS SDK v3 client returns it. */
export function shapeOf(value: unknown): Shape {
  if (value === null || value === undefined) return { kind: "null" };
  if (value instanceof Date) return { kind: "Date" };
  if (value instanceof Uint8Array) return { kind: "bytes" };
  if (Array.isArray(value)) {
    let element: Shape | undefined;
    for (const v of value) element = element ? merge(element, shapeOf(v)) : shapeOf(v);
    return element ? { kind: "array", element } : { kind: "array" };
  }
  if (typeof value === "object") {
    const keys: Record<string, Shape> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      // The SDK leaves optional members it did not find as undefined keys on some paths; an
      // absent member and an undefined one are the same thing on the wire.
      if (v === undefined) continue;
      keys[k] = shapeOf(v);
    }
    return { kind: "object", keys };
  }
  const t = typeof value;
  if (t === "string" || t === "number" || t === "boolean") return { kind: t };
  return { kind: "string" };
}

/** Merges two element shapes of one array (union of keys; the first type wins on a conflict). */
function merge(a: Shape, b: Shape): Shape {
  if (a.kind === "object" && b.kind === "object") {
    const keys: Record<string, Shape> = { ...a.keys };
    for (const [k, s] of Object.entries(b.keys)) keys[k] = keys[k] ? merge(keys[k], s) : s;
    return { kind: "object", keys };
  }
  if (a.kind === "array" && b.kind === "array") {
    if (!a.element) return b;
    if (!b.element) return a;
    return { kind: "array", element: merge(a.element, b.element) };
  }
  return a.kind === "null" ? b : a;
}

/** One structural difference, by path (`Reservations[].Instances[].State.Name`). */
export interface ShapeDiff {
  path: string;
  /** `type`: both have the key with different types; `missing`: only `other` has it; `extra`: only `actual` has it. */
  kind: "type" | "missing" | "extra";
  detail: string;
}

/**
 * The differences of `actual` (the implementation under test) from `other` (the oracle). Below an
 * array that is empty on either side nothing can be compared, so nothing is reported.
 */
export function diffShapes(actual: Shape, other: Shape, path = ""): ShapeDiff[] {
  if (actual.kind === "null" || other.kind === "null") return [];
  if (actual.kind !== other.kind) return [{ path: path || "(root)", kind: "type", detail: `${actual.kind} ≠ ${other.kind}` }];
  if (actual.kind === "array" && other.kind === "array") {
    if (!actual.element || !other.element) return [];
    return diffShapes(actual.element, other.element, `${path}[]`);
  }
  if (actual.kind === "object" && other.kind === "object") {
    const out: ShapeDiff[] = [];
    const names = new Set([...Object.keys(actual.keys), ...Object.keys(other.keys)]);
    for (const k of [...names].sort()) {
      const p = path ? `${path}.${k}` : k;
      const a = actual.keys[k];
      const o = other.keys[k];
      if (a && o) out.push(...diffShapes(a, o, p));
      else if (o) out.push({ path: p, kind: "missing", detail: `only the oracle has ${p}` });
      else out.push({ path: p, kind: "extra", detail: `only the implementation has ${p}` });
    }
    return out;
  }
  return [];
}

/**
 * A documented exception: a path pattern (`*` matches within one segment, a trailing `**` matches
 * the path and everything below it), the kind of difference it covers, and why it is accepted.
 */
export interface Exclusion {
  path: string;
  kind: ShapeDiff["kind"] | "any";
  why: string;
}

function patternToRegExp(pattern: string): RegExp {
  const deep = pattern.endsWith(".**");
  const base = deep ? pattern.slice(0, -3) : pattern;
  const body = base
    .split("")
    .map((c) => (c === "*" ? "[^.]*" : /[\\^$.|?+()[\]{}]/.test(c) ? `\\${c}` : c))
    .join("");
  return new RegExp(`^${body}${deep ? "(\\..*|\\[\\].*)?" : ""}$`);
}

/** The differences no exclusion covers. */
export function unexplained(diffs: ShapeDiff[], exclusions: readonly Exclusion[]): ShapeDiff[] {
  const rules = exclusions.map((e) => ({ re: patternToRegExp(e.path), kind: e.kind }));
  return diffs.filter((d) => !rules.some((r) => (r.kind === "any" || r.kind === d.kind) && r.re.test(d.path)));
}
