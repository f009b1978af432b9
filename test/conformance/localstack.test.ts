/**
 * Conformance to executions recorded on real AWS (LocalStack's aws.validated snapshots, see
 * localstack.ts and extract/localstack_cases.py). Each feature keeps at least the matches measured
 * when the figure in docs/local-step-functions.md was taken: a regression in the engine fails here.
 * `npx tsx test/conformance/measure.ts` lists every miss.
 */
import { describe, expect, it } from "vitest";
import { type Case, type ExecutionCase, loadCases, runExecutionCase, runRejectCase, runValidateCase } from "./localstack.ts";

const cases = loadCases();
const feature = (c: Case) =>
  c.id
    .replace("tests/aws/services/stepfunctions/v2/", "")
    .split("/")[0]!
    .replace(/\.py::.*/, "");

/** Matches measured per feature (executions), and for definitions AWS refused / validated. */
const FLOORS: Record<string, number> = {
  assign: 22,
  base: 27,
  comments: 1,
  context_object: 4,
  error_handling: 0,
  evaluate_jsonata: 10,
  intrinsic_functions: 155,
  query_language: 8,
  scenarios: 50,
};

describe("executions recorded on AWS", () => {
  const byFeature = new Map<string, ExecutionCase[]>();
  for (const c of cases) if (c.kind === "execution") byFeature.set(feature(c), [...(byFeature.get(feature(c)) ?? []), c]);

  it("every feature of the corpus has a floor", () => {
    expect([...byFeature.keys()].sort()).toEqual(Object.keys(FLOORS).sort());
  });

  for (const [name, list] of byFeature) {
    it(`${name}: result, error, cause and event types as AWS recorded them`, async () => {
      const results = [];
      // The validator is measured by measure.ts (≈0.3 s per definition); here the engine runs alone.
      for (const c of list) results.push(await runExecutionCase(c, { validate: false }));
      const ok = results.filter((r) => r.ok).length;
      expect(
        ok,
        results
          .filter((r) => !r.ok)
          .map((r) => `${r.id}: ${r.why}`)
          .join("\n"),
      ).toBeGreaterThanOrEqual(FLOORS[name] ?? list.length);
    }, 60_000);
  }
});

describe("definitions", () => {
  it("ValidateStateMachineDefinition verdicts and refused definitions", () => {
    const v = cases.filter((c) => c.kind === "validate").map((c) => runValidateCase(c));
    const r = cases.filter((c) => c.kind === "reject").map((c) => runRejectCase(c));
    expect(v.filter((x) => x.ok).length).toBeGreaterThanOrEqual(9);
    expect(r.filter((x) => x.ok).length).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
