/**
 * Triggers and on-call against the simulated cloud, with the real handlers: a signed GitHub push
 * goes through functions/webhook.ts, the deploy state machine (local engine) takes the lock with
 * functions/acquire-lock.ts and releases it with functions/release-lock.ts (which starts the queued
 * commit), a failed execution reaches functions/pager.ts through EventBridge, and the next push
 * supersedes it through the abort machine. Virtual time: ten-minute waits take milliseconds.
 */
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from "@aws-sdk/client-eventbridge";
import { CreateStateMachineCommand, SFNClient } from "@aws-sdk/client-sfn";
import { CreateTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { sign } from "@octokit/webhooks-methods";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { KilnError } from "../../../lib/errors.ts";
import { readLock } from "../../../lib/lock/index.ts";
import { configureRuntime } from "../../../lib/runtime.ts";
import { Cloud } from "../../../local/cloud/cloud.ts";
import { createAwsCaller, createLambdaInvoker } from "../../../local/cloud/sdk-call.ts";
import { registerDynamoDb } from "../../../local/cloud/services/dynamodb/index.ts";
import { registerEvents } from "../../../local/cloud/services/events/index.ts";
import { registerLambda } from "../../../local/cloud/services/lambda/index.ts";
import { registerSns } from "../../../local/cloud/services/sns/index.ts";
import { registerSsm } from "../../../local/cloud/services/ssm/index.ts";
import { registerStepFunctions, statesBackend } from "../../../local/states/index.ts";

const SECRET = "integration-secret";
const TABLE = "kiln-test-lock";
const PD_URL = "http://pagerduty.invalid/v2/enqueue";
const commit = (c: string) => c.repeat(40).slice(0, 40);
const lambdaTask = (fn: string, payload: Record<string, string>, next?: string) => ({
  Type: "Task",
  Resource: "arn:aws:states:::lambda:invoke",
  Parameters: { FunctionName: fn, Payload: payload },
  ResultSelector: { "out.$": "$.Payload" },
  ResultPath: null,
  ...(next ? { Next: next } : { End: true }),
});

describe("triggers and on-call on the simulated cloud", () => {
  const cloud = new Cloud({ seed: 8 });
  const bad = new Set<string>();
  const pages: { url: string; body: Record<string, unknown> }[] = [];
  let webhook: (e: APIGatewayProxyEventV2, c: Context) => Promise<{ statusCode?: number; body?: string }>;
  let sns: ReturnType<typeof registerSns>;
  const env = { ...process.env };

  beforeAll(async () => {
    const lambda = registerLambda(cloud);
    registerEvents(cloud);
    registerSsm(cloud);
    sns = registerSns(cloud);
    registerDynamoDb(cloud);
    registerStepFunctions(cloud, {
      clock: cloud.clock,
      random: () => cloud.random(),
      region: cloud.region,
      accountId: cloud.accountId,
      invokeLambda: createLambdaInvoker(cloud),
      callAws: createAwsCaller(cloud),
    });
    await cloud.start({ port: false });
    configureRuntime({ clock: cloud.clock, aws: { ...cloud.clientConfig(), maxAttempts: 1 } });
    vi.stubGlobal("fetch", async (url: string, init: { body: string }) => {
      pages.push({ url, body: JSON.parse(init.body) });
      return new Response('{"status":"success"}', { status: 202 });
    });

    const cfg = cloud.clientConfig();
    await new DynamoDBClient(cfg).send(
      new CreateTableCommand({
        TableName: TABLE,
        AttributeDefinitions: [{ AttributeName: "service", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "service", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    // kiln.config.yaml routes web's pages to the topic kiln-pager as well.
    await new SNSClient(cfg).send(new CreateTopicCommand({ Name: "kiln-pager" }));
    const ssm = new SSMClient(cfg);
    await ssm.send(new PutParameterCommand({ Name: "/kiln/test/github-webhook-secret", Value: SECRET, Type: "SecureString" }));
    await ssm.send(
      new PutParameterCommand({ Name: "/kiln/test/pagerduty-routing-key", Value: "R0UTINGKEY", Type: "SecureString" }),
    );

    const [acquire, release, pager, wh] = await Promise.all([
      import("../../../functions/acquire-lock.ts"),
      import("../../../functions/release-lock.ts"),
      import("../../../functions/pager.ts"),
      import("../../../functions/webhook.ts"),
    ]);
    webhook = wh.handler as unknown as typeof webhook;
    const sfn = new SFNClient(cfg);
    const base = {
      KILN_LOCK_TABLE: TABLE,
      KILN_DEPLOY_STATE_MACHINE_ARN: `arn:aws:states:${cloud.region}:${cloud.accountId}:stateMachine:kiln-test-deploy`,
      KILN_ABORT_STATE_MACHINE_ARN: `arn:aws:states:${cloud.region}:${cloud.accountId}:stateMachine:kiln-test-abort`,
    };
    const fn = (name: string, handler: (e: unknown, c: Context) => unknown, extra: Record<string, string> = {}) =>
      lambda.registerFunction({ name, handler, timeoutSeconds: 60, environment: { ...base, ...extra } });
    const acquireArn = fn("acquire-lock", acquire.handler as never);
    const releaseArn = fn("release-lock", release.handler as never);
    const workArn = fn("work", async (e) => {
      const c = (e as { commit: string }).commit;
      if (bad.has(c)) throw new KilnError("kiln.StepFailed", `install script failed for ${c}`);
      return { ok: true };
    });
    const pagerArn = fn("pager", pager.handler as never, {
      KILN_PAGERDUTY_URL: PD_URL,
      KILN_PAGERDUTY_ROUTING_KEY_PARAM: "/kiln/test/pagerduty-routing-key",
    });
    Object.assign(process.env, base, { KILN_WEBHOOK_SECRET_PARAM: "/kiln/test/github-webhook-secret" });

    const deploy = {
      StartAt: "AcquireLock",
      States: {
        AcquireLock: lambdaTask(
          acquireArn,
          {
            "service.$": "$.service",
            "environment.$": "$.environment",
            "seq.$": "$.seq",
            "executionArn.$": "$$.Execution.Id",
            "commit.$": "$.commit",
            "trigger.$": "$.trigger",
          },
          "Bake",
        ),
        Bake: { Type: "Wait", Seconds: 600, Next: "Install" },
        Install: lambdaTask(workArn, { "commit.$": "$.commit" }, "ReleaseLock"),
        ReleaseLock: lambdaTask(releaseArn, {
          "service.$": "$.service",
          "environment.$": "$.environment",
          "executionArn.$": "$$.Execution.Id",
        }),
      },
    };
    const abort = {
      StartAt: "AcquireLock",
      States: {
        AcquireLock: lambdaTask(
          acquireArn,
          {
            "service.$": "$.service",
            "environment.$": "$.environment",
            "executionArn.$": "$$.Execution.Id",
            "abortedExecutionArn.$": "$.executionArn",
          },
          "RestoreBlue",
        ),
        RestoreBlue: { Type: "Wait", Seconds: 120, Next: "ReleaseLock" },
        ReleaseLock: lambdaTask(releaseArn, {
          "service.$": "$.service",
          "environment.$": "$.environment",
          "executionArn.$": "$$.Execution.Id",
          "abortedExecutionArn.$": "$.executionArn",
        }),
      },
    };
    const role = "arn:aws:iam::123456789012:role/sfn";
    await sfn.send(
      new CreateStateMachineCommand({ name: "kiln-test-deploy", roleArn: role, definition: JSON.stringify(deploy) }),
    );
    await sfn.send(new CreateStateMachineCommand({ name: "kiln-test-abort", roleArn: role, definition: JSON.stringify(abort) }));
    const eb = new EventBridgeClient(cfg);
    await eb.send(
      new PutRuleCommand({
        Name: "kiln-pager",
        EventPattern: JSON.stringify({
          source: ["aws.states"],
          "detail-type": ["Step Functions Execution Status Change"],
          detail: { status: ["FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED"] },
        }),
      }),
    );
    await eb.send(new PutTargetsCommand({ Rule: "kiln-pager", Targets: [{ Id: "pager", Arn: pagerArn }] }));
  });

  afterAll(async () => {
    vi.unstubAllGlobals();
    process.env = env;
    await cloud.stop();
  });

  async function push(after: string, pushedAt: number, deliveryId = `d-${after.slice(0, 6)}-${pushedAt}`) {
    const body = JSON.stringify({
      ref: "refs/heads/main",
      before: `${"0".repeat(39)}1`,
      after,
      deleted: false,
      repository: { full_name: "example/web", pushed_at: pushedAt },
      pusher: { name: "octocat" },
    });
    const res = await webhook(
      {
        version: "2.0",
        rawPath: "/",
        headers: {
          "content-type": "application/json",
          "x-github-event": "push",
          "x-github-delivery": deliveryId,
          "x-hub-signature-256": await sign(SECRET, body),
        },
        requestContext: { http: { method: "POST" } },
        body,
        isBase64Encoded: false,
      } as unknown as APIGatewayProxyEventV2,
      {} as Context,
    );
    return { status: res.statusCode, json: JSON.parse(res.body ?? "{}") as Record<string, unknown> };
  }
  const lockDeps = () => ({
    ddb: DynamoDBDocumentClient.from(new DynamoDBClient(cloud.clientConfig())),
    table: TABLE,
    clock: cloud.clock,
  });

  it("queues pushes while a deployment runs, then deploys the newest; a failure pages and the next push supersedes it", async () => {
    const states = statesBackend(cloud);
    const a = await push(commit("a"), 1000);
    expect(a).toMatchObject({ status: 202, json: { service: "web", environment: "production", commit: commit("a") } });
    const runningArn = a.json.executionArn as string;
    expect(runningArn).toMatch(/:execution:kiln-test-deploy:web-production-aaaaaaaaaaaa-push-\d+$/);
    await expect(push(commit("b"), 2000)).resolves.toMatchObject({ status: 202, json: { queued: true, position: 1 } });
    const c = await push(commit("c"), 3000);
    expect(c).toMatchObject({ json: { queued: true, replaced: commit("b") } });
    const arnOf = (answer: { json: Record<string, unknown> }) =>
      runningArn.replace(/:[^:]+$/, `:${String(answer.json.executionName)}`);
    // GitHub redelivers the first push: the same execution, nothing new.
    await expect(push(commit("a"), 1000, "redelivered")).resolves.toMatchObject({
      json: { executionArn: runningArn, duplicate: true },
    });

    expect((await states.awaitExecution(runningArn)).status).toBe("SUCCEEDED");
    const cArn = arnOf(c);
    expect((await states.awaitExecution(cArn)).status).toBe("SUCCEEDED");
    expect(states.listAll().filter((e) => e.executionArn.includes("bbbbbbbbbbbb"))).toHaveLength(0);
    expect((await readLock({ service: "web", environment: "production" }, lockDeps()))?.holder).toBeUndefined();

    // A bad commit fails at Install: EventBridge → pager → PagerDuty with the redrive command.
    bad.add(commit("d"));
    const d = await push(commit("d"), 4000);
    const dArn = d.json.executionArn as string;
    expect((await states.awaitExecution(dArn)).status).toBe("FAILED");
    await cloud.clock.sleep(5_000);
    const trigger = pages.find((p) => p.body.event_action === "trigger");
    expect(trigger).toMatchObject({
      url: PD_URL,
      body: {
        dedup_key: dArn,
        payload: {
          component: "web",
          group: "production",
          custom_details: { failed_step: "Install", error: "kiln.StepFailed", redrive: `kiln redrive ${dArn}` },
        },
      },
    });
    expect(sns.messages().find((m) => m.message.includes(`kiln abort ${dArn}`))).toBeDefined();
    expect(await readLock({ service: "web", environment: "production" }, lockDeps())).toMatchObject({
      holder: dArn,
      lastFailed: { executionArn: dArn, unresolved: true },
    });

    // The next push supersedes the failed deployment: abort first, then the new commit.
    const e = await push(commit("e"), 5000);
    expect(e.json).toMatchObject({ queued: true, superseding: { failedExecutionArn: dArn } });
    const abortArn = (e.json.superseding as { abortExecutionArn: string }).abortExecutionArn;
    expect((await states.awaitExecution(abortArn)).status).toBe("SUCCEEDED");
    const eArn = arnOf(e);
    expect((await states.awaitExecution(eArn)).status).toBe("SUCCEEDED");
    await cloud.clock.sleep(5_000);
    // The successful deployment resolves the page of the one it superseded.
    expect(pages.filter((p) => p.body.event_action === "resolve").map((p) => p.body.dedup_key)).toEqual([dArn]);
    expect(pages.filter((p) => p.body.event_action === "trigger")).toHaveLength(1);
    const lock = await readLock({ service: "web", environment: "production" }, lockDeps());
    expect(lock?.holder).toBeUndefined();
    expect(lock?.lastFailed).toMatchObject({ executionArn: dArn, unresolved: false });
  });
});
