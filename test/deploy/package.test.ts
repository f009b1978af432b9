/**
 * "Deployable to AWS": `serverless package` runs offline (dummy credentials, every HTTP(S) request
 * pointed at a closed port) and writes a template that has everything kiln needs and grants each
 * role only what its code calls.
 *
 * The package step bundles every function with esbuild and takes one to two minutes; it runs once
 * for the file and writes `.serverless/` (gitignored).
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import aslValidator from "asl-validator";
import { parse } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { callAuthorizations, iamActionData } from "../../local/cloud/iam/check.ts";
import { CallGraph, SdkCallIndex, tsFiles } from "./sdk-calls.ts";
import {
  asList,
  findCycle,
  isMutating,
  ofType,
  references,
  type Resource,
  roleStatements,
  type Statement,
  type Template,
} from "./template.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const OUT = path.join(ROOT, ".serverless");
// Packaging 40 functions with esbuild takes 1–2 minutes on a busy 2-core machine; CI allows far more.
const PACKAGE_TIMEOUT_MS = 600_000;

/**
 * Actions AWS authorizes on the caller's behalf when it makes a call (not SDK calls of their own):
 * the dependent actions of local/cloud/iam/check.ts, which test/deploy/role-check.test.ts checks
 * are granted (CreateTags for TagSpecifications, PassRole, KMS through EC2 for encrypted builders).
 */
const IMPLIED_ENV = {
  region: "us-east-1",
  accountId: "123456789012",
  stage: "prod",
  service: "kiln",
  tables: [],
  kmsKeyArn: "arn:aws:kms:us-east-1:123456789012:key/k",
};
const implied = (action: string): string[] =>
  callAuthorizations(action, IMPLIED_ENV)
    .filter((r) => r.for)
    .map((r) => r.action);

/** Actions that change or destroy existing resources: only ever on kiln-tagged ones. */
const DESTRUCTIVE = new Set([
  "ec2:TerminateInstances",
  "ec2:StopInstances",
  "ec2:DeregisterImage",
  "ec2:DeleteSnapshot",
  "ec2:CreateLaunchTemplateVersion",
  "autoscaling:DeleteAutoScalingGroup",
  "autoscaling:UpdateAutoScalingGroup",
  "autoscaling:SetDesiredCapacity",
  "autoscaling:PutLifecycleHook",
  "autoscaling:CreateOrUpdateTags",
  "autoscaling:DeleteTags",
  "ec2:DeleteLaunchTemplateVersions",
  "autoscaling:SuspendProcesses",
  "autoscaling:ResumeProcesses",
  "elasticloadbalancing:ModifyListener",
  "elasticloadbalancing:ModifyRule",
  "elasticloadbalancing:RegisterTargets",
  "elasticloadbalancing:DeregisterTargets",
]);

/** The resources a creating call creates (as opposed to the existing ones it reads, like the source image). */
const CREATES: Record<string, RegExp> = {
  "ec2:RunInstances": /:instance\/\*|:volume\/\*|"\*"/,
  "ec2:CreateImage": /image\/\*|snapshot\/\*|"\*"/,
  "autoscaling:CreateAutoScalingGroup": /autoScalingGroup|"\*"/,
};

const camel = (kebab: string) => kebab.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const functionFiles = readdirSync(path.join(ROOT, "functions")).filter((f) => f.endsWith(".ts"));
const functionKeys = functionFiles.map((f) => camel(f.replace(/\.ts$/, "")));
const services = Object.keys(
  (parse(readFileSync(path.join(ROOT, "kiln.config.yaml"), "utf8")) as { services: Record<string, unknown> }).services,
);
const machines = readdirSync(path.join(ROOT, "state-machines")).filter((f) => f.endsWith(".asl.json"));

