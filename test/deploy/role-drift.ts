/**
 * Fast check (no packaging) of serverless.yml's function roles, by evaluation: per function, the
 * authorizations of its code's SDK calls (dependent actions included) that its role does not allow
 * (AccessDenied in production), and the actions its role grants that its code does not call — what
 * test/deploy/role-check.test.ts asserts, in a second:
 *
 *   npx tsx test/deploy/role-drift.ts
 *
 * Exits 1 when a role lacks an authorization. Extras are listed for review (AWS authorizes some on a
 * call's behalf, such as iam:PassRole for RunInstances).
 */
import { denied, functions, policiesOf, resources } from "./roles.ts";
import { asList, type Resource, roleStatements } from "./template.ts";

let failed = false;
for (const f of functions) {
  const missing = denied(policiesOf(f.roleId), f.calls, f.key);
  const granted = roleStatements(resources[f.roleId] as Resource)
    .flatMap((s) => asList(s.Action))
    .filter((a) => !a.startsWith("logs:"));
  const extra = [...new Set(granted)].filter((a) => !f.calls.has(a));
  if (missing.length) failed = true;
  if (missing.length || extra.length) console.log(`${f.key}: missing [${missing.join(", ")}] extra [${extra.join(", ")}]`);
}
process.exit(failed ? 1 : 0);
