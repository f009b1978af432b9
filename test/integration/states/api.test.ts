import {
  CreateStateMachineCommand,
  DeleteStateMachineCommand,
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  DescribeStateMachineForExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  RedriveExecutionCommand,
  SFNClient,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  UpdateStateMachineCommand,
} from "@aws-sdk/client-sfn";
import { afterEach, describe, expect, it } from "vitest";
import { Cloud, type CloudEvent } from "../../../local/cloud/cloud.ts";
import { type StepFunctionsBackend, registerStepFunctions } from "../../../local/states/api.ts";
import type { StatesGraph } from "../../../local/states/engine/types.ts";

const ROLE = "arn:aws:iam::123456789012:role/kiln";

interface World {
  cloud: Cloud;
  sfn: SFNClient;
  states: StepFunctionsBackend;
  events: CloudEvent[];
  /** Which functions fail (by name). */
  broken: Set<string>;
}

async function world(http = false): Promise<World> {
  const cloud = new Cloud();
  const broken = new Set<string>();
  const states = registerStepFunctions(cloud, {
    clock: cloud.clock,
    random: () => cloud.random(),
    region: cloud.region,
    accountId: cloud.accountId,
    async invokeLambda(arn, payload) {
      const name = arn.split(":").pop()!;
      if (broken.has(name))
        return {
          functionError: "Unhandled",
          payload: { errorType: "kiln.StepFailed", errorMessage: `${name} failed`, trace: [] },
        };
      return { payload };
    },
    async callAws() {
      return {};
    },
  });
  const events: CloudEvent[] = [];
  cloud.bus.on("event", (e: CloudEvent) => events.push(e));
  await cloud.start({ port: http ? 0 : false });
  return { cloud, sfn: new SFNClient(cloud.clientConfig({ http })), states, events, broken };
}

const fn = (name: string) => `arn:aws:lambda:us-east-1:123456789012:function:${name}`;
const deploy: StatesGraph = {
  StartAt: "Prepare",
  States: {
    Prepare: { Type: "Task", Resource: fn("prepare"), Next: "Bake" },
    Bake: { Type: "Task", Resource: fn("bake"), End: true },
  },
};

async function machine(w: World, name = "deploy", def: StatesGraph = deploy): Promise<string> {
  const out = await w.sfn.send(new CreateStateMachineCommand({ name, definition: JSON.stringify(def), roleArn: ROLE }));
  return out.stateMachineArn!;
}

