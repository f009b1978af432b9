/**
 * serverless.yml's roles as the role check sees them (local/cloud/iam/): each function's role
 * policies with the stack's ARNs resolved, the AWS calls its code makes (the static call graph), and
 * what the check reports missing. Shared by test/deploy/role-check.test.ts and role-drift.ts.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { checkRole, type Env, rolePolicies } from "../../local/cloud/iam/check.ts";
import type { NamedPolicy } from "../../local/cloud/iam/evaluate.ts";
import { loadServerless } from "../../local/serverless.ts";
import { CallGraph } from "./sdk-calls.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const sls = loadServerless({ stage: "prod", region: "us-east-1", accountId: "123456789012" });
export const resources = (sls.resources?.Resources ?? {}) as Record<
  string,
  { Type: string; Properties?: Record<string, unknown> }
>;
export const table = (n: string) => `arn:aws:dynamodb:us-east-1:123456789012:table/kiln-prod-${n}`;
export const env: Env = {
  region: "us-east-1",
  accountId: "123456789012",
  stage: "prod",
  service: "kiln",
  tables: [table("lock"), table("deployments")],
  kmsKeyArn: "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9",
};
const refs = {
  "LockTable.Arn": table("lock"),
  "DeploymentsTable.Arn": table("deployments"),
  PagerTopic: "arn:aws:sns:us-east-1:123456789012:kiln-prod-pager",
};
const graph = new CallGraph();
/** Every function of functions/, its role and the AWS calls its code makes. */
export const functions = readdirSync(path.join(ROOT, "functions"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => {
    const key = f.replace(/\.ts$/, "").replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    const roleId = (sls.functions[key] as { role?: string } | undefined)?.role;
    if (!roleId || !resources[roleId])
      throw new Error(
        `functions/${f}: ${key} needs a role of its own in serverless.yml (role: and resources.Resources.<Name>Role)`,
      );
    return { key, roleId, calls: graph.actions(path.join(ROOT, "functions", f)) };
  });
/**
 * Tables a function writes besides its lock: finishAbort records the aborted deployment
 * (lib/roll/abort.ts, `deps.deploymentsTable`), recordDeployment the finished one.
 */
const WRITES: Record<string, string[]> = {
  finishAbort: [table("lock"), table("deployments")],
  recordDeployment: [table("deployments")],
};
export const policiesOf = (roleId: string): NamedPolicy[] => rolePolicies(resources[roleId]!, env, refs);
/** What the check finds missing from `policies` for `calls` of function `key`: `<call> → <authorization>`. */
export const denied = (policies: NamedPolicy[], calls: Iterable<string>, key = ""): string[] =>
  checkRole(policies, calls, env, WRITES[key]).denials.map((d) => `${d.call} → ${d.request.action}`);
