/**
 * The identity-policy evaluator (local/cloud/iam/evaluate.ts), rule by rule, on the examples of the
 * IAM User Guide ("Policy evaluation logic", "IAM JSON policy elements: Condition operators",
 * "Single-valued vs. multivalued context keys").
 */
import { describe, expect, it } from "vitest";
import {
  type AuthorizationRequest,
  evaluate,
  type NamedPolicy,
  type PolicyStatement,
  PolicyError,
} from "../../../local/cloud/iam/evaluate.ts";

const policy = (...Statement: PolicyStatement[]): NamedPolicy[] => [
  { name: "p", document: { Version: "2012-10-17", Statement } },
];
const decide = (stmts: PolicyStatement[], req: AuthorizationRequest) => evaluate(policy(...stmts), req).decision;
const allowed = (stmts: PolicyStatement[], req: AuthorizationRequest) => decide(stmts, req) === "Allow";
const BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket";
const INSTANCE = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0";

describe("decision order", () => {
  it("denies implicitly when no statement allows", () => {
    expect(decide([], { action: "s3:GetObject", resource: `${BUCKET}/a` })).toBe("ImplicitDeny");
    expect(
      decide([{ Effect: "Allow", Action: "s3:PutObject", Resource: "*" }], { action: "s3:GetObject", resource: `${BUCKET}/a` }),
    ).toBe("ImplicitDeny");
  });
  it("allows when a statement allows", () => {
    expect(
      decide([{ Effect: "Allow", Action: "s3:GetObject", Resource: "*" }], { action: "s3:GetObject", resource: `${BUCKET}/a` }),
    ).toBe("Allow");
  });
  it("an explicit Deny overrides any Allow, in any policy", () => {
    const policies: NamedPolicy[] = [
      { name: "allow", document: { Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }] } },
      {
        name: "deny",
        document: { Statement: { Sid: "NoDelete", Effect: "Deny", Action: "s3:DeleteObject", Resource: `${BUCKET}/*` } },
      },
    ];
    const d = evaluate(policies, { action: "s3:DeleteObject", resource: `${BUCKET}/x` });
    expect(d).toEqual({ decision: "ExplicitDeny", statements: [{ policy: "deny", index: 0, sid: "NoDelete" }] });
    expect(evaluate(policies, { action: "s3:GetObject", resource: `${BUCKET}/x` }).decision).toBe("Allow");
  });
  it("a Deny whose condition does not hold does not apply", () => {
    const stmts: PolicyStatement[] = [
      { Effect: "Allow", Action: "ec2:*", Resource: "*" },
      {
        Effect: "Deny",
        Action: "ec2:TerminateInstances",
        Resource: "*",
        Condition: { StringEquals: { "aws:ResourceTag/env": "prod" } },
      },
    ];
    expect(
      decide(stmts, { action: "ec2:TerminateInstances", resource: INSTANCE, context: { "aws:ResourceTag/env": "dev" } }),
    ).toBe("Allow");
    expect(
      decide(stmts, { action: "ec2:TerminateInstances", resource: INSTANCE, context: { "aws:ResourceTag/env": "prod" } }),
    ).toBe("ExplicitDeny");
  });
});

describe("Action and NotAction", () => {
  it("matches service and action case-insensitively, with * and ? wildcards", () => {
    expect(
      allowed([{ Effect: "Allow", Action: "EC2:runinstances", Resource: "*" }], { action: "ec2:RunInstances", resource: "*" }),
    ).toBe(true);
    expect(
      allowed([{ Effect: "Allow", Action: "ec2:Describe*", Resource: "*" }], { action: "ec2:DescribeInstances", resource: "*" }),
    ).toBe(true);
    expect(
      allowed([{ Effect: "Allow", Action: "ec2:Describe*", Resource: "*" }], { action: "ec2:RunInstances", resource: "*" }),
    ).toBe(false);
    expect(
      allowed([{ Effect: "Allow", Action: "iam:*AccessKey?", Resource: "*" }], { action: "iam:ListAccessKeys", resource: "*" }),
    ).toBe(true);
    expect(
      allowed([{ Effect: "Allow", Action: "iam:*AccessKey?", Resource: "*" }], { action: "iam:ListAccessKey", resource: "*" }),
    ).toBe(false);
    expect(allowed([{ Effect: "Allow", Action: "*", Resource: "*" }], { action: "kms:Decrypt", resource: "*" })).toBe(true);
    // A prefix is not a wildcard.
    expect(allowed([{ Effect: "Allow", Action: "ec2:Run", Resource: "*" }], { action: "ec2:RunInstances", resource: "*" })).toBe(
      false,
    );
  });
  it("NotAction applies to every action but those listed (the docs' 'everything but IAM' example)", () => {
    const stmts: PolicyStatement[] = [{ Effect: "Allow", NotAction: "iam:*", Resource: "*" }];
    expect(allowed(stmts, { action: "s3:GetObject", resource: `${BUCKET}/a` })).toBe(true);
    expect(allowed(stmts, { action: "iam:CreateUser", resource: "*" })).toBe(false);
    // Deny with NotAction: denies everything else.
    const deny: PolicyStatement[] = [
      { Effect: "Allow", Action: "*", Resource: "*" },
      {
        Effect: "Deny",
        NotAction: ["iam:*", "sts:*"],
        Resource: "*",
        Condition: { BoolIfExists: { "aws:MultiFactorAuthPresent": "false" } },
      },
    ];
    expect(decide(deny, { action: "ec2:RunInstances", resource: "*" })).toBe("ExplicitDeny");
    expect(decide(deny, { action: "iam:ListUsers", resource: "*" })).toBe("Allow");
    expect(decide(deny, { action: "ec2:RunInstances", resource: "*", context: { "aws:MultiFactorAuthPresent": true } })).toBe(
      "Allow",
    );
  });
  it("rejects a statement with both Action and NotAction", () => {
    expect(() =>
      decide([{ Effect: "Allow", Action: "s3:*", NotAction: "iam:*", Resource: "*" }], { action: "s3:GetObject", resource: "*" }),
    ).toThrow(PolicyError);
  });
});

