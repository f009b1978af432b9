/**
 * Readers for the CloudFormation template `serverless package` writes: resources by type, the
 * statements of a role's inline policies, intrinsic references (for the dependency graph) and the
 * IAM actions a statement grants.
 */

export interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: string | string[];
  Condition?: string;
}

export interface Template {
  Resources: Record<string, Resource>;
  Outputs?: Record<string, { Value: unknown; Description?: string }>;
}

export interface Statement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  Resource?: unknown;
  NotResource?: unknown;
  NotAction?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** Resources of one CloudFormation type, as [logicalId, resource] pairs. */
export function ofType(t: Template, type: string): [string, Resource][] {
  return Object.entries(t.Resources).filter(([, r]) => r.Type === type);
}

/** Every statement of a role's inline policies. */
export function roleStatements(role: Resource): Statement[] {
  const policies = (role.Properties?.Policies ?? []) as { PolicyDocument: { Statement: Statement | Statement[] } }[];
  return policies.flatMap((p) =>
    Array.isArray(p.PolicyDocument.Statement) ? p.PolicyDocument.Statement : [p.PolicyDocument.Statement],
  );
}

export const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Logical ids a value refers to: `Ref`, `Fn::GetAtt`, and `${Name}` / `${Name.Attr}` inside `Fn::Sub`. */
export function references(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) references(v, out);
  } else if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.Ref === "string") out.add(o.Ref);
    const getAtt = o["Fn::GetAtt"];
    if (Array.isArray(getAtt) && typeof getAtt[0] === "string") out.add(getAtt[0]);
    if (typeof getAtt === "string") out.add(getAtt.split(".")[0]!);
    const sub = o["Fn::Sub"];
    if (sub !== undefined) {
      const [tpl, vars] = Array.isArray(sub)
        ? [sub[0] as string, (sub[1] ?? {}) as Record<string, unknown>]
        : [sub as string, {}];
      for (const m of tpl.matchAll(/\$\{([^}!][^}]*)\}/g)) {
        const name = m[1]!.split(".")[0]!;
        if (!(name in vars)) out.add(name);
      }
      references(vars, out);
    }
    for (const [k, v] of Object.entries(o)) if (k !== "Ref" && k !== "Fn::GetAtt" && k !== "Fn::Sub") references(v, out);
  }
  return out;
}

/** A cycle among the template's resources (Ref, GetAtt, Sub, DependsOn), or undefined. */
export function findCycle(t: Template): string[] | undefined {
  const edges = new Map<string, string[]>();
  for (const [id, r] of Object.entries(t.Resources)) {
    const deps = new Set([...references(r.Properties ?? {}), ...asList(r.DependsOn)]);
    edges.set(
      id,
      [...deps].filter((d) => d in t.Resources),
    );
  }
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === "done") return undefined;
    if (state.get(id) === "open") return [...path.slice(path.indexOf(id)), id];
    state.set(id, "open");
    path.push(id);
    for (const d of edges.get(id) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(id, "done");
    return undefined;
  };
  for (const id of edges.keys()) {
    const c = visit(id);
    if (c) return c;
  }
  return undefined;
}

/** True when an action changes or destroys something (anything but Describe/List/Get reads). */
export function isMutating(action: string): boolean {
  const op = action.split(":")[1] ?? "";
  return !/^(Describe|List|Get)/.test(op);
}
