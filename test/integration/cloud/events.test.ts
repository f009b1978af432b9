import {
  DeleteRuleCommand,
  DescribeRuleCommand,
  DisableRuleCommand,
  EnableRuleCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutEventsCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  TestEventPatternCommand,
} from "@aws-sdk/client-eventbridge";
import { afterEach, describe, expect, it } from "vitest";
import { VIRTUAL_EPOCH } from "../../../lib/clock.ts";
import { Cloud } from "../../../local/cloud/cloud.ts";
import { AwsError } from "../../../local/cloud/protocol/errors.ts";
import { registerEvents } from "../../../local/cloud/services/events/index.ts";
import { nextFireTime, parseSchedule } from "../../../local/cloud/services/events/schedule.ts";
import { registerLambda } from "../../../local/cloud/services/lambda/index.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A cloud with EventBridge, Lambda (one recording function) and a recording stand-in for Step Functions. */
function setup() {
  const cloud = new Cloud({ seed: 7 });
  const events = registerEvents(cloud);
  const lambda = registerLambda(cloud);
  const received: { at: number; event: unknown }[] = [];
  const fnArn = lambda.registerFunction({
    name: "sink",
    handler: async (event) => {
      received.push({ at: cloud.clock.now(), event });
      return "ok";
    },
  });
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
            executionArn: `${String(input.stateMachineArn).replace(":stateMachine:", ":execution:")}:${executions.length}`,
            startDate: cloud.clock.date(),
          };
        },
      },
    },
  });
  const eb = new EventBridgeClient(cloud.clientConfig());
  const smArn = `arn:aws:states:${cloud.region}:${cloud.accountId}:stateMachine:deploy`;
  return { cloud, events, lambda, fnArn, received, executions, eb, smArn };
}

const baseEvent = {
  version: "0",
  id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "EC2 AMI State Change",
  source: "aws.ec2",
  account: "123456789012",
  time: "2026-01-05T09:00:00Z",
  region: "us-east-1",
  resources: ["arn:aws:ec2:us-east-1::image/ami-0abc"],
  detail: {
    "image-id": "ami-0abc",
    state: "available",
    "error-message": "",
    count: 7,
    ip: "10.0.3.17",
    tags: ["blue", "web"],
    nested: { name: "Web-Server" },
  },
};

