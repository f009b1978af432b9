/**
 * Identity-based policy evaluation, as the IAM User Guide's "Policy evaluation logic" describes it
 * for a principal in its own account with no SCP, RCP, permission boundary, session policy or
 * resource-based policy in play:
 *
 *   1. an explicit Deny in any statement that applies → denied;
 *   2. otherwise an Allow in any statement that applies → allowed;
 *   3. otherwise → implicitly denied.
 *
 * A statement applies when its Action (or NotAction) matches the request's action, its Resource (or
 * NotResource) matches the request's resource and every condition of its Condition block holds.
 *
 * - Actions: `service:Action`, case-insensitive, `*` and `?` wildcards.
 * - Resources: `*`, or an ARN pattern matched segment by segment (partition, service, region,
 *   account, resource) with `*`/`?` wildcards, case-sensitive — the ArnLike rules.
 * - Conditions: operators of different kinds AND together, keys within an operator AND together,
 *   the values of one key OR together (a negated operator requires the request value to match none).
 *   Condition key names are case-insensitive. A key absent from the request makes a positive
 *   operator false and a negated one (`…Not…`) true; `…IfExists` makes an absent key true; `Null`
 *   tests presence. `ForAnyValue:` / `ForAllValues:` compare a multivalued key value by value
 *   (ForAllValues is true for an absent or empty key; ForAnyValue false).
 *
 * Policy variables (`${aws:username}`) are not substituted.
 */

/** A context value: single-valued keys are strings (numbers and booleans are accepted); multivalued keys are lists. */
export type ContextValue = string | number | boolean | (string | number | boolean)[];

export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

/** A named policy (an inline policy of a role). */
export interface NamedPolicy {
  name: string;
  document: PolicyDocument;
}

export interface AuthorizationRequest {
  /** `service:Action`, e.g. `ec2:RunInstances`. */
  action: string;
  /** The resource ARN, or `*` for an action that supports no resource types. */
  resource: string;
  /** Condition keys the request carries (case-insensitive names). */
  context?: Record<string, ContextValue | undefined>;
}

export interface StatementRef {
  policy: string;
  sid?: string;
  index: number;
}

export interface Decision {
  decision: "Allow" | "ExplicitDeny" | "ImplicitDeny";
  /** The statements that decided it: the Deny statements, or the Allow statements that applied. */
  statements: StatementRef[];
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** `*` any run of characters, `?` any single character; everything else literal. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  // Iterative glob match (no regex: patterns come from policies and must not backtrack badly).
  let pi = 0;
  let vi = 0;
  let star = -1;
  let mark = 0;
  while (vi < v.length) {
    if (pi < p.length && (p[pi] === "?" || p[pi] === v[vi])) {
      pi++;
      vi++;
    } else if (pi < p.length && p[pi] === "*") {
      star = pi++;
      mark = vi;
    } else if (star !== -1) {
      pi = star + 1;
      vi = ++mark;
    } else return false;
  }
  while (pi < p.length && p[pi] === "*") pi++;
  return pi === p.length;
}

/** True when `action` (`ec2:RunInstances`) matches the policy's `pattern` (`ec2:Run*`, `*`). */
export function actionMatches(pattern: string, action: string): boolean {
  if (pattern === "*") return true;
  return wildcardMatch(pattern, action, true);
}

/** Splits an ARN into its six parts (the sixth, the resource, keeps its own `:` and `/`). */
function arnParts(arn: string): string[] | undefined {
  const parts = arn.split(":");
  if (parts.length < 6 || parts[0] !== "arn") return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(":")];
}

/** ArnLike: each of the six parts matched with wildcards. A pattern of fewer than six parts matches nothing. */
export function arnLike(pattern: string, arn: string): boolean {
  if (pattern === "*") return true;
  const p = arnParts(pattern);
  const a = arnParts(arn);
  if (!p || !a) return false;
  return p.every((seg, i) => wildcardMatch(seg, a[i]!));
}

/** The Resource element: `*` or an ARN pattern. */
export function resourceMatches(pattern: string, resource: string): boolean {
  if (pattern === "*") return true;
  if (resource === "*") return false;
  return arnLike(pattern, resource);
}

type Comparator = (policyValue: string, requestValue: string) => boolean | undefined;

const num = (s: string): number | undefined => {
  const n = Number(s);
  return s.trim() !== "" && Number.isFinite(n) ? n : undefined;
};
const date = (s: string): number | undefined => {
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
};
const numeric =
  (f: (a: number, b: number) => boolean): Comparator =>
  (p, r) => {
    const a = num(r);
    const b = num(p);
    return a === undefined || b === undefined ? undefined : f(a, b);
  };
const dated =
  (f: (a: number, b: number) => boolean): Comparator =>
  (p, r) => {
    const a = date(r);
    const b = date(p);
    return a === undefined || b === undefined ? undefined : f(a, b);
  };

/** Positive comparators, by base operator name; `negated` names map to the positive one. */
const COMPARATORS: Record<string, Comparator> = {
  StringEquals: (p, r) => p === r,
  StringEqualsIgnoreCase: (p, r) => p.toLowerCase() === r.toLowerCase(),
  StringLike: (p, r) => wildcardMatch(p, r),
  NumericEquals: numeric((a, b) => a === b),
  NumericLessThan: numeric((a, b) => a < b),
  NumericLessThanEquals: numeric((a, b) => a <= b),
  NumericGreaterThan: numeric((a, b) => a > b),
  NumericGreaterThanEquals: numeric((a, b) => a >= b),
  DateEquals: dated((a, b) => a === b),
  DateLessThan: dated((a, b) => a < b),
  DateLessThanEquals: dated((a, b) => a <= b),
  DateGreaterThan: dated((a, b) => a > b),
  DateGreaterThanEquals: dated((a, b) => a >= b),
  Bool: (p, r) => p.toLowerCase() === r.toLowerCase(),
  BinaryEquals: (p, r) => p === r,
  ArnEquals: (p, r) => {
    const a = arnParts(r);
    const b = arnParts(p);
    return a !== undefined && b !== undefined && a.join(":") === b.join(":");
  },
  ArnLike: (p, r) => arnParts(r) !== undefined && arnLike(p, r),
};

