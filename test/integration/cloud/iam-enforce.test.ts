/**
 * IAM at run time (local/cloud/iam/enforce.ts): a Lambda's calls are authorized against its own
 * role, a denied call fails with the service's access-denied error and changes nothing, calls from
 * outside a Lambda carry no role, and what a backend starts from a call is not the caller's.
 */
import { DescribeInstancesCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { DynamoDBClient, GetItemCommand, CreateTableCommand } from "@aws-sdk/client-dynamodb";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { createCloud } from "../../../local/cloud/index.ts";
import type { Cloud } from "../../../local/cloud/cloud.ts";
import { roleAuthorizer } from "../../../local/cloud/iam/enforce.ts";
import type { LambdaBackend } from "../../../local/cloud/services/lambda/index.ts";

let cloud: Cloud | undefined;
afterEach(async () => {
  await cloud?.stop();
  cloud = undefined;
});

const env = { region: "us-east-1", accountId: "123456789012", stage: "local", service: "kiln", tables: [] };
const table = (n: string) => `arn:aws:dynamodb:us-east-1:123456789012:table/${n}`;

async function setup(settings: Record<string, boolean> = {}) {
  cloud = createCloud({ seed: 1, settings: { "app.realServers": false, ...settings } });
  await cloud.start({ port: false });
  const cfg = { ...cloud.clientConfig(), maxAttempts: 1 };
  const ddb = new DynamoDBClient(cfg);
  for (const TableName of ["locks", "other"])
    await ddb.send(
      new CreateTableCommand({
        TableName,
        KeySchema: [{ AttributeName: "service", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "service", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
  const outcomes: Record<string, string> = {};
  const lambda = cloud.backend<LambdaBackend>("lambda");
  lambda.registerFunction({
    name: "probe",
    timeoutSeconds: 30,
    handler: async () => {
      const ec2 = new EC2Client(cfg);
      const tryCall = async (name: string, p: Promise<unknown>) => {
        try {
          await p;
          outcomes[name] = "ok";
        } catch (err) {
          outcomes[name] = `${(err as Error).name}: ${(err as Error).message}`;
        }
      };
      await tryCall("describe", ec2.send(new DescribeInstancesCommand({})));
      await tryCall(
        "run",
        ec2.send(new RunInstancesCommand({ ImageId: "ami-12345678", MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" })),
      );
      await tryCall("locks", ddb.send(new GetItemCommand({ TableName: "locks", Key: { service: { S: "web" } } })));
      await tryCall("other", ddb.send(new GetItemCommand({ TableName: "other", Key: { service: { S: "web" } } })));
      return outcomes;
    },
  });
  cloud.setAuthorizer(
    roleAuthorizer(
      new Map([
        [
          "probe",
          {
            roleName: "ProbeRole",
            policies: [
              {
                name: "probe",
                document: {
                  Version: "2012-10-17",
                  Statement: [
                    { Effect: "Allow", Action: ["ec2:DescribeInstances"], Resource: "*" },
                    { Effect: "Allow", Action: ["dynamodb:GetItem"], Resource: table("locks") },
                  ],
                },
              },
            ],
          },
        ],
      ]),
      env,
    ),
  );
  return { cfg, outcomes, ec2: new EC2Client(cfg), lambda: new LambdaClient(cfg) };
}

describe("IAM at run time", () => {
  it("a Lambda's calls are allowed or denied by its own role, with each service's access-denied error", async () => {
    const t = await setup();
    await t.lambda.send(new InvokeCommand({ FunctionName: "probe" }));
    expect(t.outcomes.describe).toBe("ok");
    expect(t.outcomes.run).not.toMatch(/does not exist/);
    expect(t.outcomes.locks).toBe("ok");
    expect(t.outcomes.run).toMatch(
      /^UnauthorizedOperation: You are not authorized to perform this operation\. User: arn:aws:sts::123456789012:assumed-role\/ProbeRole\/probe is not authorized to perform: ec2:RunInstances/,
    );
    expect(t.outcomes.other).toMatch(
      /^AccessDeniedException: .*dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table\/other/,
    );
    // The denied RunInstances changed nothing.
    const r = await t.ec2.send(new DescribeInstancesCommand({}));
    expect((r.Reservations ?? []).flatMap((x) => x.Instances ?? [])).toEqual([]);
  });

  it("calls from outside a Lambda carry no role and are not evaluated; iam.enforce=false turns it off", async () => {
    const t = await setup();
    // The call reaches the action (which finds no such image) instead of being refused.
    await expect(
      t.ec2.send(new RunInstancesCommand({ ImageId: "ami-12345678", MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" })),
    ).rejects.toThrow(/image id .* does not exist/);
    await cloud!.stop();
    const off = await setup({ "iam.enforce": false });
    await off.lambda.send(new InvokeCommand({ FunctionName: "probe" }));
    expect(off.outcomes.run).toMatch(/^InvalidAMIID\.NotFound/);
    expect(off.outcomes.other).toBe("ok");
  });
});
