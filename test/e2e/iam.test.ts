/**
 * IAM at run time on the local stack: every kiln Lambda calls the cloud as its own serverless.yml
 * role, so a role that lacks a permission fails the deployment where AWS would, at the step that
 * needs it, with AWS's access-denied error — and the rest of the run holds (the other e2e tests run
 * under the same enforcement).
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PolicyStatement } from "../../local/cloud/iam/evaluate.ts";
import { bootE2E, commitOf, type E2E, failedAt, settle, startDeploy, startMachine } from "../support/stack.ts";

let e: E2E;
/** The deploy machine's role as the engine assumes it (the machine's roleArn). */
const DEPLOY_MACHINE_ROLE = "role:arn:aws:iam::123456789012:role/kiln-local-DeployStateMachineRole";
beforeAll(async () => {
  e = await bootE2E({ instances: 2 });
}, 120_000);
afterAll(async () => e?.stack.stop());

describe("IAM at run time", () => {
  it("every kiln function runs as its own role", () => {
    const fns = Object.values(e.stack.info().functions).map((arn) => arn.split(":").pop()!);
    expect(fns.length).toBeGreaterThan(30);
    for (const f of fns) expect(e.stack.roles.get(f)?.policies.length, f).toBeGreaterThan(0);
  });

  it("the state machines run as their own roles: the deploy machine may invoke its steps and nothing else", async () => {
    const role = e.stack.roles.get(DEPLOY_MACHINE_ROLE)!;
    expect(role.roleName).toBe("kiln-local-DeployStateMachineRole");
    const invocable = [role.policies[0]!.document.Statement]
      .flat()
      .flatMap((s: PolicyStatement) => [s.Resource ?? []].flat())
      .filter((r) => !r.endsWith(":*"))
      .map((r) => r.split(":").pop());
    // Exactly the functions its definition names (state-machines/deploy.asl.json).
    const named = [...readFileSync("state-machines/deploy.asl.json", "utf8").matchAll(/"\$\{([A-Za-z]+)FunctionArn\}"/g)].map(
      (m) => `kiln-local-${m[1]!.charAt(0).toLowerCase()}${m[1]!.slice(1)}`,
    );
    expect(new Set(invocable)).toEqual(new Set(named));
  });

  it("a state machine role that cannot invoke a step fails the deployment at that step with AccessDeniedException", async () => {
    const role = e.stack.roles.get(DEPLOY_MACHINE_ROLE)!;
    const original = role.policies;
    role.policies = original.map((p) => ({
      ...p,
      document: {
        ...p.document,
        Statement: [p.document.Statement].flat().map((s: PolicyStatement) => ({
          ...s,
          Resource: [s.Resource ?? []].flat().filter((r) => !/-waitGreenHealthy(:\*)?$/.test(r)),
        })),
      },
    }));
    try {
      const d = await startDeploy(e, commitOf(0x19));
      const done = await settle(e, d.arn);
      expect(done.status).toBe("FAILED");
      expect(failedAt(e, d.arn)).toBe("WaitGreenHealthy");
      expect(done.error).toBe("Lambda.AccessDeniedException");
      expect(done.cause).toMatch(
        /assumed-role\/kiln-local-DeployStateMachineRole\/web-production-00000019cccc-operator-\d+ is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:[^ ]+:function:kiln-local-waitGreenHealthy/,
      );
      // Put right: the operator aborts it, and the next test deploys from a clean slate.
      role.policies = original;
      const abort = await startMachine(e, e.machines.abort, "web-abort-iam", { service: "web", executionArn: d.arn });
      expect((await settle(e, abort)).status).toBe("SUCCEEDED");
    } finally {
      role.policies = original;
    }
  }, 600_000);

  it("a role without a permission its step needs fails the deployment at that step with AccessDenied", async () => {
    // ShiftTraffic without the lock read: AWS would deny dynamodb:GetItem on the lock table.
    const role = e.stack.roles.get("kiln-local-shiftTraffic")!;
    role.policies = role.policies.map((p) => ({
      ...p,
      document: {
        ...p.document,
        Statement: [p.document.Statement].flat().filter((s: PolicyStatement) => s.Sid !== "ReadServiceLock"),
      },
    }));
    const d = await startDeploy(e, commitOf(0x1a));
    const done = await settle(e, d.arn);
    expect(done.status).toBe("FAILED");
    expect(failedAt(e, d.arn)).toBe("ShiftTraffic");
    expect(done.cause).toMatch(
      /AccessDeniedException.*assumed-role\/kiln-local-ShiftTrafficRole\/kiln-local-shiftTraffic is not authorized to perform: dynamodb:GetItem on resource: arn:aws:dynamodb:[^ ]+:table\/kiln-local-lock/,
    );
  }, 600_000);
});