describe("Resource and NotResource", () => {
  it("matches ARNs part by part with wildcards, case-sensitively", () => {
    const stmts: PolicyStatement[] = [{ Effect: "Allow", Action: "s3:GetObject", Resource: `${BUCKET}/home/*` }];
    expect(allowed(stmts, { action: "s3:GetObject", resource: `${BUCKET}/home/a/b.txt` })).toBe(true);
    expect(allowed(stmts, { action: "s3:GetObject", resource: `${BUCKET}/Home/a` })).toBe(false);
    expect(allowed(stmts, { action: "s3:GetObject", resource: `${BUCKET}-other/home/a` })).toBe(false);
    const anyRegion: PolicyStatement[] = [
      { Effect: "Allow", Action: "ec2:TerminateInstances", Resource: "arn:aws:ec2:*:123456789012:instance/*" },
    ];
    expect(allowed(anyRegion, { action: "ec2:TerminateInstances", resource: INSTANCE })).toBe(true);
    expect(
      allowed(anyRegion, { action: "ec2:TerminateInstances", resource: INSTANCE.replace("123456789012", "210987654321") }),
    ).toBe(false);
    // A wildcard in one part does not cross into the next: `us-*` is the region, not the rest of the ARN.
    const inRegion: PolicyStatement[] = [
      { Effect: "Allow", Action: "ec2:*", Resource: "arn:aws:ec2:us-*:123456789012:volume/*" },
    ];
    expect(allowed(inRegion, { action: "ec2:TerminateInstances", resource: INSTANCE })).toBe(false);
    expect(
      allowed([{ Effect: "Allow", Action: "ec2:*", Resource: "arn:aws:ec2:us-*:*" }], {
        action: "ec2:TerminateInstances",
        resource: INSTANCE,
      }),
    ).toBe(false);
  });
  it("an action that supports no resource types is authorized against * only", () => {
    expect(
      allowed([{ Effect: "Allow", Action: "ssm:CancelCommand", Resource: "*" }], { action: "ssm:CancelCommand", resource: "*" }),
    ).toBe(true);
    expect(
      allowed([{ Effect: "Allow", Action: "ssm:CancelCommand", Resource: "arn:aws:ssm:*:*:*" }], {
        action: "ssm:CancelCommand",
        resource: "*",
      }),
    ).toBe(false);
  });
  it("NotResource applies to every resource but those listed", () => {
    const stmts: PolicyStatement[] = [
      { Effect: "Allow", Action: "s3:*", Resource: "*" },
      { Effect: "Deny", Action: "s3:*", NotResource: [BUCKET, `${BUCKET}/*`] },
    ];
    expect(decide(stmts, { action: "s3:GetObject", resource: `${BUCKET}/a` })).toBe("Allow");
    expect(decide(stmts, { action: "s3:GetObject", resource: "arn:aws:s3:::elsewhere/a" })).toBe("ExplicitDeny");
  });
});