describe("Step Functions API", () => {
  let w: World | undefined;
  afterEach(async () => {
    await w?.cloud.stop();
    w = undefined;
  });

  it.each([false, true])("runs an execution end to end through the SDK (http=%s)", async (http) => {
    w = await world(http);
    const sm = await machine(w);
    const started = await w.sfn.send(
      new StartExecutionCommand({ stateMachineArn: sm, name: "web-abc123-push", input: '{"svc":"web"}' }),
    );
    expect(started.executionArn).toBe("arn:aws:states:us-east-1:123456789012:execution:deploy:web-abc123-push");
    expect(started.startDate).toBeInstanceOf(Date);
    await w.states.awaitExecution(started.executionArn!);
    const d = await w.sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
    expect(d).toMatchObject({
      status: "SUCCEEDED",
      name: "web-abc123-push",
      input: '{"svc":"web"}',
      output: '{"svc":"web"}',
      redriveCount: 0,
      redriveStatus: "NOT_REDRIVABLE",
    });
    const h = await w.sfn.send(new GetExecutionHistoryCommand({ executionArn: started.executionArn }));
    expect(h.events?.[0]).toMatchObject({
      id: 1,
      previousEventId: 0,
      type: "ExecutionStarted",
      executionStartedEventDetails: { input: '{"svc":"web"}', roleArn: ROLE },
    });
    expect(h.events?.at(-1)?.type).toBe("ExecutionSucceeded");
    expect(h.events?.[0]?.timestamp).toBeInstanceOf(Date);
  });

  it("validates definitions with asl-validator and handles name conflicts", async () => {
    w = await world();
    const bad = { StartAt: "Nope", States: { A: { Type: "Pass", End: true } } };
    await expect(
      w.sfn.send(new CreateStateMachineCommand({ name: "bad", definition: JSON.stringify(bad), roleArn: ROLE })),
    ).rejects.toMatchObject({
      name: "InvalidDefinition",
      message: expect.stringContaining("Nope"),
    });
    await expect(
      w.sfn.send(new CreateStateMachineCommand({ name: "bad", definition: "{not json", roleArn: ROLE })),
    ).rejects.toMatchObject({ name: "InvalidDefinition" });
    const arn = await machine(w);
    // Same name and definition: idempotent.
    expect(await machine(w)).toBe(arn);
    await expect(machine(w, "deploy", { StartAt: "A", States: { A: { Type: "Pass", End: true } } })).rejects.toMatchObject({
      name: "StateMachineAlreadyExists",
    });
    await expect(
      w.sfn.send(new CreateStateMachineCommand({ name: "has space", definition: JSON.stringify(deploy), roleArn: ROLE })),
    ).rejects.toMatchObject({ name: "InvalidName" });

    const desc = await w.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: arn }));
    expect(desc).toMatchObject({
      name: "deploy",
      status: "ACTIVE",
      type: "STANDARD",
      roleArn: ROLE,
      definition: JSON.stringify(deploy),
    });
    const list = await w.sfn.send(new ListStateMachinesCommand({}));
    expect(list.stateMachines?.map((m) => m.name)).toEqual(["deploy"]);
    const upd = await w.sfn.send(
      new UpdateStateMachineCommand({
        stateMachineArn: arn,
        definition: JSON.stringify({ StartAt: "A", States: { A: { Type: "Pass", End: true } } }),
      }),
    );
    expect(upd.updateDate).toBeInstanceOf(Date);
    await w.sfn.send(new DeleteStateMachineCommand({ stateMachineArn: arn }));
    await expect(w.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: arn }))).rejects.toMatchObject({
      name: "StateMachineDoesNotExist",
    });
  });

  it("StartExecution: name rules, input validation, idempotency while RUNNING", async () => {
    w = await world();
    const sm = await machine(w, "waiter", { StartAt: "W", States: { W: { Type: "Wait", Seconds: 60, End: true } } });
    const start = (name: string, input = "{}") => w!.sfn.send(new StartExecutionCommand({ stateMachineArn: sm, name, input }));
    await expect(start("a b")).rejects.toMatchObject({ name: "InvalidName" });
    await expect(start("x".repeat(81))).rejects.toMatchObject({ name: "InvalidName" });
    await expect(start("a*b")).rejects.toMatchObject({ name: "InvalidName" });
    await expect(start("ok", "{nope")).rejects.toMatchObject({ name: "InvalidExecutionInput" });
    const first = await start("same", '{"a":1}');
    expect((await start("same", '{"a":1}')).executionArn).toBe(first.executionArn);
    await expect(start("same", '{"a":2}')).rejects.toMatchObject({
      name: "ExecutionAlreadyExists",
      message: `Execution Already Exists: '${first.executionArn}'`,
    });
    await w.states.awaitExecution(first.executionArn!);
    await expect(start("same", '{"a":1}')).rejects.toMatchObject({ name: "ExecutionAlreadyExists" });
    await expect(w.sfn.send(new StartExecutionCommand({ stateMachineArn: `${sm}-missing` }))).rejects.toMatchObject({
      name: "StateMachineDoesNotExist",
    });
    await expect(
      w.sfn.send(new DescribeExecutionCommand({ executionArn: first.executionArn!.replace("same", "other") })),
    ).rejects.toMatchObject({ name: "ExecutionDoesNotExist" });
    await expect(w.sfn.send(new DescribeExecutionCommand({ executionArn: "not-an-arn" }))).rejects.toMatchObject({
      name: "InvalidArn",
    });
  });

  it("ListExecutions filters by status and pages; GetExecutionHistory pages and reverses", async () => {
    w = await world();
    const sm = await machine(w);
    w.broken.add("bake");
    for (const n of ["e1", "e2", "e3"]) {
      const { executionArn } = await w.sfn.send(new StartExecutionCommand({ stateMachineArn: sm, name: n }));
      await w.states.awaitExecution(executionArn!);
      if (n === "e2") w.broken.delete("bake");
    }
    const failed = await w.sfn.send(new ListExecutionsCommand({ stateMachineArn: sm, statusFilter: "FAILED" }));
    expect(failed.executions?.map((e) => e.name)).toEqual(["e2", "e1"]);
    const page1 = await w.sfn.send(new ListExecutionsCommand({ stateMachineArn: sm, maxResults: 2 }));
    expect(page1.executions?.map((e) => e.name)).toEqual(["e3", "e2"]);
    const page2 = await w.sfn.send(new ListExecutionsCommand({ stateMachineArn: sm, maxResults: 2, nextToken: page1.nextToken }));
    expect(page2.executions?.map((e) => e.name)).toEqual(["e1"]);
    expect(page2.nextToken).toBeUndefined();

    const arn = page1.executions![0]!.executionArn!;
    const all = (await w.sfn.send(new GetExecutionHistoryCommand({ executionArn: arn }))).events!;
    const h1 = await w.sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 3 }));
    const h2 = await w.sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 100, nextToken: h1.nextToken }));
    expect([...h1.events!, ...h2.events!].map((e) => e.id)).toEqual(all.map((e) => e.id));
    const rev = await w.sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true }));
    expect(rev.events?.map((e) => e.id)).toEqual(all.map((e) => e.id).reverse());
    const meta = await w.sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, includeExecutionData: false }));
    expect(meta.events?.[0]?.executionStartedEventDetails?.input).toBeUndefined();
  });

  it("StopExecution aborts with the caller's error and cause", async () => {
    w = await world();
    const sm = await machine(w, "waiter", { StartAt: "W", States: { W: { Type: "Wait", Seconds: 600, End: true } } });
    const { executionArn } = await w.sfn.send(new StartExecutionCommand({ stateMachineArn: sm, name: "s1" }));
    const stop = await w.sfn.send(new StopExecutionCommand({ executionArn, error: "kiln.Aborted", cause: "operator abort" }));
    expect(stop.stopDate).toBeInstanceOf(Date);
    expect(await w.sfn.send(new DescribeExecutionCommand({ executionArn }))).toMatchObject({
      status: "ABORTED",
      error: "kiln.Aborted",
      cause: "operator abort",
      redriveStatus: "REDRIVABLE",
    });
  });

  it("RedriveExecution resumes at the failed state, is idempotent per clientToken, and emits status events", async () => {
    w = await world();
    const sm = await machine(w);
    w.broken.add("bake");
    const { executionArn } = await w.sfn.send(new StartExecutionCommand({ stateMachineArn: sm, name: "r1", input: '{"v":1}' }));
    await w.states.awaitExecution(executionArn!);
    expect(await w.sfn.send(new DescribeExecutionCommand({ executionArn }))).toMatchObject({
      status: "FAILED",
      error: "kiln.StepFailed",
      cause: '{"errorMessage":"bake failed","errorType":"kiln.StepFailed","trace":[]}',
      redriveStatus: "REDRIVABLE",
    });
    w.broken.clear();
    const r1 = await w.sfn.send(new RedriveExecutionCommand({ executionArn, clientToken: "tok-1" }));
    const r2 = await w.sfn.send(new RedriveExecutionCommand({ executionArn, clientToken: "tok-1" }));
    expect(r2.redriveDate).toEqual(r1.redriveDate);
    await w.states.awaitExecution(executionArn!);
    const d = await w.sfn.send(new DescribeExecutionCommand({ executionArn }));
    expect(d).toMatchObject({ status: "SUCCEEDED", redriveCount: 1, output: '{"v":1}' });
    expect(d.redriveDate).toEqual(r1.redriveDate);
    await expect(w.sfn.send(new RedriveExecutionCommand({ executionArn }))).rejects.toMatchObject({
      name: "ExecutionNotRedrivable",
    });
    const redriven = await w.sfn.send(new ListExecutionsCommand({ stateMachineArn: sm, redriveFilter: "REDRIVEN" }));
    expect(redriven.executions?.map((e) => e.redriveCount)).toEqual([1]);

    const changes = w.events.filter((e) => e.detailType === "Step Functions Execution Status Change");
    expect(changes.map((e) => e.detail.status)).toEqual(["RUNNING", "FAILED", "RUNNING", "SUCCEEDED"]);
    expect(changes[0]).toMatchObject({
      source: "aws.states",
      resources: [executionArn],
      detail: { executionArn, stateMachineArn: sm, name: "r1", input: '{"v":1}', redriveCount: 0 },
    });
    expect(changes[1]?.detail).toMatchObject({ error: "kiln.StepFailed", redriveStatus: "REDRIVABLE" });
    expect(changes[3]?.detail).toMatchObject({ output: '{"v":1}', redriveCount: 1 });

    const desc = await w.sfn.send(new DescribeStateMachineForExecutionCommand({ executionArn }));
    expect(desc.definition).toBe(JSON.stringify(deploy));
  });

  it("SendTaskSuccess completes a callback task; bad tokens get the AWS errors", async () => {
    w = await world();
    let token = "";
    w.states.engine.deps.invokeLambda = async (_arn, payload) => {
      token = (payload as { token: string }).token;
      return { payload: {} };
    };
    const sm = await machine(w, "cb", {
      StartAt: "T",
      States: {
        T: {
          Type: "Task",
          Resource: "arn:aws:states:::lambda:invoke.waitForTaskToken",
          Parameters: { FunctionName: "notify", Payload: { "token.$": "$$.Task.Token" } },
          End: true,
        },
      },
    });
    const { executionArn } = await w.sfn.send(new StartExecutionCommand({ stateMachineArn: sm, name: "c1" }));
    await w.cloud.clock.sleep(1000);
    expect(token).not.toBe("");
    await w.sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }));
    await w.sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{"ami":"ami-1"}' }));
    expect((await w.states.awaitExecution(executionArn!)).output).toBe('{"ami":"ami-1"}');
    await expect(w.sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: "{}" }))).rejects.toMatchObject({
      name: "TaskTimedOut",
    });
    await expect(w.sfn.send(new SendTaskSuccessCommand({ taskToken: "garbage", output: "{}" }))).rejects.toMatchObject({
      name: "InvalidToken",
    });
  });

  it("states:startExecution.sync:2 runs a child execution and returns its parsed output", async () => {
    w = await world();
    const child = await machine(w, "child", {
      StartAt: "P",
      States: { P: { Type: "Pass", Parameters: { "doubled.$": "States.MathAdd($.n, $.n)" }, End: true } },
    });
    const parent = await machine(w, "parent", {
      StartAt: "Run",
      States: {
        Run: {
          Type: "Task",
          Resource: "arn:aws:states:::states:startExecution.sync:2",
          Parameters: { StateMachineArn: child, Name: "kid", "Input.$": "$" },
          OutputPath: "$.Output",
          End: true,
        },
      },
    });
    const { executionArn } = await w.sfn.send(
      new StartExecutionCommand({ stateMachineArn: parent, name: "p1", input: '{"n":21}' }),
    );
    const v = await w.states.awaitExecution(executionArn!);
    expect(v).toMatchObject({ status: "SUCCEEDED", output: '{"doubled":42}' });
    const kids = await w.sfn.send(new ListExecutionsCommand({ stateMachineArn: child }));
    expect(kids.executions?.map((e) => [e.name, e.status])).toEqual([["kid", "SUCCEEDED"]]);
  });
});
