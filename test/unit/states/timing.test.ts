import { describe, expect, it } from "vitest";
import type { HistoryEvent, StatesGraph } from "../../../local/states/engine/types.ts";
import { FnError, harness, lambdaArn, output, single, types } from "./harness.ts";

const at = (events: HistoryEvent[], type: string) =>
  events.filter((e) => e.type === type).map((e) => e.timestamp.toISOString().slice(11, 19));

describe("Retry on the virtual clock", () => {
  it("backs off IntervalSeconds × BackoffRate^n and history timestamps show it", async () => {
    const h = harness({
      fns: {
        flaky: (_p, n) => {
          if (n <= 3) throw new FnError("kiln.Throttled", `attempt ${n}`);
          return { ok: n };
        },
      },
    });
    const r = await h.run(
      single({
        Type: "Task",
        Resource: lambdaArn("flaky"),
        Retry: [{ ErrorEquals: ["kiln.Throttled"], IntervalSeconds: 2, BackoffRate: 3, MaxAttempts: 3 }],
      }),
    );
    expect(output(r.view)).toEqual({ ok: 4 });
    // 09:00:00 → +2 s → +6 s → +18 s
    expect(at(r.events, "LambdaFunctionScheduled")).toEqual(["09:00:00", "09:00:02", "09:00:08", "09:00:26"]);
  });

  it("MaxDelaySeconds caps the delay; FULL jitter draws from the seeded source", async () => {
    const run = async (seed: number) => {
      const h = harness({
        seed,
        fns: {
          f: () => {
            throw new FnError("E", "x");
          },
        },
      });
      const r = await h.run(
        single({
          Type: "Task",
          Resource: lambdaArn("f"),
          Retry: [
            {
              ErrorEquals: ["E"],
              IntervalSeconds: 10,
              BackoffRate: 10,
              MaxAttempts: 2,
              MaxDelaySeconds: 60,
              JitterStrategy: "FULL",
            },
          ],
        }),
      );
      return r.events.filter((e) => e.type === "LambdaFunctionScheduled").map((e) => e.timestamp.getTime());
    };
    const a = await run(1);
    expect(await run(1)).toEqual(a);
    expect(a[1]! - a[0]!).toBeLessThanOrEqual(10_000);
    expect(a[2]! - a[1]!).toBeLessThanOrEqual(60_000);
  });

  it.each([
    ["MaxAttempts 0 never retries", [{ ErrorEquals: ["E"], MaxAttempts: 0 }], 1],
    ["defaults: 3 retries", [{ ErrorEquals: ["E"] }], 4],
    [
      "first matching retrier only",
      [
        { ErrorEquals: ["E"], MaxAttempts: 1 },
        { ErrorEquals: ["States.ALL"], MaxAttempts: 5 },
      ],
      2,
    ],
    ["States.ALL", [{ ErrorEquals: ["States.ALL"], MaxAttempts: 2 }], 3],
  ])("%s", async (_n, Retry, attempts) => {
    const h = harness({
      fns: {
        f: () => {
          throw new FnError("E", "x");
        },
      },
    });
    const r = await h.run(single({ Type: "Task", Resource: lambdaArn("f"), Retry }));
    expect(r.view.status).toBe("FAILED");
    expect(h.calls).toHaveLength(attempts);
  });

  it("$$.State.RetryCount counts the retries", async () => {
    const seen: unknown[] = [];
    const h = harness({
      fns: {
        f: (p: any) => {
          seen.push(p.retry);
          if (p.retry < 2) throw new FnError("E", "x");
          return p;
        },
      },
    });
    await h.run(
      single({
        Type: "Task",
        Resource: lambdaArn("f"),
        Parameters: { "retry.$": "$$.State.RetryCount" },
        Retry: [{ ErrorEquals: ["E"], IntervalSeconds: 1 }],
      }),
    );
    expect(seen).toEqual([0, 1, 2]);
  });

  it("a 1-hour Wait and long backoffs complete in virtual time", async () => {
    const h = harness({
      fns: {
        f: (_p, n) => {
          if (n < 4) throw new FnError("kiln.NotReady", "not yet");
          return "ready";
        },
      },
    });
    const def: StatesGraph = {
      StartAt: "W",
      States: {
        W: { Type: "Wait", Seconds: 3600, Next: "T" },
        T: {
          Type: "Task",
          Resource: lambdaArn("f"),
          Retry: [{ ErrorEquals: ["kiln.NotReady"], IntervalSeconds: 300, BackoffRate: 2, MaxAttempts: 5 }],
          End: true,
        },
      },
    };
    const t0 = h.clock.now();
    const r = await h.run(def);
    expect(r.view.status).toBe("SUCCEEDED");
    // 1 h + 300 + 600 + 1200 s of simulated time.
    expect(h.clock.now() - t0).toBe((3600 + 300 + 600 + 1200) * 1000);
  });
});

