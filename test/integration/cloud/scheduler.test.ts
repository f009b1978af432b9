import {
  ConflictException,
  CreateScheduleCommand,
  CreateScheduleGroupCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  DeleteScheduleGroupCommand,
  GetScheduleCommand,
  ListSchedulesCommand,
  SchedulerClient,
  UpdateScheduleCommand,
} from "@aws-sdk/client-scheduler";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterEach, describe, expect, it } from "vitest";
import { Cloud } from "../../../local/cloud/cloud.ts";
import { registerLambda } from "../../../local/cloud/services/lambda/index.ts";
import { registerScheduler } from "../../../local/cloud/services/scheduler/index.ts";
import { registerSsm } from "../../../local/cloud/services/ssm/index.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ROLE = "arn:aws:iam::123456789012:role/kiln-scheduler";

function setup() {
  const cloud = new Cloud({ seed: 5 });
  const scheduler = registerScheduler(cloud);
  const lambda = registerLambda(cloud);
  registerSsm(cloud);
  const executions: { at: number; stateMachineArn: string; input: string }[] = [];
  cloud.register("states", {
    definition: {
      signingName: "states",
      protocol: "json",
      jsonVersion: "1.0",
      targetPrefix: "AWSStepFunctions",
      errorPrefix: "com.amazonaws.swf.service.v2.model#",
      actions: {
        StartExecution: (input) => {
          executions.push({ at: cloud.clock.now(), stateMachineArn: input.stateMachineArn, input: input.input });
          return {
            executionArn: `arn:aws:states:us-east-1:123456789012:execution:deploy:${executions.length}`,
            startDate: cloud.clock.date(),
          };
        },
      },
    },
  });
  const rotations: { at: number; event: unknown }[] = [];
  const fnArn = lambda.registerFunction({
    name: "rotate",
    handler: async (event) => {
      rotations.push({ at: cloud.clock.now(), event });
      return { action: "skipped" };
    },
  });
  const client = new SchedulerClient(cloud.clientConfig());
  const smArn = "arn:aws:states:us-east-1:123456789012:stateMachine:deploy";
  const create = (Name: string, over: Partial<CreateScheduleCommandInput> = {}) =>
    client.send(
      new CreateScheduleCommand({
        Name,
        ScheduleExpression: "rate(1 day)",
        FlexibleTimeWindow: { Mode: "OFF" },
        Target: { Arn: smArn, RoleArn: ROLE, Input: JSON.stringify({ service: Name, trigger: "rotation" }) },
        ...over,
      }),
    );
  return { cloud, scheduler, client, executions, rotations, fnArn, smArn, create };
}

