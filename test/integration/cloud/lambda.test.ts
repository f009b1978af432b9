import { GetFunctionCommand, InvokeCommand, LambdaClient, ListFunctionsCommand } from "@aws-sdk/client-lambda";
import type { Context } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { ScaledClock } from "../../../lib/clock.ts";
import { KilnError } from "../../../lib/errors.ts";
import { Cloud } from "../../../local/cloud/cloud.ts";
import { createLambdaInvoker } from "../../../local/cloud/sdk-call.ts";
import { registerLambda } from "../../../local/cloud/services/lambda/index.ts";

const decode = (p?: Uint8Array) => (p && p.length ? JSON.parse(Buffer.from(p).toString("utf8")) : undefined);

function setup() {
  const cloud = new Cloud({ seed: 3 });
  const lambda = registerLambda(cloud);
  const sideEffects: string[] = [];
  const contexts: { ctx: Context; remainingAtStart: number; remainingLater: number }[] = [];
  lambda.registerFunction({
    name: "echo",
    timeoutSeconds: 30,
    memorySize: 512,
    environment: { KILN_STAGE: "local" },
    handler: async (event: unknown, ctx: Context) => {
      const remainingAtStart = ctx.getRemainingTimeInMillis();
      await cloud.clock.sleep(2_000);
      contexts.push({ ctx, remainingAtStart, remainingLater: ctx.getRemainingTimeInMillis() });
      return { event, stage: process.env.KILN_STAGE, at: cloud.clock.date() };
    },
  });
  lambda.registerFunction({
    name: "throttled",
    handler: async () => {
      throw new KilnError("kiln.Throttled", "EC2 is throttling RunInstances");
    },
  });
  lambda.registerFunction({
    name: "throws-string",
    handler: async () => {
      throw "plain string";
    },
  });
  lambda.registerFunction({
    name: "slow",
    timeoutSeconds: 3,
    handler: async () => {
      await cloud.clock.sleep(10_000);
      sideEffects.push("slow finished");
      return "late";
    },
  });
  lambda.registerFunction({
    name: "launch",
    timeoutSeconds: 10,
    handler: async () => {
      sideEffects.push("RunInstances");
      return { instanceId: "i-0123" };
    },
  });
  lambda.registerFunction({ name: "nothing", handler: async () => undefined });
  const client = new LambdaClient(cloud.clientConfig());
  return { cloud, lambda, client, sideEffects, contexts };
}