describe("Catch", () => {
  it("JSONPath: the error output goes to ResultPath and the Catcher's Next runs", async () => {
    const h = harness({
      fns: {
        f: () => {
          throw new FnError("kiln.VerificationFailed", "alarm X in ALARM");
        },
      },
    });
    const r = await h.run(
      {
        StartAt: "T",
        States: {
          T: {
            Type: "Task",
            Resource: lambdaArn("f"),
            Catch: [
              { ErrorEquals: ["kiln.Throttled"], Next: "No" },
              { ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "Rollback" },
            ],
            End: true,
          },
          No: { Type: "Fail", Error: "wrong" },
          Rollback: { Type: "Pass", End: true },
        },
      },
      { svc: "web" },
    );
    expect(output(r.view)).toEqual({
      svc: "web",
      error: { Error: "kiln.VerificationFailed", Cause: expect.stringContaining("alarm X in ALARM") },
    });
    expect(types(r.events)).toEqual([
      "ExecutionStarted",
      "TaskStateEntered",
      "LambdaFunctionScheduled",
      "LambdaFunctionStarted",
      "LambdaFunctionFailed",
      "TaskStateExited",
      "PassStateEntered",
      "PassStateExited",
      "ExecutionSucceeded",
    ]);
  });

  it("retries are exhausted before Catch applies", async () => {
    const h = harness({
      fns: {
        f: () => {
          throw new FnError("E", "x");
        },
      },
    });
    const r = await h.run({
      StartAt: "T",
      States: {
        T: {
          Type: "Task",
          Resource: lambdaArn("f"),
          Retry: [{ ErrorEquals: ["E"], MaxAttempts: 2 }],
          Catch: [{ ErrorEquals: ["E"], Next: "Done" }],
          End: true,
        },
        Done: { Type: "Succeed" },
      },
    });
    expect(r.view.status).toBe("SUCCEEDED");
    expect(h.calls).toHaveLength(3);
  });

  it("JSONata: Output and Assign see $states.errorOutput", async () => {
    const h = harness({
      fns: {
        f: () => {
          throw new FnError("E", "bad");
        },
      },
    });
    const r = await h.run({
      QueryLanguage: "JSONata",
      StartAt: "T",
      States: {
        T: {
          Type: "Task",
          Resource: "arn:aws:states:::lambda:invoke",
          Arguments: { FunctionName: "f" },
          Catch: [
            {
              ErrorEquals: ["States.ALL"],
              Output: { failed: "{% $states.errorOutput.Error %}" },
              Assign: { why: "{% $parse($states.errorOutput.Cause).errorMessage %}" },
              Next: "D",
            },
          ],
          End: true,
        },
        D: { Type: "Pass", Output: { out: "{% $states.input %}", why: "{% $why %}" }, End: true },
      },
    });
    expect(output(r.view)).toEqual({ out: { failed: "E" }, why: "bad" });
  });
});

describe("timeouts and heartbeats", () => {
  it("TimeoutSeconds fails the task with States.Timeout (TaskTimedOut)", async () => {
    const h = harness({ fns: { slow: () => h.clock.sleep(60_000).then(() => "late") } });
    const r = await h.run(
      single({
        Type: "Task",
        Resource: "arn:aws:states:::lambda:invoke",
        Parameters: { FunctionName: "slow" },
        TimeoutSeconds: 10,
      }),
    );
    expect(r.view).toMatchObject({ status: "FAILED", error: "States.Timeout" });
    const ev = r.events.find((e) => e.type === "TaskTimedOut")!;
    expect(ev.taskTimedOutEventDetails).toMatchObject({ resourceType: "lambda", resource: "invoke", error: "States.Timeout" });
    expect(ev.timestamp.toISOString()).toBe("2026-01-05T09:00:10.000Z");
  });

  it("TimeoutSecondsPath reads the timeout from the input; legacy Lambda writes LambdaFunctionTimedOut", async () => {
    const h = harness({ fns: { slow: () => h.clock.sleep(60_000).then(() => "late") } });
    const r = await h.run(single({ Type: "Task", Resource: lambdaArn("slow"), TimeoutSecondsPath: "$.t" }), { t: 5 });
    expect(r.view.error).toBe("States.Timeout");
    expect(types(r.events)).toContain("LambdaFunctionTimedOut");
  });

  it("execution TimeoutSeconds ends the run TIMED_OUT and aborts the running state", async () => {
    const r = await harness().run({
      TimeoutSeconds: 30,
      StartAt: "W",
      States: { W: { Type: "Wait", Seconds: 3600, End: true } },
    });
    expect(r.view).toMatchObject({ status: "TIMED_OUT", error: "States.Timeout" });
    expect(types(r.events)).toEqual(["ExecutionStarted", "WaitStateEntered", "WaitStateAborted", "ExecutionTimedOut"]);
    expect(r.events.at(-1)!.timestamp.toISOString()).toBe("2026-01-05T09:00:30.000Z");
  });

  it("the history limit fails the execution with States.Runtime as its last event", async () => {
    const h = harness({ engine: { historyLimit: 20 } });
    const r = await h.run({ StartAt: "L", States: { L: { Type: "Pass", Next: "L" } } });
    expect(r.view).toMatchObject({
      status: "FAILED",
      error: "States.Runtime",
      cause: "The execution reached the maximum number of history events (20).",
    });
    expect(r.events).toHaveLength(20);
    expect(r.events.at(-1)!.type).toBe("ExecutionFailed");
  });
});