describe("EventBridge Scheduler API", () => {
  let ctx: ReturnType<typeof setup>;
  afterEach(async () => ctx?.cloud.stop());

  it("creates, reads, replaces, lists and deletes schedules with AWS's errors", async () => {
    ctx = setup();
    const { client, create } = ctx;
    const c = await create("rotate-web", { Description: "rotation", ScheduleExpressionTimezone: "Europe/Paris" });
    expect(c.ScheduleArn).toBe("arn:aws:scheduler:us-east-1:123456789012:schedule/default/rotate-web");
    const dup = await create("rotate-web").catch((e) => e);
    expect(dup).toBeInstanceOf(ConflictException);
    expect(dup.$metadata.httpStatusCode).toBe(409);

    const g = await client.send(new GetScheduleCommand({ Name: "rotate-web" }));
    expect(g).toMatchObject({
      Name: "rotate-web",
      GroupName: "default",
      State: "ENABLED",
      Description: "rotation",
      ScheduleExpression: "rate(1 day)",
      ScheduleExpressionTimezone: "Europe/Paris",
      FlexibleTimeWindow: { Mode: "OFF" },
      Target: { Arn: ctx.smArn, RoleArn: ROLE, RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 } },
      ActionAfterCompletion: "NONE",
    });
    expect(g.CreationDate).toEqual(new Date("2026-01-05T09:00:00.000Z"));

    // UpdateSchedule replaces the whole definition: the description is gone.
    await client.send(
      new UpdateScheduleCommand({
        Name: "rotate-web",
        ScheduleExpression: "cron(0 3 * * ? *)",
        FlexibleTimeWindow: { Mode: "FLEXIBLE", MaximumWindowInMinutes: 30 },
        Target: { Arn: ctx.smArn, RoleArn: ROLE },
      }),
    );
    const u = await client.send(new GetScheduleCommand({ Name: "rotate-web" }));
    expect(u.Description).toBeUndefined();
    expect(u).toMatchObject({
      ScheduleExpression: "cron(0 3 * * ? *)",
      FlexibleTimeWindow: { Mode: "FLEXIBLE", MaximumWindowInMinutes: 30 },
    });

    await client.send(new CreateScheduleGroupCommand({ Name: "kiln" }));
    for (const n of ["a", "b", "c"]) await create(`svc-${n}`, { GroupName: "kiln", State: n === "b" ? "DISABLED" : "ENABLED" });
    const page1 = await client.send(new ListSchedulesCommand({ GroupName: "kiln", MaxResults: 2 }));
    expect(page1.Schedules?.map((s) => s.Name)).toEqual(["svc-a", "svc-b"]);
    const page2 = await client.send(new ListSchedulesCommand({ GroupName: "kiln", MaxResults: 2, NextToken: page1.NextToken }));
    expect(page2.Schedules?.map((s) => s.Name)).toEqual(["svc-c"]);
    expect(page2.NextToken).toBeUndefined();
    const disabled = await client.send(new ListSchedulesCommand({ State: "DISABLED" }));
    expect(disabled.Schedules?.map((s) => [s.GroupName, s.Name, s.Target?.Arn])).toEqual([["kiln", "svc-b", ctx.smArn]]);

    await client.send(new DeleteScheduleCommand({ Name: "rotate-web" }));
    await expect(client.send(new GetScheduleCommand({ Name: "rotate-web" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
      $metadata: { httpStatusCode: 404 },
    });
    await expect(client.send(new DeleteScheduleCommand({ Name: "rotate-web" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
    await expect(client.send(new GetScheduleCommand({ Name: "svc-a", GroupName: "nope" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
    await client.send(new DeleteScheduleGroupCommand({ Name: "kiln" }));
    expect((await client.send(new ListSchedulesCommand({}))).Schedules).toEqual([]);
  });

  it.each<[string, Partial<CreateScheduleCommandInput>]>([
    ["a malformed expression", { ScheduleExpression: "rate(2 day)" }],
    ["cron with both day fields", { ScheduleExpression: "cron(0 3 * * MON *)" }],
    ["an unknown time zone", { ScheduleExpressionTimezone: "Mars/Olympus" }],
    ["FLEXIBLE without a window", { FlexibleTimeWindow: { Mode: "FLEXIBLE" } }],
    ["a target without a role", { Target: { Arn: "arn:aws:lambda:us-east-1:123456789012:function:rotate" } as never }],
    ["an end before the start", { StartDate: new Date("2026-02-01T00:00:00Z"), EndDate: new Date("2026-01-20T00:00:00Z") }],
    ["a start date long past", { StartDate: new Date("2025-12-01T00:00:00Z") }],
  ])("refuses %s with ValidationException", async (_name, over) => {
    ctx = setup();
    await expect(ctx.create("bad", over)).rejects.toMatchObject({
      name: "ValidationException",
      $metadata: { httpStatusCode: 400 },
    });
  });
});

describe("EventBridge Scheduler firing on the cloud clock", () => {
  let ctx: ReturnType<typeof setup>;
  afterEach(async () => ctx?.cloud.stop());

  it("fires rate, cron (in a time zone) and one-off schedules over a simulated week", async () => {
    ctx = setup();
    const { cloud, create, executions, rotations, fnArn } = ctx;
    const start = cloud.clock.now();
    await create("daily", {
      Target: {
        Arn: ctx.smArn,
        RoleArn: ROLE,
        Input: '{"at":"<aws.scheduler.scheduled-time>","attempt":<aws.scheduler.attempt-number>}',
      },
    });
    await create("sunday-paris", {
      ScheduleExpression: "cron(0 3 ? * SUN *)",
      ScheduleExpressionTimezone: "Europe/Paris",
      Target: { Arn: fnArn, RoleArn: ROLE, Input: '{"service":"web"}' },
    });
    await create("once", {
      ScheduleExpression: "at(2026-01-07T12:00:00)",
      ActionAfterCompletion: "DELETE",
      Target: { Arn: fnArn, RoleArn: ROLE, Input: '{"service":"once"}' },
    });
    await create("off", { State: "DISABLED", ScheduleExpression: "rate(1 minute)" });
    await create("bounded", {
      ScheduleExpression: "rate(1 day)",
      StartDate: new Date(start),
      EndDate: new Date(start + 3 * DAY),
      Target: { Arn: fnArn, RoleArn: ROLE, Input: '{"service":"bounded"}' },
    });
    // A little past the week, so deliveries due at its last instant have completed.
    await cloud.clock.sleep(7 * DAY + 60_000);
    const inWeek = <T extends { at: number }>(xs: T[]) => xs.filter((x) => x.at <= start + 7 * DAY);

    const daily = inWeek(executions).map((e) => JSON.parse(e.input));
    expect(daily).toHaveLength(7);
    expect(daily[0]).toEqual({ at: "2026-01-06T09:00:00Z", attempt: 1 });
    expect(daily[6]).toEqual({ at: "2026-01-12T09:00:00Z", attempt: 1 });

    const byService = (s: string) => inWeek(rotations).filter((r) => (r.event as { service: string }).service === s);
    // 03:00 in Paris in January is 02:00 UTC.
    expect(byService("web").map((r) => new Date(r.at).toISOString().slice(0, 16))).toEqual(["2026-01-11T02:00"]);
    expect(byService("once").map((r) => new Date(r.at).toISOString().slice(0, 16))).toEqual(["2026-01-07T12:00"]);
    expect(byService("bounded")).toHaveLength(3);
    expect(ctx.scheduler.invocations().some((i) => i.schedule === "off")).toBe(false);
    // ActionAfterCompletion DELETE removed the one-off schedule once it fired.
    await expect(ctx.client.send(new GetScheduleCommand({ Name: "once" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
  });

  it.each<[boolean, number]>([
    [false, 3],
    [true, 4],
  ])("scheduler.rateFiresAtStart=%s gives %i firings in three hours", async (atStart, count) => {
    ctx = setup();
    ctx.cloud.setSettings({ "scheduler.rateFiresAtStart": atStart });
    const start = ctx.cloud.clock.now();
    await ctx.create("hourly", { ScheduleExpression: "rate(1 hour)" });
    await ctx.cloud.clock.sleep(3 * HOUR + 60_000);
    expect(ctx.executions.filter((e) => e.at <= start + 3 * HOUR)).toHaveLength(count);
  });

  it("fires FLEXIBLE schedules within their window, deterministically for a seed", async () => {
    const runOnce = async () => {
      const c = setup();
      await c.create("flex", {
        ScheduleExpression: "rate(1 hour)",
        FlexibleTimeWindow: { Mode: "FLEXIBLE", MaximumWindowInMinutes: 15 },
      });
      const start = c.cloud.clock.now();
      await c.cloud.clock.sleep(24 * HOUR);
      const offsets = c.executions.filter((e) => e.at <= start + 24 * HOUR - 1).map((e) => (e.at - start) % HOUR);
      await c.cloud.stop();
      return offsets;
    };
    const a = await runOnce();
    expect(a.length).toBeGreaterThanOrEqual(23);
    expect(a.every((o) => o >= 0 && o < 15 * 60_000)).toBe(true);
    expect(new Set(a).size).toBeGreaterThan(1);
    expect(await runOnce()).toEqual(a);
  });

  it("retries a throttled target within the retry policy", async () => {
    ctx = setup();
    const { cloud, create, executions } = ctx;
    cloud.faults.add({ kind: "api", service: "states", action: "StartExecution", code: "ThrottlingException", times: 2 });
    await create("retry", { ScheduleExpression: "rate(1 hour)" });
    await cloud.clock.sleep(HOUR + 60_000);
    expect(executions).toHaveLength(1);
    const attempts = ctx.scheduler.invocations().filter((i) => i.schedule === "retry");
    expect(attempts.map((i) => [i.attempt, i.status])).toEqual([
      [1, "retrying"],
      [2, "retrying"],
      [3, "delivered"],
    ]);
    expect(new Set(attempts.map((i) => i.executionId)).size).toBe(1);
  });

  it("calls universal aws-sdk targets with the Input as API parameters", async () => {
    ctx = setup();
    const { cloud, create } = ctx;
    await create("stamp", {
      ScheduleExpression: "at(2026-01-05T10:00:00)",
      Target: {
        Arn: "arn:aws:scheduler:::aws-sdk:ssm:putParameter",
        RoleArn: ROLE,
        Input: JSON.stringify({ Name: "/kiln/last-rotation", Value: "<aws.scheduler.scheduled-time>", Type: "String" }),
      },
    });
    await cloud.clock.sleep(2 * HOUR);
    const ssm = new SSMClient(cloud.clientConfig());
    const p = await ssm.send(new GetParameterCommand({ Name: "/kiln/last-rotation" }));
    expect(p.Parameter?.Value).toBe("2026-01-05T10:00:00Z");
  });
});
