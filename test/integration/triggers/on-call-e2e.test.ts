/**
 * Triggers and on-call end to end on the local stack (virtual time): a failed deployment pages once
 * with the redrive command; after the fault is cleared, a redrive succeeds and resolves the page
 * with the same dedup key. A week of scheduled rotations with a base AMI published mid-week rolls
 * exactly once.
 */
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { DescribeExecutionCommand, ListExecutionsCommand, RedriveExecutionCommand, SFNClient } from "@aws-sdk/client-sfn";
import { afterEach, describe, expect, it } from "vitest";
import { sendPush } from "../../../local/cli/commands.ts";
import type { ElbBackend } from "../../../local/cloud/services/elbv2/backend.ts";
import type { LambdaBackend } from "../../../local/cloud/services/lambda/index.ts";
import type { SnsBackend } from "../../../local/cloud/services/sns/index.ts";
import { seedService, until } from "../../../local/seed.ts";
import { Stack } from "../../../local/stack.ts";
import { statesBackend } from "../../../local/states/api.ts";

const DAY = 86_400_000;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

type Post = {
  name: string;
  body: { event_action?: string; dedup_key?: string; payload?: { summary?: string; custom_details?: unknown } };
};
const posts = (s: Stack, name: string) => s.cloud.captured.filter((c) => c.name === name) as Post[];

describe("paging", () => {
  it("a failed deployment pages once with the redrive command; a successful redrive resolves it", async () => {
    stack = await Stack.start({ clock: "virtual", port: 0 });
    await seedService(stack.cloud, { commit: "a".repeat(40), instances: 2 });
    const fault = stack.cloud.faults.add({ kind: "command", match: "sample-app install", mode: "fail", exitCode: 3 });
    const commit = "e".repeat(40);
    const pushed = await sendPush(stack.webhookUrl, stack.webhookSecret, { repository: "example/web", branch: "main", commit });
    expect(pushed.status).toBe(202);
    const arn = pushed.body.executionArn as string;
    const sfn = new SFNClient(stack.cloud.clientConfig());
    await statesBackend(stack.cloud).awaitExecution(arn);
    const failed = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    expect(failed.status).toBe("FAILED");

    const s = stack;
    const trigger = await until(
      s.cloud.clock,
      "page",
      async () => posts(s, "pagerduty").find((p) => p.body.event_action === "trigger"),
      1_000,
      600_000,
    );
    expect(trigger.body.dedup_key).toBe(arn);
    expect(JSON.stringify(trigger.body)).toContain(`kiln redrive ${arn}`);
    expect(JSON.stringify(trigger.body)).toContain(`kiln abort ${arn}`);
    expect(JSON.stringify(trigger.body)).toMatch(/Install/);
    // The page also reached the service's own topic (kiln.config.yaml `pager.topic: kiln-pager`).
    const sns = s.cloud.backend<SnsBackend>("sns");
    const topicArn = `arn:aws:sns:${s.cloud.region}:${s.cloud.accountId}:kiln-pager`;
    await until(
      s.cloud.clock,
      "page on kiln-pager",
      async () => sns.messages(topicArn).some((m) => m.message.includes(arn)) || undefined,
      1_000,
      600_000,
    );

    stack.cloud.faults.remove(fault);
    await sfn.send(new RedriveExecutionCommand({ executionArn: arn }));
    await statesBackend(stack.cloud).awaitExecution(arn);
    expect((await sfn.send(new DescribeExecutionCommand({ executionArn: arn }))).status).toBe("SUCCEEDED");
    const resolve = await until(
      s.cloud.clock,
      "resolve",
      async () => posts(s, "pagerduty").find((p) => p.body.event_action === "resolve"),
      1_000,
      600_000,
    );
    expect(resolve.body.dedup_key).toBe(arn);
    expect(posts(stack, "pagerduty").filter((p) => p.body.event_action === "trigger")).toHaveLength(1);
  }, 180_000);
});