describe("Condition operators", () => {
  const req = (context: AuthorizationRequest["context"]): AuthorizationRequest => ({
    action: "ec2:StartInstances",
    resource: INSTANCE,
    context,
  });
  const when = (Condition: PolicyStatement["Condition"]) => [
    { Effect: "Allow" as const, Action: "ec2:*", Resource: "*", Condition },
  ];

  it("StringEquals is case-sensitive on values, not on key names; values OR", () => {
    const s = when({ StringEquals: { "aws:ResourceTag/Team": ["blue", "green"] } });
    expect(allowed(s, req({ "aws:resourcetag/team": "green" }))).toBe(true);
    expect(allowed(s, req({ "aws:ResourceTag/Team": "Green" }))).toBe(false);
    expect(allowed(s, req({}))).toBe(false);
  });
  it("keys AND within an operator, operators AND within a block", () => {
    const s = when({
      StringEquals: { "aws:ResourceTag/a": "1", "aws:ResourceTag/b": "2" },
      Bool: { "aws:SecureTransport": "true" },
    });
    expect(allowed(s, req({ "aws:ResourceTag/a": "1", "aws:ResourceTag/b": "2", "aws:SecureTransport": true }))).toBe(true);
    expect(allowed(s, req({ "aws:ResourceTag/a": "1", "aws:ResourceTag/b": "2", "aws:SecureTransport": false }))).toBe(false);
    expect(allowed(s, req({ "aws:ResourceTag/a": "1", "aws:SecureTransport": true }))).toBe(false);
  });
  it("StringNotEquals: true when no value matches, and true when the key is absent", () => {
    const s = when({ StringNotEquals: { "aws:ResourceTag/env": ["prod", "staging"] } });
    expect(allowed(s, req({ "aws:ResourceTag/env": "dev" }))).toBe(true);
    expect(allowed(s, req({ "aws:ResourceTag/env": "prod" }))).toBe(false);
    expect(allowed(s, req({}))).toBe(true);
  });
  it("StringEqualsIgnoreCase / StringNotEqualsIgnoreCase", () => {
    expect(
      allowed(when({ StringEqualsIgnoreCase: { "aws:ResourceTag/env": "PROD" } }), req({ "aws:ResourceTag/env": "prod" })),
    ).toBe(true);
    expect(
      allowed(when({ StringNotEqualsIgnoreCase: { "aws:ResourceTag/env": "PROD" } }), req({ "aws:ResourceTag/env": "prod" })),
    ).toBe(false);
  });
  it("StringLike and StringNotLike with * and ?", () => {
    expect(
      allowed(when({ StringLike: { "aws:ResourceTag/kiln:service": "?*" } }), req({ "aws:ResourceTag/kiln:service": "web" })),
    ).toBe(true);
    expect(
      allowed(when({ StringLike: { "aws:ResourceTag/kiln:service": "?*" } }), req({ "aws:ResourceTag/kiln:service": "" })),
    ).toBe(false);
    expect(allowed(when({ StringLike: { "aws:ResourceTag/kiln:service": "?*" } }), req({}))).toBe(false);
    expect(allowed(when({ StringNotLike: { "aws:ResourceTag/name": "tmp-*" } }), req({ "aws:ResourceTag/name": "tmp-1" }))).toBe(
      false,
    );
    expect(allowed(when({ StringNotLike: { "aws:ResourceTag/name": "tmp-*" } }), req({}))).toBe(true);
  });
  it("ArnEquals and ArnLike compare ARNs part by part", () => {
    const s = when({ ArnLike: { "aws:SourceArn": "arn:aws:sns:*:123456789012:kiln-*" } });
    expect(allowed(s, req({ "aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:kiln-pager" }))).toBe(true);
    expect(allowed(s, req({ "aws:SourceArn": "arn:aws:sns:us-east-1:210987654321:kiln-pager" }))).toBe(false);
    expect(allowed(s, req({ "aws:SourceArn": "not-an-arn" }))).toBe(false);
    expect(
      allowed(
        when({ ArnEquals: { "aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:t" } }),
        req({ "aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:t" }),
      ),
    ).toBe(true);
    expect(
      allowed(
        when({ ArnNotLike: { "aws:SourceArn": "arn:aws:sns:*:*:kiln-*" } }),
        req({ "aws:SourceArn": "arn:aws:sns:us-east-1:1:kiln-x" }),
      ),
    ).toBe(false);
  });
  it("Bool compares true/false", () => {
    expect(allowed(when({ Bool: { "aws:SecureTransport": "false" } }), req({ "aws:SecureTransport": false }))).toBe(true);
    expect(allowed(when({ Bool: { "aws:SecureTransport": "false" } }), req({ "aws:SecureTransport": "true" }))).toBe(false);
    expect(allowed(when({ Bool: { "aws:SecureTransport": "false" } }), req({}))).toBe(false);
  });
  it("Null: true requires the key absent, false present", () => {
    expect(
      allowed(when({ Null: { "aws:RequestTag/kiln:service": "false" } }), req({ "aws:RequestTag/kiln:service": "web" })),
    ).toBe(true);
    expect(allowed(when({ Null: { "aws:RequestTag/kiln:service": "false" } }), req({}))).toBe(false);
    expect(allowed(when({ Null: { "aws:RequestTag/kiln:service": "true" } }), req({}))).toBe(true);
  });
  it("Numeric operators", () => {
    expect(allowed(when({ NumericLessThanEquals: { "s3:max-keys": "10" } }), req({ "s3:max-keys": "10" }))).toBe(true);
    expect(allowed(when({ NumericLessThanEquals: { "s3:max-keys": "10" } }), req({ "s3:max-keys": 11 }))).toBe(false);
    expect(allowed(when({ NumericLessThan: { "s3:max-keys": "10" } }), req({ "s3:max-keys": "10" }))).toBe(false);
    expect(allowed(when({ NumericGreaterThan: { "ec2:VolumeSize": "100" } }), req({ "ec2:VolumeSize": 200 }))).toBe(true);
    expect(allowed(when({ NumericGreaterThanEquals: { "ec2:VolumeSize": "100" } }), req({ "ec2:VolumeSize": 100 }))).toBe(true);
    expect(allowed(when({ NumericEquals: { "ec2:VolumeSize": "8" } }), req({ "ec2:VolumeSize": "8.0" }))).toBe(true);
    expect(allowed(when({ NumericNotEquals: { "ec2:VolumeSize": "8" } }), req({ "ec2:VolumeSize": 8 }))).toBe(false);
    // A value that is no number never matches.
    expect(allowed(when({ NumericEquals: { "ec2:VolumeSize": "8" } }), req({ "ec2:VolumeSize": "eight" }))).toBe(false);
  });
  it("Date operators", () => {
    expect(
      allowed(
        when({ DateLessThan: { "aws:CurrentTime": "2027-01-01T00:00:00Z" } }),
        req({ "aws:CurrentTime": "2026-12-04T18:00:00Z" }),
      ),
    ).toBe(true);
    expect(
      allowed(
        when({ DateGreaterThan: { "aws:CurrentTime": "2027-01-01T00:00:00Z" } }),
        req({ "aws:CurrentTime": "2026-12-04T18:00:00Z" }),
      ),
    ).toBe(false);
  });
  it("…IfExists: true when the key is absent, the operator's answer otherwise", () => {
    const s = when({ StringEqualsIfExists: { "ec2:InstanceType": ["t3.micro", "t3.small"] } });
    expect(allowed(s, req({}))).toBe(true);
    expect(allowed(s, req({ "ec2:InstanceType": "t3.small" }))).toBe(true);
    expect(allowed(s, req({ "ec2:InstanceType": "m5.large" }))).toBe(false);
  });
  it("ForAllValues: every request value must be among the policy's; true for an absent key", () => {
    const s = when({ "ForAllValues:StringEquals": { "aws:TagKeys": ["environment", "cost-center"] } });
    expect(allowed(s, req({ "aws:TagKeys": ["environment"] }))).toBe(true);
    expect(allowed(s, req({ "aws:TagKeys": ["environment", "cost-center"] }))).toBe(true);
    expect(allowed(s, req({ "aws:TagKeys": ["environment", "owner"] }))).toBe(false);
    expect(allowed(s, req({}))).toBe(true);
    expect(allowed(s, req({ "aws:TagKeys": [] }))).toBe(true);
    // With a negated operator: no request value may be among the policy's.
    const none = when({ "ForAllValues:StringNotEquals": { "aws:TagKeys": ["owner"] } });
    expect(allowed(none, req({ "aws:TagKeys": ["environment", "team"] }))).toBe(true);
    expect(allowed(none, req({ "aws:TagKeys": ["environment", "owner"] }))).toBe(false);
  });
  it("ForAnyValue: at least one request value among the policy's; false for an absent key", () => {
    const s = when({ "ForAnyValue:StringEquals": { "aws:TagKeys": ["environment", "cost-center"] } });
    expect(allowed(s, req({ "aws:TagKeys": ["owner", "cost-center"] }))).toBe(true);
    expect(allowed(s, req({ "aws:TagKeys": ["owner"] }))).toBe(false);
    expect(allowed(s, req({}))).toBe(false);
    expect(
      allowed(when({ "ForAnyValue:StringLike": { "aws:TagKeys": "kiln:*" } }), req({ "aws:TagKeys": ["Name", "kiln:service"] })),
    ).toBe(true);
    // With a negated operator: at least one request value not among the policy's.
    const other = when({ "ForAnyValue:StringNotEquals": { "aws:TagKeys": ["environment"] } });
    expect(allowed(other, req({ "aws:TagKeys": ["environment", "owner"] }))).toBe(true);
    expect(allowed(other, req({ "aws:TagKeys": ["environment"] }))).toBe(false);
  });
  it("an unknown operator is a policy error, not a silent deny", () => {
    expect(() => allowed(when({ StringEqualz: { "aws:ResourceTag/a": "1" } }), req({ "aws:ResourceTag/a": "1" }))).toThrow(
      /unknown condition operator StringEqualz/,
    );
  });
});
