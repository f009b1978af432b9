/**
 * `kiln redrive` after a failed canary: a commit the canary judge or its alarms failed is a bad
 * commit, so a plain redrive is refused with the way forward (abort or a new push) and starts
 * nothing; `--force` redrives it (the judge then judges fresh traffic only). Other failures redrive
 * as before.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { executionName } from "../../lib/names.ts";
import { FakeStates, FakeTable, fakeTarget, MACHINES, useConfig } from "./fake-target.ts";
import { runCli } from "./run-cli.ts";

const COMMIT = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
const previousConfig = process.env.KILN_CONFIG;

const run = (target: ReturnType<typeof fakeTarget>, ...argv: string[]) => runCli(argv, target);

describe("kiln redrive after a failed canary", () => {
  let states: FakeStates;
  let target: ReturnType<typeof fakeTarget>;
  beforeAll(() => useConfig({}));
  afterAll(() => {
    if (previousConfig === undefined) delete process.env.KILN_CONFIG;
    else process.env.KILN_CONFIG = previousConfig;
  });
  beforeEach(() => {
    states = new FakeStates();
    target = fakeTarget(states, new FakeTable());
  });

  const failed = (seq: number, error: string, message: string) =>
    states.add({
      stateMachineArn: MACHINES.deploy,
      name: executionName("web", "production", COMMIT, "push", seq),
      input: JSON.stringify({ service: "web", environment: "production", commit: COMMIT, trigger: "push", seq }),
      status: "FAILED",
      error,
      cause: JSON.stringify({ errorType: error, errorMessage: message, trace: ["at bake (/var/task/index.js:1:1)"] }),
    });

  it("refuses a commit the canary failed (exit 2, nothing redriven) and says what to do instead", async () => {
    const e = failed(1, "kiln.VerificationFailed", "judge: 5xx 4.1 % on green vs 0.0 % on blue (p=1e-9)\nmore detail");
    const r = await run(target, "redrive", e.executionArn);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain(
      `not redriven: ${e.executionArn} failed the canary: judge: 5xx 4.1 % on green vs 0.0 % on blue (p=1e-9)`,
    );
    expect(r.err).toContain(`npx kiln abort ${e.executionArn}`);
    expect(r.err).toContain(`npx kiln redrive ${e.executionArn} --force`);
    expect(states.redriven).toEqual([]);
  });

  it("redrives it with --force", async () => {
    const e = failed(2, "kiln.VerificationFailed", "alarm web-5xx in ALARM");
    const r = await run(target, "redrive", e.name, "--force");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`redriven ${e.executionArn}`);
    expect(states.redriven).toEqual([e.executionArn]);
  });

  it("redrives any other failure without asking", async () => {
    const e = failed(3, "kiln.StepFailed", "CreateGreenFleet: throttled");
    const r = await run(target, "redrive", e.executionArn);
    expect(r.code, r.err).toBe(0);
    expect(states.redriven).toEqual([e.executionArn]);
  });
});