describe("Lambda Invoke through the SDK", () => {
  let ctx: ReturnType<typeof setup>;
  afterEach(async () => ctx?.cloud.stop());

  it("round-trips the payload through JSON and gives the handler a Lambda context on the cloud clock", async () => {
    ctx = setup();
    const r = await ctx.client.send(
      new InvokeCommand({ FunctionName: "echo", Payload: JSON.stringify({ n: 1, when: "x" }), LogType: "Tail" }),
    );
    expect(r.StatusCode).toBe(200);
    expect(r.FunctionError).toBeUndefined();
    expect(r.ExecutedVersion).toBe("$LATEST");
    // Dates come back as strings: the result went through JSON.stringify.
    expect(decode(r.Payload)).toEqual({ event: { n: 1, when: "x" }, stage: "local", at: "2026-01-05T09:00:02.000Z" });
    const log = Buffer.from(r.LogResult ?? "", "base64").toString("utf8");
    expect(log).toMatch(/^START RequestId: [0-9a-f-]{36} Version: \$LATEST/);
    expect(log).toContain("REPORT RequestId:");
    expect(log).toContain("Duration: 2000.00 ms");
    const { ctx: c, remainingAtStart, remainingLater } = ctx.contexts[0]!;
    expect(c).toMatchObject({
      functionName: "echo",
      functionVersion: "$LATEST",
      invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:echo",
      memoryLimitInMB: "512",
      callbackWaitsForEmptyEventLoop: true,
      logGroupName: "/aws/lambda/echo",
    });
    expect(c.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(remainingAtStart).toBe(30_000);
    expect(remainingLater).toBe(28_000);
  });

  it("returns null for a handler that returns nothing, and {} as the event of an empty payload", async () => {
    ctx = setup();
    const r = await ctx.client.send(new InvokeCommand({ FunctionName: "nothing" }));
    expect(Buffer.from(r.Payload!).toString()).toBe("null");
    const e = await ctx.client.send(new InvokeCommand({ FunctionName: "echo" }));
    expect(decode(e.Payload).event).toEqual({});
  });

  it.each<[string, string, { errorType: string; errorMessage: string | RegExp }]>([
    [
      "a thrown kiln error keeps its name",
      "throttled",
      { errorType: "kiln.Throttled", errorMessage: "EC2 is throttling RunInstances" },
    ],
    ["a thrown string is reported by its type", "throws-string", { errorType: "string", errorMessage: "plain string" }],
    [
      "a handler running past its timeout",
      "slow",
      { errorType: "Sandbox.Timedout", errorMessage: /^[0-9a-f-]{36} Task timed out after 3\.00 seconds$/ },
    ],
  ])("function error: %s", async (_name, fn, expected) => {
    ctx = setup();
    const r = await ctx.client.send(new InvokeCommand({ FunctionName: fn }));
    expect(r.StatusCode).toBe(200);
    expect(r.FunctionError).toBe("Unhandled");
    const payload = decode(r.Payload);
    expect(payload.errorType).toBe(expected.errorType);
    if (expected.errorMessage instanceof RegExp) expect(payload.errorMessage).toMatch(expected.errorMessage);
    else expect(payload.errorMessage).toBe(expected.errorMessage);
    if (fn === "throttled") expect(payload.trace[0]).toContain("kiln.Throttled: EC2 is throttling RunInstances");
  });

  it("times out on the cloud clock, not the wall clock", async () => {
    ctx = setup();
    const t0 = ctx.cloud.clock.now();
    await ctx.client.send(new InvokeCommand({ FunctionName: "slow" }));
    expect(ctx.cloud.clock.now() - t0).toBe(3_000);
    expect(ctx.lambda.invocations("slow")).toMatchObject([
      { outcome: "timeout", durationMs: 3_000, errorType: "Sandbox.Timedout" },
    ]);
  });

  it("on a scaled clock the timeout counts the handler's real milliseconds: a busy machine does not time a handler out", async () => {
    // 100×: a handler's 40 ms of real work (SDK round trips, CPU) is 4 s of cloud time. Lambda bills
    // it as 40 ms, so a 3 s function must not time out; 3 real seconds would.
    const cloud = new Cloud({ seed: 3, clock: new ScaledClock(100) });
    const lambda = registerLambda(cloud);
    lambda.registerFunction({
      name: "busy",
      timeoutSeconds: 3,
      handler: async (ms: number) => {
        await new Promise((r) => setTimeout(r, ms));
        return "done";
      },
    });
    const client = new LambdaClient(cloud.clientConfig());
    try {
      const busy = await client.send(new InvokeCommand({ FunctionName: "busy", Payload: "40" }));
      expect(busy.FunctionError, decode(busy.Payload)?.errorMessage).toBeUndefined();
      expect(decode(busy.Payload)).toBe("done");
      const late = await client.send(new InvokeCommand({ FunctionName: "busy", Payload: "3200" }));
      expect(decode(late.Payload).errorType).toBe("Sandbox.Timedout");
    } finally {
      await cloud.stop();
    }
  });

  it.each<[string, string, boolean, string]>([
    ["crash-before: the handler never runs", "crash-before", false, "Runtime.ExitError"],
    ["crash: alias of crash-before", "crash", false, "Runtime.ExitError"],
    ["crash-after: side effects happen, the answer is lost", "crash-after", true, "Runtime.ExitError"],
    ["timeout: side effects happen, the caller sees a timeout", "timeout", true, "Sandbox.Timedout"],
  ])("fault %s", async (_name, mode, ran, errorType) => {
    ctx = setup();
    ctx.cloud.faults.add({ kind: "lambda", function: "launch", mode, times: 1 });
    const t0 = ctx.cloud.clock.now();
    const r = await ctx.client.send(new InvokeCommand({ FunctionName: "launch" }));
    expect(r.FunctionError).toBe("Unhandled");
    expect(decode(r.Payload).errorType).toBe(errorType);
    expect(ctx.sideEffects).toEqual(ran ? ["RunInstances"] : []);
    expect(ctx.cloud.clock.now() - t0).toBe(mode === "timeout" ? 10_000 : 0);
    // `times: 1`: the next invocation is healthy.
    const again = await ctx.client.send(new InvokeCommand({ FunctionName: "launch" }));
    expect(again.FunctionError).toBeUndefined();
    expect(decode(again.Payload)).toEqual({ instanceId: "i-0123" });
  });

  it("queues Event invocations (202) and retries function errors twice, one then two minutes apart", async () => {
    ctx = setup();
    const r = await ctx.client.send(new InvokeCommand({ FunctionName: "throttled", InvocationType: "Event", Payload: "{}" }));
    expect(r.StatusCode).toBe(202);
    expect(r.Payload?.length ?? 0).toBe(0);
    expect(ctx.lambda.invocations("throttled")).toHaveLength(0);
    await ctx.cloud.clock.sleep(10 * 60_000);
    const runs = ctx.lambda.invocations("throttled");
    expect(runs.map((x) => x.attempt)).toEqual([1, 2, 3]);
    expect(new Set(runs.map((x) => x.requestId)).size).toBe(1);
    const starts = runs.map((x) => Date.parse(x.start));
    expect([starts[1]! - starts[0]!, starts[2]! - starts[1]!]).toEqual([60_000, 120_000]);
  });

  it("answers DryRun with 204 and unknown functions with ResourceNotFoundException (404)", async () => {
    ctx = setup();
    const dry = await ctx.client.send(new InvokeCommand({ FunctionName: "echo", InvocationType: "DryRun" }));
    expect(dry.StatusCode).toBe(204);
    expect(ctx.contexts).toHaveLength(0);
    await expect(ctx.client.send(new InvokeCommand({ FunctionName: "ghost" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
      message: "Function not found: arn:aws:lambda:us-east-1:123456789012:function:ghost",
      $metadata: { httpStatusCode: 404 },
    });
    await expect(ctx.client.send(new InvokeCommand({ FunctionName: "echo", Qualifier: "live" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
    await expect(ctx.client.send(new InvokeCommand({ FunctionName: "echo", Payload: "{oops" }))).rejects.toMatchObject({
      name: "InvalidRequestContentException",
    });
  });

  it("accepts names, ARNs and partial ARNs", async () => {
    ctx = setup();
    for (const name of [
      "launch",
      "arn:aws:lambda:us-east-1:123456789012:function:launch",
      "arn:aws:lambda:us-east-1:123456789012:function:launch:$LATEST",
      "123456789012:function:launch",
    ]) {
      const r = await ctx.client.send(new InvokeCommand({ FunctionName: name }));
      expect(decode(r.Payload)).toEqual({ instanceId: "i-0123" });
    }
  });

  it("serves GetFunction and paginated ListFunctions", async () => {
    ctx = setup();
    const g = await ctx.client.send(new GetFunctionCommand({ FunctionName: "echo" }));
    expect(g.Configuration).toMatchObject({
      FunctionName: "echo",
      FunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:echo",
      Timeout: 30,
      MemorySize: 512,
      Version: "$LATEST",
      State: "Active",
      Environment: { Variables: { KILN_STAGE: "local" } },
      LastModified: "2026-01-05T09:00:00.000+0000",
    });
    const names: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await ctx.client.send(new ListFunctionsCommand({ MaxItems: 4, Marker: marker }));
      names.push(...(page.Functions ?? []).map((f) => f.FunctionName!));
      marker = page.NextMarker;
      pages++;
    } while (marker && pages < 10);
    expect(pages).toBe(2);
    expect(names).toEqual(["echo", "launch", "nothing", "slow", "throttled", "throws-string"]);
  });

  it("speaks the same protocol over real HTTP", async () => {
    ctx = setup();
    await ctx.cloud.start({ port: 0 });
    const http = new LambdaClient(ctx.cloud.clientConfig({ http: true }));
    const ok = await http.send(new InvokeCommand({ FunctionName: "launch", Payload: "{}" }));
    expect(decode(ok.Payload)).toEqual({ instanceId: "i-0123" });
    const bad = await http.send(new InvokeCommand({ FunctionName: "throttled" }));
    expect([bad.StatusCode, bad.FunctionError, decode(bad.Payload).errorType]).toEqual([200, "Unhandled", "kiln.Throttled"]);
    await expect(http.send(new InvokeCommand({ FunctionName: "ghost" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
    http.destroy();
  });
});

describe("the engine's invokeLambda", () => {
  let ctx: ReturnType<typeof setup>;
  afterEach(async () => ctx?.cloud.stop());

  it("returns the parsed payload, or the function error for the engine to name", async () => {
    ctx = setup();
    const invoke = createLambdaInvoker(ctx.cloud);
    const ok = await invoke(ctx.lambda.functionArn("launch"), { step: "LaunchBuilder" });
    expect(ok).toMatchObject({ payload: { instanceId: "i-0123" }, statusCode: 200, executedVersion: "$LATEST" });
    expect(ok.functionError).toBeUndefined();
    const failed = await invoke(ctx.lambda.functionArn("throttled"), {});
    expect(failed.functionError).toBe("Unhandled");
    expect(failed.payload).toMatchObject({ errorType: "kiln.Throttled", errorMessage: "EC2 is throttling RunInstances" });
    const queued = await invoke(ctx.lambda.functionArn("launch"), {}, { invocationType: "Event" });
    expect([queued.statusCode, queued.payload]).toEqual([202, null]);
  });

  it.each<[string, string, boolean, string]>([
    ["an unknown function", "ghost", false, "ResourceNotFoundException"],
    ["Lambda throttling", "launch", true, "TooManyRequestsException"],
  ])("rejects invocation failures with the Lambda error name: %s", async (_n, fn, throttle, name) => {
    ctx = setup();
    if (throttle) ctx.cloud.faults.add({ kind: "api", service: "lambda", action: "Invoke", code: name, status: 429, times: 1 });
    const invoke = createLambdaInvoker(ctx.cloud);
    await expect(invoke(ctx.lambda.functionArn(fn), {})).rejects.toMatchObject({ name });
  });

  it("gives up after timeoutMs of cloud time", async () => {
    ctx = setup();
    const invoke = createLambdaInvoker(ctx.cloud);
    await expect(invoke(ctx.lambda.functionArn("echo"), {}, { timeoutMs: 1_000 })).rejects.toMatchObject({
      name: "States.Timeout",
    });
  });
});