describe("EventBridge event patterns (TestEventPattern through the SDK)", () => {
  let ctx: ReturnType<typeof setup>;
  afterEach(async () => ctx?.cloud.stop());

  it.each<[string, unknown, boolean]>([
    ["exact source", { source: ["aws.ec2"] }, true],
    ["exact source, other value", { source: ["aws.ssm"] }, false],
    ["any of several values", { "detail-type": ["Nope", "EC2 AMI State Change"] }, true],
    ["nested exact", { detail: { state: ["available"] } }, true],
    ["nested miss", { detail: { state: ["failed"] } }, false],
    ["field missing from the event", { detail: { absent: ["x"] } }, false],
    ["prefix", { detail: { "image-id": [{ prefix: "ami-" }] } }, true],
    ["prefix miss", { detail: { "image-id": [{ prefix: "snap-" }] } }, false],
    ["prefix ignoring case", { detail: { nested: { name: [{ prefix: { "equals-ignore-case": "web-" } }] } } }, true],
    ["suffix", { detail: { nested: { name: [{ suffix: "Server" }] } } }, true],
    ["suffix miss", { detail: { nested: { name: [{ suffix: "server" }] } } }, false],
    ["equals-ignore-case", { detail: { state: [{ "equals-ignore-case": "AVAILABLE" }] } }, true],
    ["anything-but value", { detail: { state: [{ "anything-but": "failed" }] } }, true],
    ["anything-but list hit", { detail: { state: [{ "anything-but": ["available", "pending"] }] } }, false],
    ["anything-but prefix", { detail: { "image-id": [{ "anything-but": { prefix: "ami-" } }] } }, false],
    ["anything-but on a missing field", { detail: { absent: [{ "anything-but": "x" }] } }, false],
    ["numeric range", { detail: { count: [{ numeric: [">", 5, "<=", 7] }] } }, true],
    ["numeric range miss", { detail: { count: [{ numeric: [">=", 8] }] } }, false],
    ["numeric equality", { detail: { count: [{ numeric: ["=", 7] }] } }, true],
    ["numeric on a string", { detail: { state: [{ numeric: [">", 0] }] } }, false],
    ["exact number", { detail: { count: [7] } }, true],
    ["exists true", { detail: { "image-id": [{ exists: true }] } }, true],
    ["exists false on a present field", { detail: { "image-id": [{ exists: false }] } }, false],
    ["exists false on a missing field", { detail: { absent: [{ exists: false }] } }, true],
    ["empty string value", { detail: { "error-message": [""] } }, true],
    ["array field: any element", { detail: { tags: ["web"] } }, true],
    ["array field: no element", { detail: { tags: ["green"] } }, false],
    ["resources array", { resources: [{ prefix: "arn:aws:ec2" }] }, true],
    ["wildcard", { detail: { nested: { name: [{ wildcard: "Web-*er" }] } } }, true],
    ["cidr", { detail: { ip: [{ cidr: "10.0.0.0/16" }] } }, true],
    ["cidr miss", { detail: { ip: [{ cidr: "10.1.0.0/16" }] } }, false],
    ["$or, one branch matches", { detail: { $or: [{ state: ["failed"] }, { count: [{ numeric: ["<", 10] }] }] } }, true],
    ["$or, no branch matches", { detail: { $or: [{ state: ["failed"] }, { count: [{ numeric: [">", 10] }] }] } }, false],
    ["all fields must match", { source: ["aws.ec2"], detail: { state: ["failed"] } }, false],
  ])("%s", async (_name, pattern, expected) => {
    ctx = setup();
    const r = await ctx.eb.send(
      new TestEventPatternCommand({ EventPattern: JSON.stringify(pattern), Event: JSON.stringify(baseEvent) }),
    );
    expect(r.Result).toBe(expected);
  });

  it.each<[string, string]>([
    ["not JSON", "{source:"],
    ["a leaf that is not an array", JSON.stringify({ source: "aws.ec2" })],
    ["an empty array", JSON.stringify({ source: [] })],
    ["an unknown operator", JSON.stringify({ source: [{ regex: ".*" }] })],
    ["a numeric range upside down", JSON.stringify({ detail: { n: [{ numeric: ["<", 1, ">", 5] }] } })],
    ["exists with a string", JSON.stringify({ detail: { n: [{ exists: "yes" }] } })],
    ["$or with one branch", JSON.stringify({ $or: [{ source: ["a"] }] })],
  ])("rejects a pattern with %s", async (_name, pattern) => {
    ctx = setup();
    await expect(ctx.eb.send(new PutRuleCommand({ Name: "bad", EventPattern: pattern }))).rejects.toMatchObject({
      name: "InvalidEventPatternException",
    });
  });
});