function runPackage(): Promise<{ code: number; output: string }> {
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: "AKIAOFFLINEPACKAGE00",
    AWS_SECRET_ACCESS_KEY: "offline-package-no-aws-calls",
    AWS_SESSION_TOKEN: "",
    AWS_PROFILE: "",
    AWS_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
    // Anything that tries the network fails fast instead of passing by luck.
    HTTP_PROXY: "http://127.0.0.1:9",
    HTTPS_PROXY: "http://127.0.0.1:9",
    SLS_TELEMETRY_DISABLED: "1",
    SLS_NOTIFICATIONS_MODE: "off",
    SLS_DEPRECATION_DISABLE: "*",
  };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, "node_modules/serverless/bin/serverless.js"), "package", "--stage", "prod", "--region", "us-east-1"],
      { cwd: ROOT, env, timeout: PACKAGE_TIMEOUT_MS - 5_000, maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}\n${stderr}` }),
    );
  });
}

let template: Template;
let packaged: { code: number; output: string };

beforeAll(async () => {
  packaged = await runPackage();
  if (packaged.code !== 0) throw new Error(`serverless package failed (${packaged.code}):\n${packaged.output.slice(-4000)}`);
  template = JSON.parse(readFileSync(path.join(OUT, "cloudformation-template-update-stack.json"), "utf8")) as Template;
}, PACKAGE_TIMEOUT_MS);

const resource = (id: string): Resource => {
  const r = template.Resources[id];
  if (!r) throw new Error(`template has no resource ${id}`);
  return r;
};
const lambdaOf = (key: string) => resource(`${pascal(key)}LambdaFunction`);
const roleIdOf = (fn: Resource): string => {
  const role = fn.Properties?.Role as { "Fn::GetAtt"?: [string, string] } | undefined;
  const id = role?.["Fn::GetAtt"]?.[0];
  if (!id) throw new Error(`function has no role of its own: ${JSON.stringify(fn.Properties?.Role)}`);
  return id;
};
const allowed = (stmts: Statement[]) => stmts.filter((s) => s.Effect === "Allow");
const actionsOf = (stmts: Statement[]) => new Set(allowed(stmts).flatMap((s) => asList(s.Action)));
const trusts = (role: Resource, service: string) =>
  JSON.stringify(role.Properties?.AssumeRolePolicyDocument ?? {}).includes(service);

describe("serverless package (offline)", () => {
  it("packages without AWS credentials or network and writes the template", () => {
    expect(packaged.code).toBe(0);
    expect(packaged.output).toMatch(/Service packaged/);
  });

  it("never resolves the account id at package time", () => {
    const yml = readFileSync(path.join(ROOT, "serverless.yml"), "utf8");
    expect(yml).not.toMatch(/\$\{aws:accountId\}/);
    // Account ids reach the template only as ${AWS::AccountId}, resolved by CloudFormation.
    expect(JSON.stringify(template)).not.toMatch(/\b\d{12}\b/);
  });

  it.each(functionKeys)(
    "bundles %s individually as an arm64 nodejs22.x function with its own memory, timeout, logs and zip",
    (key) => {
      const fn = lambdaOf(key);
      const p = fn.Properties!;
      expect(p.Runtime).toBe("nodejs22.x");
      expect(p.Architectures).toEqual(["arm64"]);
      expect(p.MemorySize).toEqual(expect.any(Number));
      expect(p.Timeout).toEqual(expect.any(Number));
      expect(existsSync(path.join(OUT, `${key}.zip`))).toBe(true);
      const logs = resource(`${pascal(key)}LogGroup`);
      expect(logs.Properties?.RetentionInDays).toEqual(expect.any(Number));
    },
  );

  it("gives every function a role of its own", () => {
    const roles = functionKeys.map((k) => roleIdOf(lambdaOf(k)));
    expect(new Set(roles).size).toBe(roles.length);
    for (const r of roles) expect(resource(r).Type).toBe("AWS::IAM::Role");
    expect(template.Resources.IamRoleLambdaExecution, "no shared provider role").toBeUndefined();
  });

  it.each(machines)("deploys state machine %s with a valid ASL definition", (file) => {
    const raw = readFileSync(path.join(ROOT, "state-machines", file), "utf8");
    // Placeholders become ARNs at deploy time; validate the definition with stand-ins.
    const definition = JSON.parse(
      raw.replace(/"\$\{([A-Za-z0-9]+)\}"/g, (_m, n: string) => `"arn:aws:lambda:us-east-1:000000000000:function:${n}"`),
    );
    const { isValid, errorsText } = aslValidator(definition);
    expect(isValid, errorsText("\n")).toBe(true);
    const sms = ofType(template, "AWS::StepFunctions::StateMachine");
    const name = file.replace(/\.asl\.json$/, "");
    expect(sms.some(([, r]) => JSON.stringify(r.Properties?.StateMachineName ?? "").endsWith(`-${name}"`))).toBe(true);
  });

  it("keeps tables with point-in-time recovery", () => {
    const tables = ofType(template, "AWS::DynamoDB::Table");
    expect(tables.map(([id]) => id)).toEqual(expect.arrayContaining(["LockTable", "DeploymentsTable"]));
    for (const [, t] of tables)
      expect(
        (t.Properties?.PointInTimeRecoverySpecification as { PointInTimeRecoveryEnabled?: boolean }).PointInTimeRecoveryEnabled,
      ).toBe(true);
  });

  it("wires the pager to Step Functions status changes of kiln's state machines", () => {
    const rules = ofType(template, "AWS::Events::Rule").filter(([, r]) =>
      JSON.stringify(r.Properties?.EventPattern ?? {}).includes("aws.states"),
    );
    expect(rules).toHaveLength(1);
    const [, rule] = rules[0]!;
    const pattern = rule.Properties!.EventPattern as { "detail-type": string[]; detail: { status: string[] } };
    expect(pattern["detail-type"]).toEqual(["Step Functions Execution Status Change"]);
    expect(pattern.detail.status).toEqual(expect.arrayContaining(["FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED"]));
    expect(references(rule.Properties!.Targets)).toContain("PagerLambdaFunction");
  });

  it("schedules a rotation per configured service (EventBridge Scheduler) and the janitor", () => {
    const schedules = ofType(template, "AWS::Scheduler::Schedule");
    const rotations = schedules.filter(([, s]) =>
      references((s.Properties?.Target as { Arn: unknown }).Arn).has("RotateLambdaFunction"),
    );
    const inputs = rotations.map(
      ([, s]) => JSON.parse(String((s.Properties?.Target as { Input: string }).Input)) as { service: string },
    );
    expect(inputs.map((i) => i.service).sort()).toEqual([...services].sort());
    for (const [, s] of rotations) {
      // The schedule's role may invoke the rotate function and nothing else.
      const role = resource([...references((s.Properties?.Target as { RoleArn: unknown }).RoleArn)][0]!);
      expect(trusts(role, "scheduler.amazonaws.com")).toBe(true);
    }
    const janitor = [...schedules, ...ofType(template, "AWS::Events::Rule")].filter(([, r]) =>
      references((r.Properties?.Target as { Arn?: unknown })?.Arn ?? r.Properties?.Targets).has("JanitorLambdaFunction"),
    );
    expect(janitor.length).toBeGreaterThan(0);
  });

  it("exposes the webhook through a Function URL (authenticated by its HMAC signature, not IAM)", () => {
    const urls = ofType(template, "AWS::Lambda::Url");
    expect(urls.map(([, u]) => [...references(u.Properties?.TargetFunctionArn)][0])).toContain("WebhookLambdaFunction");
  });

  it("alarms on kiln itself: failed executions, webhook errors, throttles → an SNS topic", () => {
    const alarms = ofType(template, "AWS::CloudWatch::Alarm").map(([, a]) => JSON.stringify(a.Properties));
    for (const metric of ["ExecutionsFailed", "Url5xxCount", "Throttles"])
      expect(
        alarms.some((a) => a.includes(`"${metric}"`)),
        metric,
      ).toBe(true);
    for (const [id, a] of ofType(template, "AWS::CloudWatch::Alarm")) {
      const topics = [...references(a.Properties?.AlarmActions)];
      expect(topics.length, id).toBeGreaterThan(0);
      for (const t of topics) expect(resource(t).Type).toBe("AWS::SNS::Topic");
    }
  });

  it("outputs the webhook URL and console links", () => {
    expect(Object.keys(template.Outputs ?? {})).toEqual(
      expect.arrayContaining(["WebhookUrl", "DeployStateMachineArn", "DeployConsoleUrl"]),
    );
  });

  it("has no circular dependency between resources", () => {
    expect(findCycle(template)).toBeUndefined();
  });
});

