import { describe, expect, it } from "vitest";
import { StatesError } from "../../../local/states/engine/errors.ts";
import { evaluateIntrinsic } from "../../../local/states/engine/intrinsics.ts";
import {
  applyInputPath,
  applyOutputPath,
  applyPayloadTemplate,
  applyResultPath,
  applyResultSelector,
} from "../../../local/states/engine/io.ts";
import { type PathRefs, isDefinite, queryPath } from "../../../local/states/engine/jsonpath.ts";
import { evaluateTemplate } from "../../../local/states/engine/jsonata.ts";
import { errorMatches, retryDelayMs } from "../../../local/states/engine/retry.ts";
import { evaluateRule, stringMatches } from "../../../local/states/engine/states/choice.ts";

const refs: PathRefs = {
  context: { Execution: { Id: "arn:exec", Name: "run-1" }, State: { Name: "S", RetryCount: 0 } },
  variable: (n) => (n === "region" ? { found: true, value: { name: "us-east-1", azs: ["a", "b"] } } : { found: false }),
};
const env = { refs, random: () => 0.5 };

function errorOf(fn: () => unknown): { error: string; cause: string } | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof StatesError) return { error: e.error, cause: e.causeText };
    throw e;
  }
  return undefined;
}

describe("JSONPath", () => {
  const data = {
    a: { b: [1, 2, 3], "odd key": "x" },
    items: [
      { id: 1, ok: true },
      { id: 2, ok: false },
    ],
  };
  it.each([
    ["$", data],
    ["$.a.b[1]", 2],
    ["$.a['odd key']", "x"],
    ["$.a.b[*]", [1, 2, 3]],
    ["$.items[?(@.ok == true)].id", [1]],
    ["$..id", [1, 2]],
    ["$.items[0:1]", [{ id: 1, ok: true }]],
    ["$$.Execution.Name", "run-1"],
    ["$region.azs[1]", "b"],
  ])("%s", (path, expected) => {
    expect(queryPath(path, data, refs)).toEqual(expected);
  });
  it.each([["$.missing"], ["$.a.b[9]"], ["$nope"], ["$$.Nope"]])("a definite path that selects nothing fails: %s", (p) => {
    expect(() => queryPath(p, data, refs)).toThrow(/No results/);
  });
  it.each([
    ["$.a.b", true],
    ["$.a.b[*]", false],
    ["$..id", false],
    ["$.a[0:2]", false],
    ["$.a[?(@.x)]", false],
  ])("definite(%s) = %s", (p, d) => expect(isDefinite(p)).toBe(d));
});

