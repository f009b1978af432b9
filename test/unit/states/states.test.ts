import { describe, expect, it } from "vitest";
import type { StatesGraph } from "../../../local/states/engine/types.ts";
import { FnError, harness, lambdaArn, output, single, types } from "./harness.ts";

const echo = (p: unknown) => p;

describe("Pass", () => {
  it.each([
    ["Result replaces the input", { Result: { x: 1 } }, { a: 1 }, { x: 1 }],
    ["Result at a ResultPath", { Result: "r", ResultPath: "$.out" }, { a: 1 }, { a: 1, out: "r" }],
    [
      "Parameters with paths and intrinsics",
      { Parameters: { "sum.$": "States.MathAdd($.a, 1)", "who.$": "$$.Execution.Name" } },
      { a: 1 },
      { sum: 2, who: "p1" },
    ],
    ["InputPath then OutputPath", { InputPath: "$.in", OutputPath: "$.v" }, { in: { v: 7 } }, 7],
    ["ResultPath null keeps the input", { Result: "x", ResultPath: null }, { a: 1 }, { a: 1 }],
  ])("%s", async (_n, state, input, expected) => {
    const r = await harness().run(single({ Type: "Pass", ...state }), input, "p1");
    expect(r.view.status).toBe("SUCCEEDED");
    expect(output(r.view)).toEqual(expected);
    expect(types(r.events)).toEqual(["ExecutionStarted", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"]);
  });
});

describe("Choice", () => {
  const def: StatesGraph = {
    StartAt: "C",
    States: {
      C: {
        Type: "Choice",
        Choices: [
          { Variable: "$.n", NumericGreaterThan: 10, Next: "Big" },
          {
            And: [
              { Variable: "$.s", IsPresent: true },
              { Variable: "$.s", StringMatches: "k*" },
            ],
            Next: "K",
          },
        ],
        Default: "Other",
      },
      Big: { Type: "Pass", Result: "big", End: true },
      K: { Type: "Pass", Result: "k", End: true },
      Other: { Type: "Pass", Result: "other", End: true },
    },
  };
  it.each([
    [{ n: 11 }, "big"],
    [{ n: 1, s: "kiln" }, "k"],
    [{ n: 1 }, "other"],
  ])("%j → %s", async (input, expected) => {
    const r = await harness().run(def, input);
    expect(output(r.view)).toBe(expected);
  });

  it("without a match or Default fails with States.NoChoiceMatched", async () => {
    const r = await harness().run(
      single({ Type: "Choice", Choices: [{ Variable: "$.n", NumericEquals: 1, Next: "S" }], End: undefined }),
      { n: 2 },
    );
    expect(r.view).toMatchObject({ status: "FAILED", error: "States.NoChoiceMatched" });
  });

  it("JSONata Condition, Output and Assign", async () => {
    const r = await harness().run(
      {
        QueryLanguage: "JSONata",
        StartAt: "C",
        States: {
          C: {
            Type: "Choice",
            Choices: [
              {
                Condition: "{% $states.input.n > 1 %}",
                Next: "Done",
                Assign: { picked: "{% $states.input.n %}" },
                Output: { v: "{% $states.input.n * 2 %}" },
              },
            ],
            Default: "Done",
          },
          Done: { Type: "Pass", Output: { v: "{% $states.input.v %}", picked: "{% $picked %}" }, End: true },
        },
      },
      { n: 4 },
    );
    expect(output(r.view)).toEqual({ v: 8, picked: 4 });
  });
});

describe("Wait", () => {
  it.each([
    ["Seconds", { Seconds: 90 }, {}, 90_000],
    ["SecondsPath", { SecondsPath: "$.s" }, { s: 30 }, 30_000],
    ["Timestamp", { Timestamp: "2026-01-05T10:00:00Z" }, {}, 3_600_000],
    ["TimestampPath", { TimestampPath: "$.t" }, { t: "2026-01-05T09:05:00.000Z" }, 300_000],
    ["a past Timestamp does not wait", { Timestamp: "2020-01-01T00:00:00Z" }, {}, 0],
    ["JSONata Seconds", { QueryLanguage: "JSONata", Seconds: "{% $states.input.s * 2 %}" }, { s: 5 }, 10_000],
  ])("%s", async (_n, state, input, waited) => {
    const h = harness();
    const t0 = h.clock.now();
    const r = await h.run(single({ Type: "Wait", ...state }), input);
    expect(r.view.status).toBe("SUCCEEDED");
    expect(h.clock.now() - t0).toBe(waited);
    const entered = r.events.find((e) => e.type === "WaitStateEntered")!;
    const exited = r.events.find((e) => e.type === "WaitStateExited")!;
    expect(exited.timestamp.getTime() - entered.timestamp.getTime()).toBe(waited);
  });

  it("a non-integer SecondsPath fails with States.Runtime", async () => {
    const r = await harness().run(single({ Type: "Wait", SecondsPath: "$.s" }), { s: "ten" });
    expect(r.view).toMatchObject({ status: "FAILED", error: "States.Runtime" });
  });
});

describe("Succeed and Fail", () => {
  it("Succeed ends the execution with its (filtered) input", async () => {
    const r = await harness().run(single({ Type: "Succeed", OutputPath: "$.keep" }), { keep: 1, drop: 2 });
    expect(output(r.view)).toBe(1);
    expect(types(r.events)).toContain("SucceedStateExited");
  });

  it.each([
    ["Error and Cause", { Error: "kiln.StepFailed", Cause: "install failed" }, {}, "kiln.StepFailed", "install failed"],
    [
      "ErrorPath and CausePath",
      { ErrorPath: "$.e", CausePath: "States.Format('at {}', $.where)" },
      { e: "kiln.X", where: "bake" },
      "kiln.X",
      "at bake",
    ],
    [
      "JSONata",
      { QueryLanguage: "JSONata", Error: "{% 'kiln.' & $states.input.e %}", Cause: "static" },
      { e: "Y" },
      "kiln.Y",
      "static",
    ],
  ])("Fail with %s", async (_n, state, input, error, cause) => {
    const r = await harness().run(single({ Type: "Fail", ...state, End: undefined }), input);
    expect(r.view).toMatchObject({ status: "FAILED", error, cause });
    expect(types(r.events)).toEqual(["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]);
  });
});

describe("Parallel", () => {
  const branch = (fn: string): StatesGraph => ({
    StartAt: "T",
    States: { T: { Type: "Task", Resource: lambdaArn(fn), End: true } },
  });
  it("runs every branch on the same input and returns their outputs in order", async () => {
    const h = harness({ fns: { a: (p: any) => p.v + 1, b: (p: any) => p.v * 10 } });
    const r = await h.run(single({ Type: "Parallel", Branches: [branch("a"), branch("b")], ResultPath: "$.out" }), { v: 2 });
    expect(output(r.view)).toEqual({ v: 2, out: [3, 20] });
    expect(types(r.events)).toEqual(
      expect.arrayContaining(["ParallelStateEntered", "ParallelStateStarted", "ParallelStateSucceeded", "ParallelStateExited"]),
    );
  });

  it("a failing branch fails the state with the branch's error and stops the others", async () => {
    const h = harness({
      fns: {
        bad: () => {
          throw new FnError("kiln.StepFailed", "nope");
        },
      },
    });
    const slow: StatesGraph = { StartAt: "W", States: { W: { Type: "Wait", Seconds: 600, End: true } } };
    const r = await h.run(single({ Type: "Parallel", Branches: [slow, branch("bad")] }));
    expect(r.view).toMatchObject({ status: "FAILED", error: "kiln.StepFailed" });
    expect(types(r.events)).toEqual(expect.arrayContaining(["WaitStateAborted", "ParallelStateFailed"]));
    expect(types(r.events)).not.toContain("ParallelStateExited");
  });
});

describe("Map", () => {
  const proc = (fn: string): StatesGraph =>
    ({
      ProcessorConfig: { Mode: "INLINE" },
      StartAt: "T",
      States: { T: { Type: "Task", Resource: lambdaArn(fn), End: true } },
    }) as StatesGraph;

  it("ItemsPath + ItemSelector with $$.Map.Item, results in item order", async () => {
    const h = harness({ fns: { echo } });
    const r = await h.run(
      single({
        Type: "Map",
        ItemsPath: "$.regions",
        ItemSelector: { "region.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "commit.$": "$.commit" },
        ItemProcessor: proc("echo"),
      }),
      { regions: ["us-east-1", "eu-west-1"], commit: "abc" },
    );
    expect(output(r.view)).toEqual([
      { region: "us-east-1", index: 0, commit: "abc" },
      { region: "eu-west-1", index: 1, commit: "abc" },
    ]);
    expect(r.events.find((e) => e.type === "MapStateStarted")?.mapStateStartedEventDetails).toEqual({ length: 2 });
    expect(r.events.filter((e) => e.type === "MapIterationSucceeded").map((e) => e.mapIterationSucceededEventDetails)).toEqual([
      { name: "S", index: 0 },
      { name: "S", index: 1 },
    ]);
  });

  it("the legacy Iterator and Parameters fields work", async () => {
    const r = await harness({ fns: { echo } }).run(
      single({ Type: "Map", Parameters: { "v.$": "$$.Map.Item.Value" }, Iterator: proc("echo") }),
      [1, 2],
    );
    expect(output(r.view)).toEqual([{ v: 1 }, { v: 2 }]);
  });

  it.each([
    [1, 40_000],
    [2, 20_000],
    [0, 10_000],
  ])("MaxConcurrency %i bounds the iterations in flight", async (max, elapsed) => {
    const h = harness();
    const wait: StatesGraph = { StartAt: "W", States: { W: { Type: "Wait", Seconds: 10, End: true } } };
    const t0 = h.clock.now();
    const r = await h.run(single({ Type: "Map", MaxConcurrency: max, ItemProcessor: wait }), [1, 2, 3, 4]);
    expect(r.view.status).toBe("SUCCEEDED");
    expect(h.clock.now() - t0).toBe(elapsed);
  });

  it("JSONata Items, ItemSelector and Output", async () => {
    const r = await harness({ fns: { echo } }).run(
      single({
        QueryLanguage: "JSONata",
        Type: "Map",
        Items: "{% $states.input.list %}",
        ItemSelector: { v: "{% $states.context.Map.Item.Value * 2 %}" },
        ItemProcessor: { StartAt: "P", States: { P: { Type: "Pass", End: true } } },
        Output: "{% $states.result.v %}",
      }),
      { list: [1, 2, 3] },
    );
    expect(output(r.view)).toEqual([2, 4, 6]);
  });

  it.each([
    ["within ToleratedFailureCount", { ToleratedFailureCount: 1 }, "SUCCEEDED", undefined],
    ["beyond ToleratedFailureCount", { ToleratedFailureCount: 0 }, "FAILED", "States.ExceedToleratedFailureThreshold"],
    ["within ToleratedFailurePercentage", { ToleratedFailurePercentage: 50 }, "SUCCEEDED", undefined],
    ["no tolerance: the iteration's error", {}, "FAILED", "kiln.StepFailed"],
  ])("a failing iteration %s", async (_n, tol, status, error) => {
    const h = harness({
      fns: {
        odd: (p: any) => {
          if (p === 2) throw new FnError("kiln.StepFailed", "two");
          return p;
        },
      },
    });
    const r = await h.run(single({ Type: "Map", ...tol, ItemProcessor: proc("odd") }), [1, 2, 3]);
    expect(r.view.status).toBe(status);
    expect(r.view.error).toBe(error);
    if (status === "SUCCEEDED")
      expect(output(r.view)).toEqual([1, { Error: "kiln.StepFailed", Cause: expect.stringContaining("two") }, 3]);
  });

  it("ItemsPath that is not an array fails with States.Runtime", async () => {
    const r = await harness().run(single({ Type: "Map", ItemsPath: "$.x", ItemProcessor: proc("echo") }), { x: 1 });
    expect(r.view).toMatchObject({ status: "FAILED", error: "States.Runtime" });
  });
});

describe("Task integrations", () => {
  it("legacy function ARN: the payload is the result, LambdaFunction* events", async () => {
    const h = harness({ fns: { echo } });
    const r = await h.run(single({ Type: "Task", Resource: lambdaArn("echo"), Parameters: { "x.$": "$.a" } }), { a: 1 });
    expect(output(r.view)).toEqual({ x: 1 });
    expect(types(r.events)).toEqual([
      "ExecutionStarted",
      "TaskStateEntered",
      "LambdaFunctionScheduled",
      "LambdaFunctionStarted",
      "LambdaFunctionSucceeded",
      "TaskStateExited",
      "ExecutionSucceeded",
    ]);
    expect(r.events[2]!.lambdaFunctionScheduledEventDetails).toEqual({
      resource: lambdaArn("echo"),
      input: '{"x":1}',
      inputDetails: { truncated: false },
    });
  });

  it("lambda:invoke: the result carries Payload, StatusCode and the SDK metadata", async () => {
    const h = harness({ fns: { echo } });
    const r = await h.run(
      single({
        Type: "Task",
        Resource: "arn:aws:states:::lambda:invoke",
        Parameters: { FunctionName: "echo", "Payload.$": "$" },
      }),
      { a: 1 },
    );
    expect(output(r.view)).toMatchObject({
      ExecutedVersion: "$LATEST",
      Payload: { a: 1 },
      StatusCode: 200,
      SdkHttpMetadata: { HttpStatusCode: 200 },
    });
    const scheduled = r.events.find((e) => e.type === "TaskScheduled")!;
    expect(scheduled.taskScheduledEventDetails).toMatchObject({
      resourceType: "lambda",
      resource: "invoke",
      region: "us-east-1",
      parameters: '{"FunctionName":"echo","Payload":{"a":1}}',
    });
  });

  it("a function error becomes the task error with Lambda's cause", async () => {
    const h = harness({
      fns: {
        throttled: () => {
          throw new FnError("kiln.Throttled", "EC2 is throttling");
        },
      },
    });
    const r = await h.run(
      single({ Type: "Task", Resource: "arn:aws:states:::lambda:invoke", Parameters: { FunctionName: "throttled" } }),
    );
    expect(r.view).toMatchObject({
      status: "FAILED",
      error: "kiln.Throttled",
      cause: '{"errorMessage":"EC2 is throttling","errorType":"kiln.Throttled","trace":[]}',
    });
    expect(r.events.find((e) => e.type === "TaskFailed")?.taskFailedEventDetails).toMatchObject({
      resourceType: "lambda",
      resource: "invoke",
      error: "kiln.Throttled",
    });
  });

  it.each([
    ["a missing function", "nope", "Lambda.ResourceNotFoundException"],
    ["throttling", "busy", "Lambda.TooManyRequestsException"],
    ["a crash without errorType", "crash", "Lambda.Unknown"],
  ])("an invocation failure (%s) is %s", async (_n, fn, error) => {
    const h = harness({
      fns: {
        busy: () => {
          throw Object.assign(new Error("Rate exceeded"), { name: "TooManyRequestsException" });
        },
      },
    });
    // A crash: a function error with no errorType in the payload.
    h.engine.deps.invokeLambda = (async (arn: string, _p: unknown) => {
      if (arn === "crash") return { functionError: "Unhandled", payload: { errorMessage: "Runtime exited" } };
      if (arn === "busy") throw Object.assign(new Error("Rate exceeded"), { name: "TooManyRequestsException" });
      throw Object.assign(new Error(`Function not found: ${arn}`), { name: "ResourceNotFoundException" });
    }) as typeof h.engine.deps.invokeLambda;
    const r = await h.run(
      single({ Type: "Task", Resource: "arn:aws:states:::lambda:invoke", Parameters: { FunctionName: fn, Payload: {} } }),
    );
    expect(r.view).toMatchObject({ status: "FAILED", error });
  });

  it.each([
    [
      "aws-sdk EC2 (unmodelled errors)",
      "arn:aws:states:::aws-sdk:ec2:describeInstances",
      "InvalidInstanceID.NotFound",
      "Ec2.Ec2Exception",
    ],
    [
      "aws-sdk DynamoDB",
      "arn:aws:states:::aws-sdk:dynamodb:putItem",
      "ConditionalCheckFailedException",
      "DynamoDb.ConditionalCheckFailedException",
    ],
    [
      "aws-sdk SSM without the suffix",
      "arn:aws:states:::aws-sdk:ssm:getParameter",
      "ParameterNotFound",
      "Ssm.ParameterNotFoundException",
    ],
    [
      "optimised DynamoDB",
      "arn:aws:states:::dynamodb:putItem",
      "ConditionalCheckFailedException",
      "DynamoDB.ConditionalCheckFailedException",
    ],
    ["optimised SNS", "arn:aws:states:::sns:publish", "NotFoundException", "SNS.NotFoundException"],
  ])("%s errors are named %s", async (_n, resource, code, error) => {
    const h = harness({
      aws: () => {
        throw Object.assign(new Error("boom"), { name: code, $metadata: { httpStatusCode: 400 } });
      },
    });
    const r = await h.run(single({ Type: "Task", Resource: resource, Parameters: { A: 1 } }));
    expect(r.view).toMatchObject({
      status: "FAILED",
      error: expect.stringMatching(new RegExp(`^${error.replace(".", "\\.")}$`)),
    });
    expect(r.view.cause).toContain(code);
  });

  it.each([
    ["arn:aws:states:::aws-sdk:ec2:describeInstances", "ec2", "DescribeInstances", "aws-sdk:ec2", "describeInstances"],
    ["arn:aws:states:::events:putEvents", "events", "PutEvents", "events", "putEvents"],
    ["arn:aws:states:::sns:publish", "sns", "Publish", "sns", "publish"],
    ["arn:aws:states:::dynamodb:updateItem", "dynamodb", "UpdateItem", "dynamodb", "updateItem"],
  ])("%s calls callAws(%s, %s) and drops $metadata", async (resource, service, action, resourceType, res) => {
    const h = harness({ aws: (_s, _a, p) => ({ $metadata: { httpStatusCode: 200 }, Echo: p }) });
    const r = await h.run(single({ Type: "Task", Resource: resource, Parameters: { "Id.$": "$.id" } }), { id: "i-1" });
    expect(h.awsCalls).toEqual([expect.objectContaining({ service, action, params: { Id: "i-1" } })]);
    expect(output(r.view)).toEqual({ Echo: { Id: "i-1" } });
    expect(r.events.find((e) => e.type === "TaskSucceeded")?.taskSucceededEventDetails).toMatchObject({
      resourceType,
      resource: res,
    });
  });
});

describe("variables and the context object", () => {
  it("JSONPath Assign is visible to later states ($var), not to the assigning state", async () => {
    const r = await harness().run(
      {
        StartAt: "A",
        States: {
          A: { Type: "Pass", Result: { n: 5 }, Assign: { "count.$": "$.n", label: "x" }, Next: "B" },
          B: { Type: "Pass", Parameters: { "count.$": "$count", "label.$": "$label" }, End: true },
        },
      },
      {},
    );
    expect(output(r.view)).toEqual({ count: 5, label: "x" });
    expect(r.events.find((e) => e.type === "PassStateExited")?.stateExitedEventDetails).toMatchObject({
      assignedVariables: { count: "5", label: '"x"' },
    });
  });

  it("JSONata Assign and Output both see the values from before the state", async () => {
    const r = await harness({ fns: { echo } }).run(
      {
        QueryLanguage: "JSONata",
        StartAt: "A",
        States: {
          A: { Type: "Pass", Assign: { n: 1 }, Next: "B" },
          B: {
            Type: "Task",
            Resource: "arn:aws:states:::lambda:invoke",
            Arguments: { FunctionName: "echo", Payload: { n: "{% $n %}" } },
            Assign: { n: "{% $states.result.Payload.n + 10 %}" },
            Output: { before: "{% $n %}", result: "{% $states.result.Payload %}" },
            Next: "C",
          },
          C: { Type: "Pass", Output: { after: "{% $n %}", prev: "{% $states.input %}" }, End: true },
        },
      },
      {},
    );
    expect(output(r.view)).toEqual({ after: 11, prev: { before: 1, result: { n: 1 } } });
  });

  it("Map iterations read outer variables; their own assignments stay inside", async () => {
    const r = await harness().run(
      {
        QueryLanguage: "JSONata",
        StartAt: "A",
        States: {
          A: { Type: "Pass", Assign: { base: 100, inner: "outer" }, Next: "M" },
          M: {
            Type: "Map",
            Items: [1, 2],
            ItemProcessor: {
              StartAt: "X",
              States: {
                X: { Type: "Pass", Assign: { inner: "{% $states.input %}" }, Next: "Y" },
                Y: { Type: "Pass", Output: "{% $base + $inner %}", End: true },
              },
            },
            Next: "Z",
          },
          Z: { Type: "Pass", Output: { r: "{% $states.input %}", inner: "{% $inner %}" }, End: true },
        },
      },
      {},
    );
    expect(output(r.view)).toEqual({ r: [101, 102], inner: "outer" });
  });

  it("the context object has the execution, state and state machine", async () => {
    const r = await harness().run(single({ Type: "Pass", Parameters: { "ctx.$": "$$" } }), { in: 1 }, "ctx-run");
    expect((output(r.view) as any).ctx).toEqual({
      Execution: {
        Id: "arn:aws:states:us-east-1:123456789012:execution:test:ctx-run",
        Input: { in: 1 },
        Name: "ctx-run",
        RoleArn: "arn:aws:iam::123456789012:role/kiln-local-states",
        StartTime: "2026-01-05T09:00:00.000Z",
        RedriveCount: 0,
      },
      State: { EnteredTime: "2026-01-05T09:00:00.000Z", Name: "S", RetryCount: 0 },
      StateMachine: { Id: "arn:aws:states:us-east-1:123456789012:stateMachine:test", Name: "test" },
    });
  });
});

describe("data-processing errors", () => {
  it.each([
    ["InputPath", { Type: "Pass", InputPath: "$.nope" }, "States.Runtime"],
    ["Parameters", { Type: "Pass", Parameters: { "x.$": "$.nope" } }, "States.ParameterPathFailure"],
    ["ResultPath", { Type: "Pass", Result: 1, ResultPath: "$.a.b" }, "States.ResultPathMatchFailure"],
    ["intrinsic", { Type: "Pass", Parameters: { "x.$": "States.StringToJson($.a)" } }, "States.IntrinsicFailure"],
    ["JSONata", { Type: "Pass", QueryLanguage: "JSONata", Output: "{% $undefinedFn() %}" }, "States.QueryEvaluationError"],
  ])("%s", async (_n, state, error) => {
    const r = await harness().run(single(state), { a: "not json" });
    expect(r.view).toMatchObject({ status: "FAILED", error });
    expect(r.view.cause).toMatch(/^An error occurred while executing the state 'S' \(entered at the event id #2\)\. /);
  });
});