describe("IAM least privilege", () => {
  const graph = new CallGraph();
  const everywhere = new SdkCallIndex().union([...tsFiles(path.join(ROOT, "lib")), ...tsFiles(path.join(ROOT, "functions"))]);
  const called = (file: string) => graph.actions(path.join(ROOT, "functions", file));

  it.each(functionFiles)(
    "%s: the role grants exactly what the handler's code calls (plus what AWS checks on its behalf)",
    (file) => {
      const key = camel(file.replace(/\.ts$/, ""));
      const role = resource(roleIdOf(lambdaOf(key)));
      const granted = [...actionsOf(roleStatements(role))].filter((a) => !a.startsWith("logs:"));
      const calls = called(file);
      const impliedByCalls = new Set([...calls].flatMap(implied));
      // A schedule that assumes the function's own role needs to invoke it.
      const scheduled = trusts(role, "scheduler.amazonaws.com") ? ["lambda:InvokeFunction"] : [];
      for (const a of granted)
        expect(
          calls.has(a) || impliedByCalls.has(a) || scheduled.includes(a),
          `${key} grants ${a}, which its code never calls`,
        ).toBe(true);
      for (const a of granted)
        expect(
          everywhere.has(a) || impliedByCalls.has(a) || scheduled.includes(a),
          `${a} is called nowhere in lib/ or functions/`,
        ).toBe(true);
      // And nothing it calls is missing (that would be AccessDenied in production).
      for (const a of calls) expect(granted, `${key} calls ${a} without permission`).toContain(a);
    },
  );

  it("writes logs only to the function's own log group", () => {
    for (const key of functionKeys) {
      const stmts = allowed(roleStatements(resource(roleIdOf(lambdaOf(key))))).filter((s) =>
        asList(s.Action).some((a) => a.startsWith("logs:")),
      );
      for (const s of stmts) expect(JSON.stringify(s.Resource)).toContain(`/aws/lambda/kiln-prod-${key}:`);
    }
  });

  const roles = () => ofType(template, "AWS::IAM::Role");

  it("grants no wildcard action and no unconditioned wildcard resource on anything that changes state", () => {
    for (const [id, role] of roles()) {
      for (const s of allowed(roleStatements(role))) {
        expect(s.NotAction, id).toBeUndefined();
        expect(s.NotResource, id).toBeUndefined();
        for (const a of asList(s.Action)) {
          expect(a, `${id}: ${a}`).not.toContain("*");
          const star = asList(s.Resource).some((r) => r === "*");
          // An action that supports no resource types or condition keys (ssm:CancelCommand) can only be granted on * as is.
          const unscopable =
            (iamActionData(a)?.resourceTypes.length ?? 1) === 0 && (iamActionData(a)?.conditionKeys.length ?? 1) === 0;
          if (isMutating(a) && star && !unscopable) expect(s.Condition, `${id}: ${a} on * needs a condition`).toBeDefined();
        }
      }
    }
  });

  it("acts on existing EC2, Auto Scaling and load balancer resources only when they carry kiln:service", () => {
    for (const [id, role] of roles()) {
      for (const s of allowed(roleStatements(role))) {
        for (const a of asList(s.Action).filter((x) => DESTRUCTIVE.has(x))) {
          expect(JSON.stringify(s.Condition ?? {}), `${id}: ${a}`).toContain("aws:ResourceTag/kiln:service");
        }
        // Tags on existing resources could move them into kiln's reach: only on kiln's own, or at creation.
        if (asList(s.Action).includes("ec2:CreateTags"))
          expect(JSON.stringify(s.Condition ?? {}), `${id}: ec2:CreateTags`).toMatch(
            /aws:ResourceTag\/kiln:service|ec2:CreateAction/,
          );
        // What each creating call creates must be requested with kiln's tags (its inputs need not be).
        for (const [a, created] of Object.entries(CREATES).filter(([x]) => asList(s.Action).includes(x))) {
          const resources = JSON.stringify(s.Resource);
          if (created.test(resources))
            expect(JSON.stringify(s.Condition ?? {}), `${id}: ${a} on ${resources}`).toMatch(
              /aws:(Request|Resource)Tag\/kiln:service|ec2:IsLaunchTemplateResource/,
            );
        }
      }
    }
  });

  it("sends commands only as AWS-RunShellScript and only to kiln-tagged instances", () => {
    for (const [id, role] of roles()) {
      for (const s of allowed(roleStatements(role)).filter((x) => asList(x.Action).includes("ssm:SendCommand"))) {
        const resources = JSON.stringify(s.Resource);
        expect(resources, id).not.toBe('"*"');
        if (resources.includes(":document/")) expect(resources, id).toMatch(/document\/AWS-RunShellScript"/);
        else {
          expect(resources, id).toMatch(/instance\/\*/);
          expect(JSON.stringify(s.Condition ?? {}), id).toContain("ssm:resourceTag/kiln:service");
        }
      }
    }
  });

  it("passes only the builder's role (and, to Auto Scaling, the fleets' roles) and only to EC2 (or a hook's role to Auto Scaling)", () => {
    for (const [id, role] of roles()) {
      for (const s of allowed(roleStatements(role)).filter((x) => asList(x.Action).includes("iam:PassRole"))) {
        const to =
          id === "CreateGreenFleetRole"
            ? /"iam:PassedToService":"(ec2|autoscaling)\.amazonaws\.com"/
            : /"iam:PassedToService":"ec2\.amazonaws\.com"/;
        expect(JSON.stringify(s.Condition), id).toMatch(to);
        const resources = JSON.stringify(s.Resource);
        if (id === "CreateGreenFleetRole") expect(resources, id).toMatch(/role\/kiln-fleet-\*/);
        else expect(resources, id).toMatch(/role\/kiln-builder"/);
      }
    }
  });

  it("lets each state machine invoke only the functions its definition names", () => {
    for (const [id, sm] of ofType(template, "AWS::StepFunctions::StateMachine")) {
      const role = resource([...references(sm.Properties?.RoleArn)][0]!);
      const stmts = allowed(roleStatements(role));
      expect([...actionsOf(stmts)], id).toEqual(["lambda:InvokeFunction"]);
      const named = references(sm.Properties?.DefinitionString);
      for (const target of references(stmts.map((s) => s.Resource)))
        expect(named, `${id} may invoke ${target}`).toContain(target);
    }
  });
});
