import { afterEach, describe, expect, it } from "vitest";
import { Cloud } from "../../../local/cloud/cloud.ts";
import { AwsError } from "../../../local/cloud/protocol/errors.ts";
import { createAwsCaller, sfnErrorName } from "../../../local/cloud/sdk-call.ts";
import { registerEc2 } from "../../../local/cloud/services/ec2/index.ts";
import { registerEvents } from "../../../local/cloud/services/events/index.ts";
import { registerSsm } from "../../../local/cloud/services/ssm/index.ts";

/**
 * The real EC2, SSM and EventBridge simulations, plus stand-ins for DynamoDB (until its dynalite
 * proxy lands) and Step Functions that speak the real wire protocols.
 */
function setup() {
  const cloud = new Cloud({ seed: 11, settings: { "app.realServers": false } });
  const ec2 = registerEc2(cloud);
  registerSsm(cloud);
  const events = registerEvents(cloud);
  const items = new Map<string, Record<string, unknown>>();
  cloud.register("dynamodb", {
    definition: {
      signingName: "dynamodb",
      protocol: "json",
      jsonVersion: "1.0",
      targetPrefix: "DynamoDB_20120810",
      errorPrefix: "com.amazonaws.dynamodb.v20120810#",
      actions: {
        PutItem: (input) => {
          const key = `${input.TableName}/${JSON.stringify(input.Item.pk)}`;
          if (input.ConditionExpression === "attribute_not_exists(pk)" && items.has(key)) {
            throw new AwsError("ConditionalCheckFailedException", "The conditional request failed");
          }
          items.set(key, input.Item);
          return {};
        },
        GetItem: (input) => {
          const item = items.get(`${input.TableName}/${JSON.stringify(input.Key.pk)}`);
          return item ? { Item: item } : {};
        },
      },
    },
  });
  const started: unknown[] = [];
  cloud.register("states", {
    definition: {
      signingName: "states",
      protocol: "json",
      jsonVersion: "1.0",
      targetPrefix: "AWSStepFunctions",
      errorPrefix: "com.amazonaws.swf.service.v2.model#",
      actions: {
        StartExecution: (input) => {
          started.push(input);
          if (input.name === "dup") throw new AwsError("ExecutionAlreadyExists", "Execution Already Exists: 'dup'");
          return {
            executionArn: `${String(input.stateMachineArn).replace(":stateMachine:", ":execution:")}:${input.name}`,
            startDate: new Date(Date.UTC(2026, 0, 5, 9)),
          };
        },
      },
    },
  });
  return { cloud, ec2, events, started, call: createAwsCaller(cloud) };
}

