/**
 * Fast check (no packaging) of serverless.yml's function roles against the SDK calls each handler
 * makes — what test/deploy/package.test.ts asserts on the packaged template, in a second:
 *
 *   npx tsx test/deploy/role-drift.ts
 *
 * Prints, per function, the actions its code calls that its role lacks (AccessDenied in production)
 * and the actions its role grants that its code does not call; exits 1 when a role is missing or
 * lacks a call. Extras that AWS authorizes on a call's behalf (iam:PassRole for RunInstances…) are
 * expected and listed for review.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { loadServerless } from "../../local/serverless.ts";
import { CallGraph } from "./sdk-calls.ts";
import { asList, roleStatements, type Resource } from "./template.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const sls = loadServerless({ stage: "prod" });
const resources = (sls.resources?.Resources ?? {}) as Record<string, Resource>;
const graph = new CallGraph();
let failed = false;
for (const file of readdirSync(path.join(ROOT, "functions")).filter((f) => f.endsWith(".ts"))) {
  const key = file.replace(/\.ts$/, "").replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  const fn = sls.functions[key] as { role?: string } | undefined;
  const role = fn?.role ? resources[fn.role] : undefined;
  if (!role) {
    console.log(`${key}: ${fn ? `no role of its own (add role: and resources.Resources.<Name>Role)` : "not in serverless.yml"}`);
    failed = true;
    continue;
  }
  const granted = new Set(
    roleStatements(role)
      .flatMap((s) => asList(s.Action))
      .filter((a) => !a.startsWith("logs:")),
  );
  const calls = graph.actions(path.join(ROOT, "functions", file));
  const missing = [...calls].filter((a) => !granted.has(a));
  const extra = [...granted].filter((a) => !calls.has(a));
  if (missing.length) failed = true;
  if (missing.length || extra.length) console.log(`${key}: missing [${missing.join(", ")}] extra [${extra.join(", ")}]`);
}
process.exit(failed ? 1 : 0);
