/**
 * Pieces every EC2 action shares: filters, pagination, tags, id checks, idempotency tokens.
 */
import { AwsError } from "../../protocol/errors.ts";
import type { Params } from "../../protocol/params.ts";

/** A decoded `Filter.N.Name` / `Filter.N.Value.M`. */
export interface Filter {
  name: string;
  values: string[];
}

export function readFilters(p: Params): Filter[] {
  return p.list("Filter").map((f: { Name?: string; Value?: string[] | string }) => {
    if (!f || typeof f.Name !== "string" || !f.Name)
      throw new AwsError("InvalidParameterValue", "The filter name must not be empty");
    const v = f.Value;
    return { name: f.Name, values: Array.isArray(v) ? v.map(String) : v === undefined || v === "" ? [] : [String(v)] };
  });
}

/** What a resource answers for one filter name: a value, several, or undefined (no value). */
export type FilterValue = string | number | boolean | undefined | (string | undefined)[];

/**
 * The filters a resource type supports, by name. `tag:<key>`, `tag-key` and `tag-value` are
 * handled for every type that has tags.
 */
export type FilterTable<T> = Record<string, (item: T) => FilterValue>;

/** Glob match as EC2 filters do: `*` any run of characters, `?` exactly one. */
export function globMatch(pattern: string, value: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === value;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(value);
}

/**
 * Keeps the items matching every filter (AND across filters, OR across one filter's values).
 * An unknown filter name is an `InvalidParameterValue`, as on AWS.
 */
export function applyFilters<T>(
  items: T[],
  filters: Filter[],
  table: FilterTable<T>,
  tagsOf?: (item: T) => Map<string, string>,
): T[] {
  if (filters.length === 0) return items;
  const tests = filters.map((f): ((item: T) => boolean) => {
    if (tagsOf && f.name.startsWith("tag:")) {
      const key = f.name.slice(4);
      return (item) => {
        const v = tagsOf(item).get(key);
        return v !== undefined && f.values.some((p) => globMatch(p, v));
      };
    }
    if (tagsOf && f.name === "tag-key")
      return (item) => [...tagsOf(item).keys()].some((k) => f.values.some((p) => globMatch(p, k)));
    if (tagsOf && f.name === "tag-value")
      return (item) => [...tagsOf(item).values()].some((v) => f.values.some((p) => globMatch(p, v)));
    const get = table[f.name];
    if (!get) throw new AwsError("InvalidParameterValue", `The filter '${f.name}' is invalid`);
    return (item) => {
      const raw = get(item);
      const actual = (Array.isArray(raw) ? raw : [raw])
        .filter((x): x is string | number | boolean => x !== undefined)
        .map(String);
      return actual.some((a) => f.values.some((p) => globMatch(p, a)));
    };
  });
  return items.filter((item) => tests.every((t) => t(item)));
}

/** Anything listed in creation order with a stable sequence number (the pagination key). */
export interface Sequenced {
  readonly seq: number;
}

/**
 * One page of `items` (already in `seq` order) after `NextToken`, at most `MaxResults` long.
 * Tokens carry the last sequence number seen, so pages stay stable while resources come and go.
 */
export function paginate<T extends Sequenced>(
  items: T[],
  p: Params,
  limits: { min: number; max: number },
): { page: T[]; nextToken?: string } {
  const max = p.int("MaxResults");
  if (max !== undefined && (max < limits.min || max > limits.max)) {
    throw new AwsError(
      "InvalidParameterValue",
      `Value ( ${max} ) for parameter maxResults is invalid. Expecting a value between ${limits.min} and ${limits.max}.`,
    );
  }
  const token = p.str("NextToken");
  let after = -1;
  if (token) {
    const m = /^kiln:(\d+)$/.exec(Buffer.from(token, "base64").toString("utf8"));
    if (!m) throw new AwsError("InvalidPaginationToken", `The specified pagination token is not valid: ${token}`);
    after = Number(m[1]);
  }
  const rest = after < 0 ? items : items.filter((i) => i.seq > after);
  if (max === undefined || rest.length <= max) return { page: rest };
  const page = rest.slice(0, max);
  return { page, nextToken: encodeToken(page[page.length - 1]!.seq) };
}

export function encodeToken(seq: number): string {
  return Buffer.from(`kiln:${seq}`).toString("base64");
}

/** EC2's wire shape of a tag list. */
export function tagSet(tags: Map<string, string>): { key: string; value: string }[] {
  return [...tags].map(([key, value]) => ({ key, value }));
}