describe("aws-sdk integration caller", () => {
  let ctx: ReturnType<typeof setup>;
  afterEach(async () => ctx?.cloud.stop());

  it("calls EC2 through the real client: SDK-shaped parameters in, JSON-safe SDK output out", async () => {
    ctx = setup();
    const out = (await ctx.call("ec2", "describeSubnets", { Filters: [{ Name: "default-for-az", Values: ["true"] }] })) as {
      Subnets: { SubnetId: string; AvailabilityZone: string; DefaultForAz: boolean }[];
    };
    expect(out).not.toHaveProperty("$metadata");
    expect(out.Subnets.length).toBeGreaterThan(0);
    expect(out.Subnets.every((s) => s.DefaultForAz && s.SubnetId.startsWith("subnet-"))).toBe(true);
    // The engine passes PascalCase actions; Step Functions resources write them camelCase.
    const same = (await ctx.call("ec2", "DescribeSubnets", {})) as { Subnets: unknown[] };
    expect(same.Subnets.length).toBeGreaterThanOrEqual(out.Subnets.length);
  });

  it("keeps the AWS error name of a failed call", async () => {
    ctx = setup();
    const err = (await ctx
      .call("ec2", "describeInstances", { InstanceIds: ["i-0123456789abcdef0"] })
      .catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({
      name: "InvalidInstanceID.NotFound",
      service: "ec2",
      action: "describeInstances",
      statusCode: 400,
    });
    expect(err.message).toContain("i-0123456789abcdef0");
  });

  it("calls SSM: dates come back as ISO strings, errors keep their names", async () => {
    ctx = setup();
    await ctx.call("ssm", "putParameter", { Name: "/kiln/web/max-age", Value: "7d", Type: "String" });
    const p = (await ctx.call("ssm", "getParameter", { Name: "/kiln/web/max-age" })) as {
      Parameter: { Value: string; Version: number; LastModifiedDate: string };
    };
    expect(p.Parameter).toMatchObject({ Value: "7d", Version: 1, LastModifiedDate: "2026-01-05T09:00:00.000Z" });
    await expect(ctx.call("ssm", "getParameter", { Name: "/missing" })).rejects.toMatchObject({ name: "ParameterNotFound" });
  });

  it("serves the optimised DynamoDB integration with low-level DynamoDB JSON", async () => {
    ctx = setup();
    const item = { pk: { S: "lock#web" }, owner: { S: "exec-1" }, ttl: { N: "1767600000" } };
    await ctx.call("dynamodb", "putItem", {
      TableName: "kiln-locks",
      Item: item,
      ConditionExpression: "attribute_not_exists(pk)",
    });
    await expect(
      ctx.call("dynamodb", "putItem", { TableName: "kiln-locks", Item: item, ConditionExpression: "attribute_not_exists(pk)" }),
    ).rejects.toMatchObject({
      name: "ConditionalCheckFailedException",
    });
    expect(await ctx.call("dynamodb", "getItem", { TableName: "kiln-locks", Key: { pk: { S: "lock#web" } } })).toEqual({
      Item: item,
    });
  });

  it("routes events:putEvents to the simulated EventBridge", async () => {
    ctx = setup();
    const out = (await ctx.call("events", "putEvents", {
      Entries: [{ Source: "kiln", DetailType: "deploy", Detail: JSON.stringify({ service: "web" }) }],
    })) as {
      FailedEntryCount: number;
      Entries: { EventId: string }[];
    };
    expect(out.FailedEntryCount).toBe(0);
    expect(ctx.events.events().map((e) => e.event.id)).toEqual([out.Entries[0]!.EventId]);
  });

  it("speaks PascalCase to the camelCase Step Functions API, both ways", async () => {
    ctx = setup();
    const arn = "arn:aws:states:us-east-1:123456789012:stateMachine:deploy";
    const out = await ctx.call("states", "startExecution", { StateMachineArn: arn, Name: "web-abc", Input: '{"a":1}' });
    expect(ctx.started).toEqual([{ stateMachineArn: arn, name: "web-abc", input: '{"a":1}' }]);
    expect(out).toEqual({
      ExecutionArn: "arn:aws:states:us-east-1:123456789012:execution:deploy:web-abc",
      StartDate: "2026-01-05T09:00:00.000Z",
    });
    await expect(ctx.call("sfn", "startExecution", { StateMachineArn: arn, Name: "dup" })).rejects.toMatchObject({
      name: "ExecutionAlreadyExists",
    });
  });

  it("makes a single attempt, so throttling reaches the state machine's Retry", async () => {
    ctx = setup();
    ctx.cloud.faults.add({ kind: "api", service: "ssm", action: "GetParameter", code: "ThrottlingException", times: 5 });
    await expect(ctx.call("ssm", "getParameter", { Name: "/x" })).rejects.toMatchObject({
      name: "ThrottlingException",
      statusCode: 400,
    });
    expect(ctx.cloud.faults.list()[0]!.fired).toBe(1);
  });

  it.each<[string, string, string]>([
    ["an unknown service", "s3", "getObject"],
    ["an unknown action", "ec2", "launchRocket"],
  ])("answers States.Runtime for %s", async (_n, service, action) => {
    ctx = setup();
    await expect(ctx.call(service, action, {})).rejects.toMatchObject({ name: "States.Runtime" });
  });

  it.each<[string, string, string]>([
    ["dynamodb", "ConditionalCheckFailedException", "DynamoDb.ConditionalCheckFailedException"],
    ["sfn", "ExecutionAlreadyExists", "Sfn.ExecutionAlreadyExistsException"],
    ["elasticloadbalancing", "TargetGroupNotFoundException", "ElasticLoadBalancingV2.TargetGroupNotFoundException"],
  ])("names %s %s as Step Functions does: %s", (service, name, expected) => {
    expect(sfnErrorName(service, name)).toBe(expected);
  });
});
