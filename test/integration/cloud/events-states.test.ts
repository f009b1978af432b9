import { PutEventsCommand, EventBridgeClient, PutRuleCommand, PutTargetsCommand } from "@aws-sdk/client-eventbridge";
import { CreateStateMachineCommand, DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from "@aws-sdk/client-sfn";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterEach, describe, expect, it } from "vitest";
import { KilnError } from "../../../lib/errors.ts";
import { Cloud } from "../../../local/cloud/cloud.ts";
import { createAwsCaller, createLambdaInvoker } from "../../../local/cloud/sdk-call.ts";
import { registerEvents } from "../../../local/cloud/services/events/index.ts";
import { registerLambda } from "../../../local/cloud/services/lambda/index.ts";
import { registerSsm } from "../../../local/cloud/services/ssm/index.ts";
import { registerStepFunctions } from "../../../local/states/api.ts";

/**
 * The glue end to end with the real local Step Functions engine: an EventBridge rule starts an
 * execution, whose tasks call a simulated Lambda (createLambdaInvoker) and SSM through the aws-sdk
 * integration (createAwsCaller); the engine's status-change event comes back through EventBridge to
 * a "pager" function.
 */
function setup() {
  const cloud = new Cloud({ seed: 2 });
  const lambda = registerLambda(cloud);
  registerEvents(cloud);
  registerSsm(cloud);
  registerStepFunctions(cloud, {
    clock: cloud.clock,
    random: () => cloud.random(),
    region: cloud.region,
    accountId: cloud.accountId,
    invokeLambda: createLambdaInvoker(cloud),
    callAws: createAwsCaller(cloud),
  });
  let failures = 0;
  const stepArn = lambda.registerFunction({
    name: "step",
    handler: async (event: { commit: string }) => {
      if (failures > 0) {
        failures--;
        throw new KilnError("kiln.StepFailed", `install script failed for ${event.commit}`);
      }
      return { imageId: `ami-${event.commit}` };
    },
  });
  const pages: { status: string; executionArn: string }[] = [];
  const pagerArn = lambda.registerFunction({
    name: "pager",
    handler: async (event: { detail: { status: string; executionArn: string } }) => {
      pages.push({ status: event.detail.status, executionArn: event.detail.executionArn });
    },
  });
  const definition = {
    StartAt: "Bake",
    States: {
      Bake: {
        Type: "Task",
        Resource: "arn:aws:states:::lambda:invoke",
        Parameters: { FunctionName: stepArn, "Payload.$": "$" },
        ResultSelector: { "imageId.$": "$.Payload.imageId" },
        ResultPath: "$.bake",
        Next: "Record",
      },
      Record: {
        Type: "Task",
        Resource: "arn:aws:states:::aws-sdk:ssm:putParameter",
        Parameters: { Name: "/kiln/web/image", "Value.$": "$.bake.imageId", Type: "String", Overwrite: true },
        End: true,
      },
    },
  };
  return {
    cloud,
    pagerArn,
    definition,
    failNext: (n: number) => {
      failures = n;
    },
    pages,
    sfn: new SFNClient(cloud.clientConfig()),
    eb: new EventBridgeClient(cloud.clientConfig()),
    ssm: new SSMClient(cloud.clientConfig()),
  };
}

async function settle(
  cloud: Cloud,
  sfn: SFNClient,
  stateMachineArn: string,
): Promise<{ status?: string; error?: string; executionArn?: string }[]> {
  // Bounded: a few simulated minutes are plenty for two tasks and an event round trip.
  for (let i = 0; i < 30; i++) {
    await cloud.clock.sleep(10_000);
    const list = await sfn.send(new ListExecutionsCommand({ stateMachineArn }));
    if ((list.executions ?? []).length > 0 && list.executions!.every((e) => e.status !== "RUNNING")) {
      return Promise.all(list.executions!.map((e) => sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }))));
    }
  }
  throw new Error("executions did not finish within 5 simulated minutes");
}

describe("EventBridge ↔ Step Functions engine ↔ Lambda and aws-sdk integrations", () => {
  let ctx: ReturnType<typeof setup>;
  afterEach(async () => ctx?.cloud.stop());

  it.each<[string, number, string, string[]]>([
    ["a successful deployment resolves nothing", 0, "SUCCEEDED", []],
    ["a failed step pages on-call with the failed execution", 1, "FAILED", ["FAILED"]],
  ])("%s", async (_name, failures, status, pages) => {
    ctx = setup();
    const { cloud, sfn, eb, ssm } = ctx;
    const sm = await sfn.send(
      new CreateStateMachineCommand({
        name: "deploy",
        definition: JSON.stringify(ctx.definition),
        roleArn: "arn:aws:iam::123456789012:role/sfn",
      }),
    );
    await eb.send(
      new PutRuleCommand({ Name: "pushes", EventPattern: JSON.stringify({ source: ["kiln.git"], "detail-type": ["push"] }) }),
    );
    await eb.send(
      new PutTargetsCommand({ Rule: "pushes", Targets: [{ Id: "deploy", Arn: sm.stateMachineArn!, InputPath: "$.detail" }] }),
    );
    await eb.send(
      new PutRuleCommand({
        Name: "page",
        EventPattern: JSON.stringify({ source: ["aws.states"], detail: { status: ["FAILED", "TIMED_OUT", "ABORTED"] } }),
      }),
    );
    await eb.send(new PutTargetsCommand({ Rule: "page", Targets: [{ Id: "pager", Arn: ctx.pagerArn }] }));
    ctx.failNext(failures);

    await eb.send(
      new PutEventsCommand({
        Entries: [{ Source: "kiln.git", DetailType: "push", Detail: JSON.stringify({ service: "web", commit: "abc123" }) }],
      }),
    );
    const [execution] = await settle(cloud, sfn, sm.stateMachineArn!);
    expect(execution?.status).toBe(status);
    if (status === "SUCCEEDED") {
      const p = await ssm.send(new GetParameterCommand({ Name: "/kiln/web/image" }));
      expect(p.Parameter?.Value).toBe("ami-abc123");
    } else {
      // The Lambda error name becomes the task error, as the state machine's Retry/Catch see it.
      expect(execution?.error).toBe("kiln.StepFailed");
    }
    await cloud.clock.sleep(1_000);
    expect(ctx.pages.map((p) => p.status)).toEqual(pages);
    if (pages.length) expect(ctx.pages[0]!.executionArn).toBe(execution?.executionArn);
  });
});