describe("callbacks (.waitForTaskToken)", () => {
  const callbackDef = (extra: Record<string, unknown> = {}): StatesGraph =>
    single({
      Type: "Task",
      Resource: "arn:aws:states:::lambda:invoke.waitForTaskToken",
      Parameters: { FunctionName: "notify", Payload: { "token.$": "$$.Task.Token", "ami.$": "$.ami" } },
      ...extra,
    });

  function withTokens() {
    const tokens: string[] = [];
    const h = harness({
      fns: {
        notify: (p: any) => {
          tokens.push(p.token);
          return { accepted: true };
        },
      },
    });
    return { h, tokens };
  }

  it("pauses until SendTaskSuccess and returns its output", async () => {
    const { h, tokens } = withTokens();
    const exec = h.start(callbackDef(), { ami: "ami-1" });
    await h.clock.sleep(120_000);
    expect(exec.status).toBe("RUNNING");
    expect(tokens).toHaveLength(1);
    h.engine.sendTaskSuccess(tokens[0]!, JSON.stringify({ state: "available" }));
    const v = await exec.whenDone();
    expect(output(v)).toEqual({ state: "available" });
    expect(types(exec.history.events)).toEqual([
      "ExecutionStarted",
      "TaskStateEntered",
      "TaskScheduled",
      "TaskStarted",
      "TaskSubmitted",
      "TaskSucceeded",
      "TaskStateExited",
      "ExecutionSucceeded",
    ]);
    expect(exec.history.events.find((e) => e.type === "TaskSubmitted")?.taskSubmittedEventDetails).toMatchObject({
      resource: "invoke.waitForTaskToken",
      output: expect.stringContaining('"Payload":{"accepted":true}'),
    });
    // The token is closed now.
    expect(() => h.engine.sendTaskSuccess(tokens[0]!, "{}")).toThrow(expect.objectContaining({ code: "TaskTimedOut" }));
  });

  it("SendTaskFailure fails the task with the caller's error (Retry/Catch apply)", async () => {
    const { h, tokens } = withTokens();
    const exec = h.start(callbackDef({ Retry: [{ ErrorEquals: ["ami.Failed"], MaxAttempts: 1, IntervalSeconds: 5 }] }), {
      ami: "ami-1",
    });
    await h.clock.sleep(1000);
    h.engine.sendTaskFailure(tokens[0]!, "ami.Failed", "snapshot failed");
    await h.clock.sleep(10_000);
    // The retry issued a fresh token.
    expect(tokens).toHaveLength(2);
    expect(tokens[1]).not.toBe(tokens[0]);
    h.engine.sendTaskFailure(tokens[1]!, "ami.Failed", "again");
    const v = await exec.whenDone();
    expect(v).toMatchObject({ status: "FAILED", error: "ami.Failed", cause: "again" });
  });

  it("HeartbeatSeconds: heartbeats keep the task alive, silence times it out", async () => {
    const { h, tokens } = withTokens();
    const exec = h.start(callbackDef({ HeartbeatSeconds: 60 }), { ami: "ami-1" });
    for (let i = 0; i < 3; i++) {
      await h.clock.sleep(50_000);
      h.engine.sendTaskHeartbeat(tokens[0]!);
    }
    expect(exec.status).toBe("RUNNING");
    const v = await exec.whenDone();
    expect(v).toMatchObject({ status: "FAILED", error: "States.HeartbeatTimeout" });
    expect(exec.history.events.find((e) => e.type === "TaskTimedOut")?.timestamp.toISOString()).toBe("2026-01-05T09:03:30.000Z");
    // No history event for heartbeats.
    expect(types(exec.history.events).filter((t) => /Heartbeat/.test(t))).toEqual([]);
  });

  it.each([
    ["a malformed token", "nope", "InvalidToken"],
    ["a well-formed unknown token", `AQB${"x".repeat(200)}`, "TaskDoesNotExist"],
  ])("%s → %s", (_n, token, code) => {
    const { h } = withTokens();
    expect(() => h.engine.sendTaskSuccess(token, "{}")).toThrow(expect.objectContaining({ code }));
  });

  it("StopExecution aborts a waiting task and closes its token", async () => {
    const { h, tokens } = withTokens();
    const exec = h.start(callbackDef(), { ami: "ami-1" });
    await h.clock.sleep(1000);
    await exec.stop("kiln.Aborted", "operator");
    expect(exec.view()).toMatchObject({ status: "ABORTED", error: "kiln.Aborted", cause: "operator" });
    expect(types(exec.history.events).slice(-2)).toEqual(["TaskStateAborted", "ExecutionAborted"]);
    expect(() => h.engine.sendTaskSuccess(tokens[0]!, "{}")).toThrow(expect.objectContaining({ code: "TaskTimedOut" }));
  });
});