describe("scheduled rotation", () => {
  it("a week of daily schedules with a base AMI published mid-week rolls exactly once; the other days skip with a reason", async () => {
    // The queue's safety net runs every five minutes: keep a week of invocation records (2,016 of them).
    stack = await Stack.start({
      clock: "virtual",
      port: 0,
      settings: { "app.realServers": false, "lambda.invocationLogSize": 5_000 },
    });
    // A week of background users would cost minutes of wall time: users arrive with the rotation's
    // deployment (the canary judge needs their requests) and leave when it ends.
    const seeded = await seedService(stack.cloud, { commit: "a".repeat(40), instances: 2, usersRps: 0 });
    const clock = stack.cloud.clock;
    const t0 = clock.now();
    await clock.sleep(3.5 * DAY);
    const ec2 = stack.cloud.backend<{ publishBaseImage(): unknown } & LambdaBackend>("ec2");
    ec2.publishBaseImage();
    const elb = stack.cloud.backend<ElbBackend>("elasticloadbalancing");
    const sfn = new SFNClient(stack.cloud.clientConfig());
    const deployArn = stack.info().stateMachines.DeployStateMachine;
    const rotationsNow = async () =>
      ((await sfn.send(new ListExecutionsCommand({ stateMachineArn: deployArn }))).executions ?? []).filter((e) =>
        e.name?.includes("-rotation"),
      );
    let stopUsers: (() => void) | undefined;
    while (clock.now() - t0 < 7 * DAY) {
      await clock.sleep(5 * 60_000);
      const seen = await rotationsNow();
      if (!stopUsers && seen.some((e) => e.status === "RUNNING")) stopUsers = elb.startUsers(seeded.loadBalancerArn, 10);
      if (stopUsers && seen.every((e) => e.status !== "RUNNING")) {
        stopUsers();
        break;
      }
    }
    expect(stopUsers, "the base AMI published mid-week started a rotation deployment").toBeDefined();
    await clock.sleep(Math.max(0, 7 * DAY - (clock.now() - t0)) + 60_000);

    const lambda = stack.cloud.backend<LambdaBackend>("lambda");
    const runs = lambda.invocations().filter((i) => i.functionName.endsWith("-rotate"));
    expect(runs.length).toBe(7);
    expect(runs.every((r) => r.outcome === "success")).toBe(true);
    const rotations = await rotationsNow();
    expect(rotations).toHaveLength(1);
    const rd = await sfn.send(new DescribeExecutionCommand({ executionArn: rotations[0]!.executionArn }));
    expect(rotations[0]?.status, `${rd.error}: ${rd.cause}`).toBe("SUCCEEDED");

    const r = await new LambdaClient(stack.cloud.clientConfig()).send(
      new InvokeCommand({
        FunctionName: stack.info().functions.rotate,
        Payload: Buffer.from(JSON.stringify({ service: "web" })),
      }),
    );
    const answer = JSON.parse(Buffer.from(r.Payload!).toString());
    // Rotation answers per environment: production's fleet is fresh and on the newest base AMI.
    const production = answer.environments.find((e: { environment: string }) => e.environment === "production");
    expect(production.action).toBe("skipped");
    expect(production.reason).toMatch(/base AMI unchanged .* oldest instance is \d+ days old/);
  }, 300_000);
});

describe("the rotation schedules run as their role", () => {
  it("a RotateRole that does not allow invoking rotate fails each scheduled delivery with AccessDeniedException, and rotate never runs", async () => {
    stack = await Stack.start({ clock: "virtual", port: false, console: false, settings: { "app.realServers": false } });
    const role = stack.roles.get("kiln-local-rotate")!;
    expect(stack.roles.get(`role:arn:aws:iam::${stack.cloud.accountId}:role/${role.roleName}`)).toBe(role);
    role.policies = role.policies.map((p) => ({
      ...p,
      document: {
        ...p.document,
        Statement: [p.document.Statement].flat().filter((s: { Sid?: string }) => s.Sid !== "SchedulesInvokeRotate"),
      },
    }));
    const deliveries: { scheduleName?: string; status: string; error?: string }[] = [];
    stack.cloud.bus.on("scheduler-invocation", (e: { scheduleName?: string; status: string; error?: string }) =>
      deliveries.push(e),
    );
    await stack.cloud.clock.sleep(DAY + 60 * 60_000);
    const rotate = deliveries.filter((d) => /rotate/.test(JSON.stringify(d)));
    expect(rotate.length).toBeGreaterThan(0);
    expect(rotate.every((d) => d.status === "failed" || d.status === "retrying")).toBe(true);
    expect(rotate[0]?.error).toMatch(/AccessDeniedException: .*assumed-role\/kiln-local-RotateRole.* lambda:InvokeFunction/);
    const lambda = stack.cloud.backend<LambdaBackend>("lambda");
    expect(lambda.invocations().filter((i) => i.functionName.endsWith("-rotate"))).toEqual([]);
  }, 300_000);
});
