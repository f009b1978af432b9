/**
 * IAM at run time on the local stack: every kiln Lambda calls the cloud as its own serverless.yml
 * role, so a role that lacks a permission fails the deployment where AWS would, at the step that
 * needs it, with AWS's access-denied error — and the rest of the run holds (the other e2e tests run
 * under the same enforcement).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PolicyStatement } from "../../local/cloud/iam/evaluate.ts";
import { bootE2E, commitOf, type E2E, failedAt, settle, startDeploy } from "../support/stack.ts";

let e: E2E;
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
