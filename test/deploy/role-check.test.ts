/**
 * serverless.yml's roles evaluated (local/cloud/iam/): every authorization AWS makes for every call a
 * function's code sends — dependent actions included — is allowed by the function's own role, and
 * the findings of the review against the Service Authorization Reference stay fixed.
 */
import { describe, expect, it } from "vitest";
import { callAuthorizations, checkRole } from "../../local/cloud/iam/check.ts";
import { evaluate, type NamedPolicy, type PolicyStatement } from "../../local/cloud/iam/evaluate.ts";
import { denied, env, functions, policiesOf, table } from "./roles.ts";

const withoutSid = (policies: NamedPolicy[], sid: string): NamedPolicy[] =>
  policies.map((p) => ({
    ...p,
    document: { ...p.document, Statement: [p.document.Statement].flat().filter((s) => s.Sid !== sid) },
  }));

describe("role check over serverless.yml", () => {
  it.each(functions.map((f) => [f.key, f]))("%s: its role allows every authorization of every call its code makes", (_k, f) => {
    expect(denied(policiesOf(f.roleId), f.calls, f.key)).toEqual([]);
  });

  it("removing any one statement of a role makes the check fail, naming the action", () => {
    let statements = 0;
    for (const f of functions) {
      const policies = policiesOf(f.roleId);
      for (const s of policies.flatMap((p) => [p.document.Statement].flat() as PolicyStatement[])) {
        // Log writes are Lambda's and a schedule's invoke is EventBridge Scheduler's, not SDK calls of the code.
        if (!s.Sid || s.Sid === "OwnLogs" || [s.Action].flat().includes("lambda:InvokeFunction")) continue;
        statements++;
        const missing = denied(withoutSid(policies, s.Sid), f.calls, f.key);
        const actions = [s.Action].flat() as string[];
        expect(missing.length, `${f.roleId} without ${s.Sid}`).toBeGreaterThan(0);
        expect(
          missing.some((m) => actions.some((a) => m.endsWith(`→ ${a}`))),
          `${f.roleId} without ${s.Sid}: ${missing.join(", ")}`,
        ).toBe(true);
      }
    }
    expect(statements).toBeGreaterThan(100);
  });

  it("counts its evaluations", () => {
    const total = functions.reduce((n, f) => n + checkRole(policiesOf(f.roleId), f.calls, env).evaluations, 0);
    console.log(`role check: ${functions.length} functions, ${total} evaluations`);
    expect(total).toBeGreaterThan(functions.length);
  });
});

describe("review findings stay fixed (each fails on the role as it was)", () => {
  const fn = (key: string) => functions.find((f) => f.key === key)!;
  const check = (key: string, policies: NamedPolicy[]) => denied(policies, fn(key).calls, key);

  it("green creation needs ec2:CreateTags (the launch template's TagSpecifications, ec2:CreateAction RunInstances)", () => {
    const req = callAuthorizations("autoscaling:CreateAutoScalingGroup", env).find((r) => r.action === "ec2:CreateTags")!;
    expect(req.context).toMatchObject({ "ec2:CreateAction": "RunInstances" });
    expect(check("createGreenFleet", withoutSid(policiesOf("CreateGreenFleetRole"), "TagFleetOnLaunch"))).toEqual([
      "autoscaling:CreateAutoScalingGroup → ec2:CreateTags",
    ]);
  });

  it("copying a lifecycle hook with a RoleARN needs iam:PassRole to autoscaling.amazonaws.com", () => {
    expect(check("createGreenFleet", withoutSid(policiesOf("CreateGreenFleetRole"), "PassHookRoles"))).toEqual([
      "autoscaling:PutLifecycleHook → iam:PassRole",
    ]);
    // Passing to EC2 (the launch template's role) does not cover passing to Auto Scaling.
    const hook = callAuthorizations("autoscaling:PutLifecycleHook", env).find((r) => r.action === "iam:PassRole")!;
    expect(evaluate(withoutSid(policiesOf("CreateGreenFleetRole"), "PassHookRoles"), hook).decision).toBe("ImplicitDeny");
  });

  it("aborting with commands in flight needs ssm:CancelCommand without a condition (it supports no resource types or condition keys)", () => {
    const cancel = callAuthorizations("ssm:CancelCommand", env);
    expect(cancel).toEqual([{ action: "ssm:CancelCommand", resource: "*", context: {} }]);
    const old: NamedPolicy[] = policiesOf("PrepareAbortRole").map((p) => ({
      ...p,
      document: {
        ...p.document,
        Statement: [p.document.Statement]
          .flat()
          .map((s) =>
            s.Sid === "CancelTheAbortedDeploymentsCommands"
              ? { ...s, Condition: { StringLike: { "ssm:resourceTag/kiln:service": "?*" } } }
              : s,
          ),
      },
    }));
    expect(check("prepareAbort", old)).toEqual(["ssm:CancelCommand → ssm:CancelCommand"]);
    expect(check("prepareAbort", policiesOf("PrepareAbortRole"))).toEqual([]);
  });

  it.each([
    ["launchBuilder", "LaunchBuilderRole"],
    ["waitBuilderReady", "WaitBuilderReadyRole"],
  ])("%s: a builder on a customer-managed KMS key needs the key through EC2 (kms:ViaService)", (key, roleId) => {
    const kmsDenials = (policies: NamedPolicy[]) => check(key, policies).filter((d) => d.includes("→ kms:"));
    expect(kmsDenials(withoutSid(withoutSid(policiesOf(roleId), "EncryptVolumesThroughEc2"), "GrantEc2TheKey"))).toEqual([
      "ec2:RunInstances → kms:GenerateDataKeyWithoutPlaintext",
      "ec2:RunInstances → kms:Decrypt",
      "ec2:RunInstances → kms:DescribeKey",
      "ec2:RunInstances → kms:CreateGrant",
    ]);
    // The grant holds only through EC2 in this region.
    const decrypt = callAuthorizations("ec2:RunInstances", env).find((r) => r.action === "kms:Decrypt")!;
    expect(evaluate(policiesOf(roleId), decrypt).decision).toBe("Allow");
    expect(
      evaluate(policiesOf(roleId), { ...decrypt, context: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } }).decision,
    ).toBe("ImplicitDeny");
    // Without a customer-managed key, no KMS authorization is made.
    expect(
      callAuthorizations("ec2:RunInstances", { ...env, kmsKeyArn: undefined }).some((r) => r.action.startsWith("kms:")),
    ).toBe(false);
  });

  it("finishAbort records the aborted deployment: dynamodb:PutItem on the deployments table", () => {
    expect(check("finishAbort", withoutSid(policiesOf("FinishAbortRole"), "RecordAbort"))).toEqual([
      "dynamodb:PutItem → dynamodb:PutItem",
    ]);
    expect(evaluate(policiesOf("FinishAbortRole"), { action: "dynamodb:PutItem", resource: table("deployments") }).decision).toBe(
      "Allow",
    );
  });
});