describe("EventBridge rules and targets", () => {
  let ctx: ReturnType<typeof setup>;
  afterEach(async () => ctx?.cloud.stop());

  it("manages rules and targets with AWS's answers", async () => {
    ctx = setup();
    const { eb, fnArn } = ctx;
    const put = await eb.send(
      new PutRuleCommand({ Name: "ami", EventPattern: JSON.stringify({ source: ["aws.ec2"] }), Description: "AMIs" }),
    );
    expect(put.RuleArn).toBe("arn:aws:events:us-east-1:123456789012:rule/ami");
    await eb.send(new PutRuleCommand({ Name: "nightly", ScheduleExpression: "cron(0 3 * * ? *)", State: "DISABLED" }));
    const d = await eb.send(new DescribeRuleCommand({ Name: "ami" }));
    expect(d).toMatchObject({
      Name: "ami",
      State: "ENABLED",
      EventBusName: "default",
      Description: "AMIs",
      EventPattern: '{"source":["aws.ec2"]}',
    });
    const list = await eb.send(new ListRulesCommand({ NamePrefix: "n" }));
    expect(list.Rules?.map((r) => [r.Name, r.State, r.ScheduleExpression])).toEqual([
      ["nightly", "DISABLED", "cron(0 3 * * ? *)"],
    ]);

    await eb.send(
      new PutTargetsCommand({
        Rule: "ami",
        Targets: [
          { Id: "fn", Arn: fnArn },
          { Id: "sm", Arn: ctx.smArn, InputPath: "$.detail" },
        ],
      }),
    );
    const targets = await eb.send(new ListTargetsByRuleCommand({ Rule: "ami" }));
    expect(targets.Targets?.map((t) => t.Id)).toEqual(["fn", "sm"]);
    await expect(eb.send(new DeleteRuleCommand({ Name: "ami" }))).rejects.toMatchObject({
      name: "ValidationException",
      message: "Rule can't be deleted since it has targets.",
    });
    const removed = await eb.send(new RemoveTargetsCommand({ Rule: "ami", Ids: ["fn", "sm", "ghost"] }));
    expect(removed.FailedEntryCount).toBe(1);
    await eb.send(new DeleteRuleCommand({ Name: "ami" }));
    await expect(eb.send(new DescribeRuleCommand({ Name: "ami" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
      message: "Rule ami does not exist on EventBus default.",
    });
    await expect(eb.send(new PutRuleCommand({ Name: "neither" }))).rejects.toMatchObject({ name: "ValidationException" });
    await expect(eb.send(new PutRuleCommand({ Name: "badrate", ScheduleExpression: "rate(1 hours)" }))).rejects.toMatchObject({
      name: "ValidationException",
    });
    await expect(
      eb.send(new PutTargetsCommand({ Rule: "nightly", Targets: [{ Id: "x", Arn: fnArn, Input: "{}", InputPath: "$" }] })),
    ).rejects.toMatchObject({ name: "ValidationException" });
    await expect(
      eb.send(
        new PutTargetsCommand({ Rule: "nightly", Targets: ["a", "b", "c", "d", "e", "f"].map((Id) => ({ Id, Arn: fnArn })) }),
      ),
    ).rejects.toMatchObject({ name: "LimitExceededException" });
  });

  it("delivers PutEvents entries to matching targets and reports malformed entries", async () => {
    ctx = setup();
    const { eb, fnArn, received, cloud } = ctx;
    await eb.send(
      new PutRuleCommand({
        Name: "pushes",
        EventPattern: JSON.stringify({ source: ["kiln.webhook"], detail: { branch: ["main"] } }),
      }),
    );
    await eb.send(new PutTargetsCommand({ Rule: "pushes", Targets: [{ Id: "fn", Arn: fnArn }] }));
    const r = await eb.send(
      new PutEventsCommand({
        Entries: [
          {
            Source: "kiln.webhook",
            DetailType: "push",
            Detail: JSON.stringify({ branch: "main", commit: "abc" }),
            Resources: ["repo"],
          },
          { Source: "kiln.webhook", DetailType: "push", Detail: JSON.stringify({ branch: "feature" }) },
          { Source: "kiln.webhook", DetailType: "push", Detail: "{not json" },
          { Source: "aws.ec2", DetailType: "spoof", Detail: "{}" },
          { DetailType: "push", Detail: "{}" },
        ],
      }),
    );
    expect(r.FailedEntryCount).toBe(3);
    expect(r.Entries?.map((e) => e.ErrorCode ?? "ok")).toEqual([
      "ok",
      "ok",
      "MalformedDetail",
      "NotAuthorizedForSourceException",
      "InvalidArgument",
    ]);
    expect(r.Entries?.[0]?.EventId).toMatch(/^[0-9a-f-]{36}$/);
    await cloud.clock.sleep(1_000);
    expect(received).toHaveLength(1);
    expect(received[0]!.event).toMatchObject({
      version: "0",
      id: r.Entries?.[0]?.EventId,
      "detail-type": "push",
      source: "kiln.webhook",
      account: "123456789012",
      region: "us-east-1",
      time: "2026-01-05T09:00:00Z",
      resources: ["repo"],
      detail: { branch: "main", commit: "abc" },
    });
  });

  it("turns events the cloud emits into AWS events for Step Functions targets, shaping the input", async () => {
    ctx = setup();
    const { eb, cloud, executions, smArn, events } = ctx;
    await eb.send(
      new PutRuleCommand({
        Name: "failed-deploys",
        EventPattern: JSON.stringify({ source: ["aws.states"], detail: { status: ["FAILED", "TIMED_OUT", "ABORTED"] } }),
      }),
    );
    await eb.send(
      new PutTargetsCommand({
        Rule: "failed-deploys",
        Targets: [
          { Id: "whole", Arn: smArn },
          { Id: "path", Arn: smArn, InputPath: "$.detail.executionArn" },
          {
            Id: "tpl",
            Arn: smArn,
            InputTransformer: {
              InputPathsMap: { arn: "$.detail.executionArn", status: "$.detail.status" },
              InputTemplate: '{"execution": <arn>, "text": "<arn> is <status>", "rule": "<aws.events.rule-name>"}',
            },
          },
          { Id: "const", Arn: smArn, Input: '{"fixed":true}' },
        ],
      }),
    );
    const executionArn = "arn:aws:states:us-east-1:123456789012:execution:deploy:web-abc";
    cloud.emit({
      source: "aws.states",
      detailType: "Step Functions Execution Status Change",
      detail: { executionArn, status: "SUCCEEDED" },
      resources: [executionArn],
    });
    cloud.emit({
      source: "aws.states",
      detailType: "Step Functions Execution Status Change",
      detail: { executionArn, status: "FAILED" },
      resources: [executionArn],
    });
    await cloud.clock.sleep(1_000);
    expect(executions).toHaveLength(4);
    const byInput = executions.map((e) => JSON.parse(e.input));
    expect(byInput[0]).toMatchObject({
      source: "aws.states",
      "detail-type": "Step Functions Execution Status Change",
      detail: { status: "FAILED" },
      resources: [executionArn],
    });
    expect(byInput[1]).toBe(executionArn);
    expect(byInput[2]).toEqual({ execution: executionArn, text: `${executionArn} is FAILED`, rule: "failed-deploys" });
    expect(byInput[3]).toEqual({ fixed: true });
    const log = events.events();
    expect(log.map((e) => e.matchedRules)).toEqual([[], ["failed-deploys"]]);
    expect(events.deliveries().every((d) => d.status === "delivered")).toBe(true);
  });

  it("retries throttled deliveries with backoff and gives up on client errors", async () => {
    ctx = setup();
    const { eb, cloud, executions, smArn, events } = ctx;
    cloud.faults.add({ kind: "api", service: "states", action: "StartExecution", code: "ThrottlingException", times: 2 });
    await eb.send(new PutRuleCommand({ Name: "r", EventPattern: JSON.stringify({ source: ["app"] }) }));
    await eb.send(
      new PutTargetsCommand({
        Rule: "r",
        Targets: [
          { Id: "sm", Arn: smArn },
          { Id: "gone", Arn: `arn:aws:lambda:us-east-1:123456789012:function:missing` },
        ],
      }),
    );
    await eb.send(new PutEventsCommand({ Entries: [{ Source: "app", DetailType: "x", Detail: "{}" }] }));
    await cloud.clock.sleep(60_000);
    expect(executions).toHaveLength(1);
    const sm = events.deliveries().filter((d) => d.targetId === "sm");
    expect(sm.map((d) => [d.attempt, d.status])).toEqual([
      [1, "retrying"],
      [2, "retrying"],
      [3, "delivered"],
    ]);
    expect(executions[0]!.at - VIRTUAL_EPOCH).toBeGreaterThanOrEqual(2_000);
    const gone = events.deliveries().filter((d) => d.targetId === "gone");
    expect(gone).toMatchObject([{ attempt: 1, status: "failed", error: expect.stringContaining("ResourceNotFoundException") }]);
  });

  it("fires rate and cron rules over a simulated week, in UTC, and not while disabled", async () => {
    ctx = setup();
    const { eb, cloud, received, fnArn } = ctx;
    await eb.send(new PutRuleCommand({ Name: "hourly", ScheduleExpression: "rate(1 hour)" }));
    await eb.send(new PutRuleCommand({ Name: "weekdays", ScheduleExpression: "cron(0 9 ? * MON-FRI *)" }));
    await eb.send(new PutRuleCommand({ Name: "paused", ScheduleExpression: "rate(5 minutes)", State: "DISABLED" }));
    for (const rule of ["hourly", "weekdays", "paused"]) {
      await eb.send(
        new PutTargetsCommand({
          Rule: rule,
          Targets: [
            {
              Id: "fn",
              Arn: fnArn,
              InputTransformer: {
                InputTemplate: '{"rule": "<aws.events.rule-name>", "time": <time>}',
                InputPathsMap: { time: "$.time" },
              },
            },
          ],
        }),
      );
    }
    const start = cloud.clock.now();
    await cloud.clock.sleep(7 * DAY + 1_000);
    const within = received.filter((r) => r.at <= start + 7 * DAY + 1_000).map((r) => r.event as { rule: string; time: string });
    const hourly = within.filter((e) => e.rule === "hourly");
    expect(hourly).toHaveLength(168);
    expect(hourly[0]!.time).toBe("2026-01-05T10:00:00Z");
    const weekdays = within.filter((e) => e.rule === "weekdays").map((e) => e.time);
    // Created Monday 09:00 exactly: the next 09:00 on a weekday is Tuesday's.
    expect(weekdays).toEqual([
      "2026-01-06T09:00:00Z",
      "2026-01-07T09:00:00Z",
      "2026-01-08T09:00:00Z",
      "2026-01-09T09:00:00Z",
      "2026-01-12T09:00:00Z",
    ]);
    expect(within.some((e) => e.rule === "paused")).toBe(false);

    await eb.send(new EnableRuleCommand({ Name: "paused" }));
    await eb.send(new DisableRuleCommand({ Name: "hourly" }));
    const t1 = cloud.clock.now();
    await cloud.clock.sleep(HOUR);
    const later = received.filter((r) => r.at > t1 && r.at <= t1 + HOUR).map((r) => (r.event as { rule: string }).rule);
    expect(later.filter((r) => r === "paused").length).toBeGreaterThanOrEqual(11);
    expect(later).not.toContain("hourly");
  });
});

describe("rate rule anchoring", () => {
  it.each<[boolean, string[]]>([
    [false, ["10:00", "11:00", "12:00"]],
    [true, ["09:00", "10:00", "11:00", "12:00"]],
  ])("events.rateFiresAtCreation=%s", async (immediate, expected) => {
    const cloud = new Cloud({ settings: { "events.rateFiresAtCreation": immediate } });
    const events = registerEvents(cloud);
    await cloud.router.invoke("events", "PutRule", { Name: "r", ScheduleExpression: "rate(1 hour)" });
    await cloud.router.invoke("events", "PutTargets", {
      Rule: "r",
      Targets: [{ Id: "q", Arn: "arn:aws:sqs:us-east-1:123456789012:captured" }],
    });
    await cloud.clock.sleep(3 * HOUR + 1_000);
    const times = events
      .events()
      .map((e) => e.event.time.slice(11, 16))
      .slice(0, expected.length + 1);
    expect(times).toEqual(expected);
    expect(events.deliveries()[0]?.status).toBe("captured");
    await cloud.stop();
  });
});

describe("schedule expressions", () => {
  const at = (iso: string) => Date.parse(iso);
  it.each<[string, string, string, string | undefined]>([
    ["cron(0 9 ? * MON-FRI *)", "2026-01-09T09:00:00Z", "UTC", "2026-01-12T09:00:00.000Z"],
    ["cron(15 10 ? * 6L 2026)", "2026-01-01T00:00:00Z", "UTC", "2026-01-30T10:15:00.000Z"],
    ["cron(0 12 L * ? *)", "2026-02-01T00:00:00Z", "UTC", "2026-02-28T12:00:00.000Z"],
    ["cron(0 8 15W * ? *)", "2026-03-01T00:00:00Z", "UTC", "2026-03-16T08:00:00.000Z"],
    ["cron(0 0 ? * 2#1 *)", "2026-01-06T00:00:00Z", "UTC", "2026-02-02T00:00:00.000Z"],
    ["cron(*/20 * * * ? *)", "2026-01-05T09:05:00Z", "UTC", "2026-01-05T09:20:00.000Z"],
    ["cron(0 9 * * ? *)", "2026-03-07T00:00:00Z", "America/New_York", "2026-03-07T14:00:00.000Z"],
    ["cron(0 9 * * ? *)", "2026-03-08T00:00:00Z", "America/New_York", "2026-03-08T13:00:00.000Z"],
    ["at(2026-02-01T12:30:00)", "2026-01-05T09:00:00Z", "Europe/Paris", "2026-02-01T11:30:00.000Z"],
    ["at(2026-02-01T12:30:00)", "2026-03-01T00:00:00Z", "UTC", undefined],
    ["cron(0 0 1 1 ? 2025)", "2026-01-01T00:00:00Z", "UTC", undefined],
  ])("%s after %s in %s → %s", (expr, after, tz, expected) => {
    const next = nextFireTime(parseSchedule(expr, { allowAt: true }), at(after), { timezone: tz });
    expect(next === undefined ? undefined : new Date(next).toISOString()).toBe(expected);
  });

  it("counts rates from their anchor", () => {
    const s = parseSchedule("rate(5 minutes)");
    const anchor = at("2026-01-05T09:02:30Z");
    expect(new Date(nextFireTime(s, anchor, { anchorMs: anchor })!).toISOString()).toBe("2026-01-05T09:07:30.000Z");
    expect(new Date(nextFireTime(s, at("2026-01-05T09:07:30Z"), { anchorMs: anchor })!).toISOString()).toBe(
      "2026-01-05T09:12:30.000Z",
    );
  });

  it.each([
    "rate(0 minutes)",
    "rate(2 hour)",
    "cron(0 9 * * * *)",
    "cron(0 9 ? * ? *)",
    "cron(0 25 * * ? *)",
    "cron(0 9 * *)",
    "at(2026-02-30T00:00:00)",
    "every day",
  ])("rejects %s", (expr) => {
    expect(() => parseSchedule(expr, { allowAt: true })).toThrow();
  });

  it("EventBridge rules refuse at()", async () => {
    const cloud = new Cloud();
    registerEvents(cloud);
    await expect(
      cloud.router.invoke("events", "PutRule", { Name: "once", ScheduleExpression: "at(2026-02-01T00:00:00)" }),
    ).rejects.toBeInstanceOf(AwsError);
    await cloud.stop();
  });
});