const NEGATED: Record<string, string> = {
  StringNotEquals: "StringEquals",
  StringNotEqualsIgnoreCase: "StringEqualsIgnoreCase",
  StringNotLike: "StringLike",
  NumericNotEquals: "NumericEquals",
  DateNotEquals: "DateEquals",
  ArnNotEquals: "ArnEquals",
  ArnNotLike: "ArnLike",
};

/** Thrown for a policy the evaluator cannot read (an unknown operator): a policy bug, never a silent deny. */
export class PolicyError extends Error {}

function lookup(context: Record<string, ContextValue | undefined>, key: string): ContextValue | undefined {
  if (key in context) return context[key];
  const lower = key.toLowerCase();
  for (const [k, v] of Object.entries(context)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

const strings = (v: unknown): string[] => list(v as unknown[]).map((x) => String(x));

/** One `Operator: { key: values }` entry for one key. */
export function conditionHolds(
  operator: string,
  key: string,
  policyValues: unknown,
  context: Record<string, ContextValue | undefined>,
): boolean {
  let op = operator;
  let set: "any" | "all" | undefined;
  if (op.startsWith("ForAnyValue:")) {
    set = "any";
    op = op.slice("ForAnyValue:".length);
  } else if (op.startsWith("ForAllValues:")) {
    set = "all";
    op = op.slice("ForAllValues:".length);
  }
  let ifExists = false;
  if (op.endsWith("IfExists")) {
    ifExists = true;
    op = op.slice(0, -"IfExists".length);
  }
  const raw = lookup(context, key);
  const values = raw === undefined ? [] : list(raw as (string | number | boolean)[]).map(String);
  const present = raw !== undefined && (!Array.isArray(raw) || raw.length > 0);
  const wanted = strings(policyValues);

  if (op === "Null") {
    // "true": the key must be absent; "false": present.
    return wanted.some((w) => (w.toLowerCase() === "true" ? !present : present));
  }
  const negatedOf = NEGATED[op];
  const base = negatedOf ?? op;
  const cmp = COMPARATORS[base];
  if (!cmp) throw new PolicyError(`unknown condition operator ${operator}`);
  // One request value against the policy's values: the positive operator ORs them; the negated one
  // requires that none matches.
  const one = (r: string): boolean => {
    const hit = wanted.some((w) => cmp(w, r) === true);
    return negatedOf ? !hit : hit;
  };

  if (set === "all") return !present || values.every(one);
  if (set === "any") return present && values.some(one);
  if (!present) return ifExists || negatedOf !== undefined;
  // A single-valued operator on a list value compares each member (as ForAnyValue would).
  return negatedOf ? values.every(one) : values.some(one);
}

/** Every condition of a statement's Condition block (AND of operators, AND of keys). */
export function conditionsHold(block: PolicyStatement["Condition"], context: Record<string, ContextValue | undefined>): boolean {
  for (const [operator, keys] of Object.entries(block ?? {})) {
    for (const [key, values] of Object.entries(keys ?? {})) {
      if (!conditionHolds(operator, key, values, context)) return false;
    }
  }
  return true;
}

/** True when the statement applies to the request (Action/NotAction, Resource/NotResource and Condition). */
export function statementApplies(s: PolicyStatement, req: AuthorizationRequest): boolean {
  if (s.Action !== undefined && s.NotAction !== undefined)
    throw new PolicyError(`statement ${s.Sid ?? ""} has both Action and NotAction`);
  if (s.Resource !== undefined && s.NotResource !== undefined)
    throw new PolicyError(`statement ${s.Sid ?? ""} has both Resource and NotResource`);
  const actionOk =
    s.Action !== undefined
      ? list(s.Action).some((p) => actionMatches(p, req.action))
      : s.NotAction !== undefined
        ? !list(s.NotAction).some((p) => actionMatches(p, req.action))
        : false;
  if (!actionOk) return false;
  const resourceOk =
    s.Resource !== undefined
      ? list(s.Resource).some((p) => resourceMatches(p, req.resource))
      : s.NotResource !== undefined
        ? !list(s.NotResource).some((p) => resourceMatches(p, req.resource))
        : false;
  if (!resourceOk) return false;
  return conditionsHold(s.Condition, req.context ?? {});
}

/** Evaluates the request against the identity policies: explicit Deny > Allow > implicit deny. */
export function evaluate(policies: NamedPolicy[], req: AuthorizationRequest): Decision {
  const allows: StatementRef[] = [];
  const denies: StatementRef[] = [];
  for (const p of policies) {
    list(p.document.Statement).forEach((s, index) => {
      if (!statementApplies(s, req)) return;
      const ref = { policy: p.name, index, ...(s.Sid ? { sid: s.Sid } : {}) };
      (s.Effect === "Deny" ? denies : allows).push(ref);
    });
  }
  if (denies.length) return { decision: "ExplicitDeny", statements: denies };
  if (allows.length) return { decision: "Allow", statements: allows };
  return { decision: "ImplicitDeny", statements: [] };
}