export interface TagSpec {
  resourceType: string;
  tags: { Key: string; Value: string }[];
}

/** Reads `TagSpecification.N.ResourceType` / `.Tag.M.Key|Value`, checking the allowed types. */
export function readTagSpecs(p: Params, allowed: readonly string[], name = "TagSpecification"): TagSpec[] {
  return p.list(name).map((s: { ResourceType?: string; Tag?: unknown }) => {
    const resourceType = s?.ResourceType;
    if (!resourceType) throw new AwsError("InvalidParameterValue", "Tag specification resource type must have a value");
    if (!allowed.includes(resourceType)) {
      throw new AwsError("InvalidParameterValue", `'${resourceType}' is not a valid taggable resource type for this operation.`);
    }
    const tags = (Array.isArray(s.Tag) ? s.Tag : []).map((t: { Key?: string; Value?: string }) => {
      if (!t || typeof t.Key !== "string") throw new AwsError("InvalidParameterValue", "Tag key must not be empty");
      return { Key: t.Key, Value: t.Value ?? "" };
    });
    checkTags(tags, true);
    return { resourceType, tags };
  });
}

/** Tags of one resource type from a list of tag specifications. */
export function tagsFor(specs: TagSpec[], resourceType: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const s of specs) if (s.resourceType === resourceType) for (const t of s.tags) m.set(t.Key, t.Value);
  return m;
}

export const MAX_TAGS = 50;

/** Tag rules AWS enforces on what callers send: key length, reserved `aws:` prefix. */
export function checkTags(tags: { Key: string; Value?: string }[], userSupplied: boolean): void {
  for (const t of tags) {
    if (!t.Key || t.Key.length > 128)
      throw new AwsError("InvalidParameterValue", `Tag key '${t.Key}' must be 1 to 128 characters long`);
    if ((t.Value ?? "").length > 256)
      throw new AwsError("InvalidParameterValue", `Tag value for key '${t.Key}' must be at most 256 characters long`);
    if (userSupplied && t.Key.toLowerCase().startsWith("aws:")) {
      throw new AwsError("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use");
    }
  }
}

/** Adds tags to a resource's tag map, honouring the per-resource limit. */
export function addTags(target: Map<string, string>, tags: { Key: string; Value?: string }[], resourceId: string): void {
  const keys = new Set([...target.keys(), ...tags.map((t) => t.Key)]);
  if (keys.size > MAX_TAGS)
    throw new AwsError("TagLimitExceeded", `The maximum number of Tags for a resource (${resourceId}) has been reached.`);
  for (const t of tags) target.set(t.Key, t.Value ?? "");
}

const ID_SHAPE = /^[a-z]+-[0-9a-f]{8}(?:[0-9a-f]{9})?$/;

/** True when `id` looks like `<prefix>-` followed by 8 or 17 hex characters. */
export function wellFormedId(id: string, prefix: string): boolean {
  return id.startsWith(`${prefix}-`) && ID_SHAPE.test(id);
}

/**
 * ClientToken memory: the first request with a token records its fingerprint and its result; a
 * repeat with the same fingerprint gets the same result, a different one `IdempotentParameterMismatch`.
 */
export class IdempotencyTokens<R> {
  private readonly seen = new Map<string, { fingerprint: string; result: R }>();

  /** Returns the remembered result, undefined for a new token; throws on a parameter mismatch. */
  lookup(token: string | undefined, input: unknown): R | undefined {
    if (!token) return undefined;
    const hit = this.seen.get(token);
    if (!hit) return undefined;
    if (hit.fingerprint !== fingerprint(input)) {
      throw new AwsError(
        "IdempotentParameterMismatch",
        "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
      );
    }
    return hit.result;
  }

  remember(token: string | undefined, input: unknown, result: R): void {
    if (token) this.seen.set(token, { fingerprint: fingerprint(input), result });
  }
}

/** A stable digest of a decoded request, without the token itself and DryRun. */
export function fingerprint(input: unknown): string {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        if (k === "ClientToken" || k === "DryRun") continue;
        out[k] = strip((v as Record<string, unknown>)[k]);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(strip(input));
}

/** `User initiated (2026-01-05 09:00:00 GMT)`: the StateTransitionReason format. */
export function userInitiated(at: Date): string {
  return `User initiated (${at
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "")} GMT)`;
}

/** Rejects DryRun the way EC2 does when the caller would be allowed (always, here). */
export function dryRun(p: Params): void {
  if (p.bool("DryRun")) throw new AwsError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412);
}
