/**
 * `kiln cloud --clock virtual` and `kiln up --clock virtual` wait for outside callers: a task token
 * answered over HTTP after a long virtual TimeoutSeconds, and a stack with only schedules left that
 * idles instead of racing through months of simulated time (lib/clock.ts VirtualClock.serve).
 */
import { CreateTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { afterAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../../lib/clock.ts";
import { serveClock } from "../../../local/cli/run.ts";
import { createCloud } from "../../../local/cloud/index.ts";
import { Stack } from "../../../local/stack.ts";
import { statesBackend } from "../../../local/states/api.ts";

const wall = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DAY = 86_400_000;

describe("kiln cloud --clock virtual: an outside caller answers a task token", () => {
  const clock = new VirtualClock();
  const cloud = createCloud({ clock: serveClock(clock) });
  afterAll(() => cloud.stop());

  it("after a long virtual Wait, within the task's 86400 s TimeoutSeconds", async () => {
    await cloud.start({ port: 0 });
    const cfg = { ...cloud.clientConfig({ http: true }), maxAttempts: 1 };
    const sfn = new SFNClient(cfg);
    const sns = new SNSClient(cfg);
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "approvals" }));
    const { stateMachineArn } = await sfn.send(
      new CreateStateMachineCommand({
        name: "ask",
        roleArn: "arn:aws:iam::000000000000:role/x",
        definition: JSON.stringify({
          StartAt: "Cool",
          States: {
            Cool: { Type: "Wait", Seconds: 3600, Next: "Ask" },
            Ask: {
              Type: "Task",
              Resource: "arn:aws:states:::sns:publish.waitForTaskToken",
              Parameters: { TopicArn, "Message.$": "$$.Task.Token" },
              TimeoutSeconds: 86_400,
              End: true,
            },
          },
        }),
      }),
    );
    const t0 = clock.now();
    const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: "{}" }));
    // The caller polls the history for the token, as a boto3 script would.
    let token: string | undefined;
    for (let i = 0; i < 400 && !token; i++) {
      const h = await sfn.send(new GetExecutionHistoryCommand({ executionArn }));
      const ev = h.events?.find((e) => e.type === "TaskScheduled");
      if (ev) token = JSON.parse(ev.taskScheduledEventDetails!.parameters!).Message;
      else await wall(10);
    }
    expect(token).toBeDefined();
    // The caller thinks it over (wall time) before answering.
    await wall(500);
    await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify({ approved: true }) }));
    const view = await statesBackend(cloud).awaitExecution(executionArn!);
    expect(view.status).toBe("SUCCEEDED");
    expect(view.output).toBe(JSON.stringify({ approved: true }));
    expect(clock.now() - t0).toBeGreaterThanOrEqual(3_600_000);
    expect(clock.now() - t0).toBeLessThan(3_600_000 + 60_000);
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    expect(d.status).toBe("SUCCEEDED");
    // Causal order: the task was submitted before it succeeded, and nothing follows the end.
    const types = ((await sfn.send(new GetExecutionHistoryCommand({ executionArn }))).events ?? []).map((e) => e.type);
    expect(types.slice(-4)).toEqual(["TaskSubmitted", "TaskSucceeded", "TaskStateExited", "ExecutionSucceeded"]);
  }, 60_000);
});

describe("kiln up --clock virtual: only schedules left", () => {
  let stack: Awaited<ReturnType<typeof Stack.start>> | undefined;
  afterAll(() => stack?.stop());

  it("idles: virtual time flows at wall speed and no scheduled run starts", async () => {
    stack = await Stack.start({ clock: "virtual", port: 0 });
    const clock = stack.cloud.clock as VirtualClock;
    serveClock(clock);
    const states = statesBackend(stack.cloud);
    const before = states.listAll().length;
    const t0 = clock.now();
    const w0 = Date.now();
    expect(clock.pending()).toBeGreaterThan(0);
    await wall(1500);
    const advanced = clock.now() - t0;
    expect(advanced).toBeLessThan(Date.now() - w0 + 2_000);
    expect(advanced).toBeLessThan(DAY);
    expect(states.listAll().length).toBe(before);
    expect(clock.pending()).toBeGreaterThan(0);
  }, 120_000);
});