describe("input and output processing (AWS developer guide examples)", () => {
  it("InputPath selects part of the input", () => {
    const input = {
      comment: "Example for InputPath.",
      dataset1: { val1: 1, val2: 2, val3: 3 },
      dataset2: { val1: "a", val2: "b", val3: "c" },
    };
    expect(applyInputPath(input, "$.dataset2", refs)).toEqual({ val1: "a", val2: "b", val3: "c" });
    expect(applyInputPath(input, null, refs)).toEqual({});
    expect(applyInputPath(input, undefined, refs)).toBe(input);
  });

  it("Parameters build a new payload with .$ fields, static values and the context object", () => {
    const input = {
      comment: "Example for Parameters.",
      product: {
        details: { color: "blue", size: "small", material: "cotton" },
        availability: "in stock",
        sku: "2317",
        cost: "$23",
      },
    };
    const params = {
      comment: "Selecting what I care about.",
      MyDetails: { "size.$": "$.product.details.size", "exists.$": "$.product.availability", StaticValue: "foo" },
      "execution.$": "$$.Execution.Id",
      "region.$": "$region.name",
    };
    expect(applyPayloadTemplate(params, input, env)).toEqual({
      comment: "Selecting what I care about.",
      MyDetails: { size: "small", exists: "in stock", StaticValue: "foo" },
      execution: "arn:exec",
      region: "us-east-1",
    });
  });

  it("ResultSelector keeps only what the state needs from the result", () => {
    const result = {
      resourceType: "elasticmapreduce",
      resource: "createCluster.sync",
      output: {
        SdkHttpMetadata: { HttpStatusCode: 200 },
        SdkResponseMetadata: { RequestId: "1234-5678-9012" },
        ClusterId: "AKIAIOSFODNN7EXAMPLE",
      },
    };
    expect(applyResultSelector(result, { "ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType" }, env)).toEqual(
      {
        ClusterId: "AKIAIOSFODNN7EXAMPLE",
        ResourceType: "elasticmapreduce",
      },
    );
  });

  const input = {
    comment: "This is a test of the input and output of a Task state.",
    details: "Default example",
    who: "AWS Step Functions",
  };
  const result = "Hello, AWS Step Functions!";
  it.each([
    ["$ (default): the result replaces the input", "$", result],
    ["null: the input passes through", null, input],
    ["$.taskresult: the result is added to the input", "$.taskresult", { ...input, taskresult: result }],
    [
      "$.strings.lambdaresult: missing objects are created",
      "$.strings.lambdaresult",
      { ...input, strings: { lambdaresult: result } },
    ],
  ])("ResultPath %s", (_what, path, expected) => {
    expect(applyResultPath(input, result, path as string | null)).toEqual(expected);
    // The input itself is never mutated.
    expect(input).not.toHaveProperty("taskresult");
  });

  it("ResultPath through a non-object is States.ResultPathMatchFailure", () => {
    expect(errorOf(() => applyResultPath({ who: "x" }, 1, "$.who.name"))).toMatchObject({
      error: "States.ResultPathMatchFailure",
    });
  });

  it("OutputPath selects the output; null gives {}", () => {
    const out = { ...input, taskresult: result };
    expect(applyOutputPath(out, "$.taskresult", refs)).toBe(result);
    expect(applyOutputPath(out, null, refs)).toEqual({});
    expect(errorOf(() => applyOutputPath(out, "$.nope", refs))).toMatchObject({ error: "States.Runtime" });
  });

  it("a missing .$ path is States.ParameterPathFailure with AWS's message", () => {
    expect(errorOf(() => applyPayloadTemplate({ "x.$": "$.missing" }, { a: 1 }, env))).toEqual({
      error: "States.ParameterPathFailure",
      cause: `The JSONPath '$.missing' specified for the field 'x.$' could not be found in the input '{"a":1}'`,
    });
  });
});

