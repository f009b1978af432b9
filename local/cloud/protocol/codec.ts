/**
 * Decoding of form-encoded (EC2 query, awsQuery) requests and encoding of XML / JSON responses.
 * One layer for every service: services see plain objects in and return plain objects out.
 */

/** Any nested value decoded from a form body. */
export type FormValue = string | FormValue[] | { [k: string]: FormValue };

/**
 * Nests a flat form (`A.member.1.B=x`, `Filter.2.Value.1=y`) into objects and arrays.
 * Numeric segments are 1-based list indexes; `member` segments (awsQuery) are dropped; an empty
 * value for a key with no children (`Name=`) is an empty string, which list readers treat as `[]`.
 */
export function decodeForm(params: URLSearchParams): Record<string, FormValue> {
  const root: Record<string, FormValue> = {};
  for (const [key, value] of params) {
    if (key === "Action" || key === "Version") continue;
    const parts = key.split(".").filter((p) => p !== "member");
    let node: Record<string, FormValue> | FormValue[] = root;
    for (let i = 0; i < parts.length; i++) {
      const seg = parts[i]!;
      const last = i === parts.length - 1;
      const nextIsIndex = !last && /^\d+$/.test(parts[i + 1]!);
      const k: string | number = /^\d+$/.test(seg) ? Number(seg) - 1 : seg;
      const container = node as Record<string | number, FormValue>;
      if (last) {
        container[k] = value;
      } else {
        let child = container[k];
        if (child === undefined || typeof child === "string") {
          child = nextIsIndex ? [] : {};
          container[k] = child;
        }
        node = child as Record<string, FormValue> | FormValue[];
      }
    }
  }
  return compact(root) as Record<string, FormValue>;
}

/** Removes holes left by sparse indexes (`.1`, `.3`). */
function compact(v: FormValue): FormValue {
  if (Array.isArray(v)) return v.filter((x) => x !== undefined).map(compact);
  if (typeof v === "object") {
    const out: Record<string, FormValue> = {};
    for (const [k, x] of Object.entries(v)) out[k] = compact(x);
    return out;
  }
  return v;
}

const XML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

const XML_MEMBER = Symbol("xmlMemberName");

/**
 * Marks a list whose members the model names otherwise than `item`/`member` (e.g. EC2's
 * launch-template network interface `groupSet`, whose members are `<groupId>`).
 */
export function xmlList<T>(items: T[], memberName: string): T[] {
  const copy = [...items];
  Object.defineProperty(copy, XML_MEMBER, { value: memberName, enumerable: false });
  return copy;
}

/**
 * Renders a value as XML children. Arrays become repeated `<itemName>` elements inside their key
 * (or the name given with `xmlList`), Dates ISO-8601, booleans `true`/`false`, `undefined`/`null`
 * are omitted.
 */
export function toXml(value: unknown, itemName: "item" | "member"): string {
  if (value === undefined || value === null) return "";
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) {
    const name = (value as { [XML_MEMBER]?: string })[XML_MEMBER] ?? itemName;
    return value.map((v) => `<${name}>${toXml(v, itemName)}</${name}>`).join("");
  }
  if (typeof value === "object") {
    let out = "";
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined || v === null) continue;
      if (Array.isArray(v) && v.length === 0) {
        out += `<${k}/>`;
        continue;
      }
      out += `<${k}>${toXml(v, itemName)}</${k}>`;
    }
    return out;
  }
  return escapeXml(String(value));
}

/** Deep-copies a value turning Dates into epoch-second numbers (json protocols). */
export function datesToEpoch(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(datesToEpoch);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = datesToEpoch(v);
    return out;
  }
  return value;
}