describe("intrinsic functions", () => {
  const data = {
    name: "kiln",
    n: 3,
    list: [1, 2, 2, { a: 1 }, { a: 1 }],
    json: '{"k":[1,2]}',
    s: "a,b,,c",
    o1: { a: 1, b: 1 },
    o2: { b: 2 },
  };
  it.each([
    ["States.Format('Hello, {}! n={}', $.name, $.n)", "Hello, kiln! n=3"],
    ["States.Format('literal \\{\\} and {}', $.name)", "literal {} and kiln"],
    ["States.Format('it\\'s {}', $$.Execution.Name)", "it's run-1"],
    ["States.StringToJson($.json)", { k: [1, 2] }],
    ["States.JsonToString($.o1)", '{"a":1,"b":1}'],
    ["States.Array($.name, 1, true, null)", ["kiln", 1, true, null]],
    ["States.ArrayPartition(States.Array(1,2,3,4,5), 2)", [[1, 2], [3, 4], [5]]],
    ["States.ArrayContains($.list, $.o2)", false],
    ["States.ArrayContains($.list, 2)", true],
    ["States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]],
    ["States.ArrayRange(5, 1, -2)", [5, 3, 1]],
    ["States.ArrayGetItem($.list, 1)", 2],
    ["States.ArrayLength($.list)", 5],
    ["States.ArrayUnique($.list)", [1, 2, { a: 1 }]],
    ["States.Base64Encode('Data to encode')", "RGF0YSB0byBlbmNvZGU="],
    ["States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "Data to encode"],
    ["States.Hash('input data', 'SHA-1')", "aaff4a450a104cd177d28d18d74485e8cae074b7"],
    ["States.Hash('input data', 'MD5')", "812f45842bc6d66ee14572ce20db8e86"],
    ["States.JsonMerge($.o1, $.o2, false)", { a: 1, b: 2 }],
    ["States.MathRandom(1, 11)", 6],
    ["States.MathAdd($.n, -1)", 2],
    ["States.StringSplit($.s, ',')", ["a", "b", "c"]],
    ["States.StringSplit('This.is+a,test=string', '.+,=')", ["This", "is", "a", "test", "string"]],
    ["States.ArrayLength(States.StringSplit($region.name, '-'))", 3],
  ])("%s", (expr, expected) => {
    expect(evaluateIntrinsic(expr, { data, refs, random: () => 0.5 })).toEqual(expected);
  });

  it("States.UUID gives a v4 UUID from the seeded source", () => {
    const u = evaluateIntrinsic("States.UUID()", { data, refs, random: () => 0.25 });
    expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it.each([
    ["States.Format('{} {}', $.name)"],
    ["States.ArrayGetItem($.list, 9)"],
    ["States.JsonMerge($.o1, $.o2, true)"],
    ["States.Hash($.name, 'SHA-3')"],
    ["States.StringToJson($.name)"],
    ["States.MathAdd($.name, 1)"],
    ["States.Nope(1)"],
    ["States.Format($.missing)"],
    ["States.ArrayRange(0, 2000, 1)"],
  ])("%s fails with States.IntrinsicFailure", (expr) => {
    expect(errorOf(() => evaluateIntrinsic(expr, { data, refs, random: () => 0.5 }))?.error).toBe("States.IntrinsicFailure");
  });
});

describe("Choice rules", () => {
  const data = { s: "blue", n: 10, b: true, t: "2026-01-05T09:00:00Z", nil: null, other: 10, list: [] };
  it.each([
    [{ Variable: "$.s", StringEquals: "blue" }, true],
    [{ Variable: "$.s", StringLessThan: "c" }, true],
    [{ Variable: "$.s", StringGreaterThanEquals: "blue" }, true],
    [{ Variable: "$.s", StringMatches: "bl*" }, true],
    [{ Variable: "$.s", StringMatches: "b\\*" }, false],
    [{ Variable: "$.n", NumericEquals: 10 }, true],
    [{ Variable: "$.n", NumericEqualsPath: "$.other" }, true],
    [{ Variable: "$.n", NumericGreaterThan: 10 }, false],
    [{ Variable: "$.n", NumericLessThanEquals: 10 }, true],
    [{ Variable: "$.s", NumericEquals: 10 }, false],
    [{ Variable: "$.b", BooleanEquals: true }, true],
    [{ Variable: "$.t", TimestampEquals: "2026-01-05T10:00:00+01:00" }, true],
    [{ Variable: "$.t", TimestampLessThan: "2026-01-05T09:00:01Z" }, true],
    [{ Variable: "$.t", TimestampGreaterThanPath: "$.t" }, false],
    [{ Variable: "$.nil", IsNull: true }, true],
    [{ Variable: "$.missing", IsPresent: false }, true],
    [{ Variable: "$.s", IsPresent: true }, true],
    [{ Variable: "$.n", IsNumeric: true }, true],
    [{ Variable: "$.s", IsString: true }, true],
    [{ Variable: "$.b", IsBoolean: true }, true],
    [{ Variable: "$.t", IsTimestamp: true }, true],
    [{ Variable: "$.s", IsTimestamp: true }, false],
    [
      {
        And: [
          { Variable: "$.n", NumericGreaterThan: 5 },
          { Variable: "$.s", StringEquals: "blue" },
        ],
      },
      true,
    ],
    [
      {
        Or: [
          { Variable: "$.n", NumericGreaterThan: 50 },
          { Variable: "$.b", BooleanEquals: false },
        ],
      },
      false,
    ],
    [{ Not: { Variable: "$.s", StringEquals: "green" } }, true],
    [{ Variable: "$region.name", StringEquals: "us-east-1" }, true],
    [{ Variable: "$$.State.Name", StringEquals: "S" }, true],
  ])("%j → %s", (rule, expected) => {
    expect(evaluateRule(rule, data, refs)).toBe(expected);
  });

  it("a comparison on a missing variable is States.Runtime", () => {
    expect(errorOf(() => evaluateRule({ Variable: "$.missing", StringEquals: "x" }, data, refs))?.error).toBe("States.Runtime");
  });

  it.each([
    ["log-*.txt", "log-2026.txt", true],
    ["*.txt", "a.csv", false],
    ["a\\*b", "a*b", true],
    ["a\\*b", "axxb", false],
    ["*", "", true],
  ])("StringMatches %s ~ %s = %s", (p, v, e) => expect(stringMatches(v, p)).toBe(e));
});

describe("Retry", () => {
  it.each([
    [["States.ALL"], "kiln.Throttled", true],
    [["States.ALL"], "States.Runtime", false],
    [["States.ALL"], "States.DataLimitExceeded", false],
    [["States.TaskFailed"], "Lambda.ServiceException", true],
    [["States.TaskFailed"], "States.Timeout", false],
    [["States.Timeout"], "States.Timeout", true],
    [["kiln.NotReady", "kiln.Throttled"], "kiln.Throttled", true],
    [["kiln.NotReady"], "kiln.Throttled", false],
  ])("ErrorEquals %j matches %s: %s", (eq, err, m) => expect(errorMatches(eq, err)).toBe(m));

  it.each([
    [{ ErrorEquals: ["x"] }, [1000, 2000, 4000]],
    [{ ErrorEquals: ["x"], IntervalSeconds: 3, BackoffRate: 1.5 }, [3000, 4500, 6750]],
    [{ ErrorEquals: ["x"], IntervalSeconds: 10, BackoffRate: 3, MaxDelaySeconds: 50 }, [10000, 30000, 50000]],
    [{ ErrorEquals: ["x"], IntervalSeconds: 4, JitterStrategy: "FULL" as const }, [2000, 4000, 8000]],
  ])("delays of %j", (r, delays) => {
    expect([0, 1, 2].map((a) => retryDelayMs(r, a, () => 0.5))).toEqual(delays);
  });
});

describe("JSONata", () => {
  const jenv = {
    states: { input: { items: [1, 2, 3], who: "kiln" }, context: { Execution: { Name: "run-1" } }, result: { ok: true } },
    variables: { limit: 2 },
    now: () => Date.parse("2026-01-05T09:00:00.000Z"),
    random: () => 0.5,
  };
  it.each([
    ["{% $states.input.who %}", "kiln"],
    ["{% $sum($states.input.items) %}", 6],
    ["{% $states.input.items[$ > $limit] %}", 3],
    ["{% $states.context.Execution.Name & '-x' %}", "run-1-x"],
    ["{% $now() %}", "2026-01-05T09:00:00.000Z"],
    ["{% $partition([1,2,3], 2) %}", [[1, 2], [3]]],
    ["{% $range(0, 4, 2) %}", [0, 2, 4]],
    ["{% $hash('input data', 'SHA-1') %}", "aaff4a450a104cd177d28d18d74485e8cae074b7"],
    ["{% $parse('{\"a\":1}') %}", { a: 1 }],
    [
      { total: "{% $count($states.input.items) %}", fixed: 1, nested: ["{% $states.result.ok %}"] },
      { total: 3, fixed: 1, nested: [true] },
    ],
    [{ gone: "{% $states.input.nope %}", kept: 1 }, { kept: 1 }],
  ])("%j", async (tpl, expected) => {
    expect(await evaluateTemplate(tpl, jenv)).toEqual(expected);
  });

  it("an evaluation error is States.QueryEvaluationError", async () => {
    await expect(evaluateTemplate("{% $number('x') + %}", jenv)).rejects.toMatchObject({ error: "States.QueryEvaluationError" });
  });
});
