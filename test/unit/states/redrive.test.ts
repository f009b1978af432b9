import { describe, expect, it } from "vitest";
import type { HistoryEvent, StatesGraph } from "../../../local/states/engine/types.ts";
import { FnError, harness, lambdaArn, output, types } from "./harness.ts";

/** Events after the last ExecutionRedriven. */
const afterRedrive = (events: HistoryEvent[]) => events.slice(events.map((e) => e.type).lastIndexOf("ExecutionRedriven"));

/** A function that fails while `broken` holds its input, then works. */
function switchable() {
  const broken = new Set<unknown>();
  const fn = (p: any) => {
    const key = p && typeof p === "object" && "item" in p ? p.item : p;
    if (broken.has(key)) throw new FnError("kiln.StepFailed", `item ${JSON.stringify(key)} failed`);
    return p;
  };
  return { broken, fn };
}

describe("redrive: top-level Task", () => {
  const def: StatesGraph = {
    StartAt: "Prepare",
    States: {
      Prepare: { Type: "Task", Resource: lambdaArn("prepare"), Assign: { "plan.$": "$.plan" }, Next: "Bake" },
      Bake: {
        Type: "Task",
        Resource: lambdaArn("bake"),
        Parameters: { "plan.$": "$plan", "redrives.$": "$$.Execution.RedriveCount" },
        Next: "Done",
      },
      Done: { Type: "Pass", End: true },
    },
  };

  it("resumes at the failed state only, with the same ARN, input and variables", async () => {
    let bakeOk = false;
    const h = harness({
      fns: {
        prepare: () => ({ plan: "p-1" }),
        bake: (p: any) => {
          if (!bakeOk) throw new FnError("kiln.StepFailed", "install script failed");
          return { baked: p.plan, redrives: p.redrives };
        },
      },
    });
    const exec = h.start(def, { svc: "web" }, "deploy-1");
    const failed = await exec.whenDone();
    expect(failed).toMatchObject({ status: "FAILED", error: "kiln.StepFailed", redriveStatus: "REDRIVABLE", redriveCount: 0 });
    const failedCount = exec.history.events.length;

    bakeOk = true;
    await h.clock.sleep(3_600_000);
    const redriveDate = exec.redrive();
    const done = await exec.whenDone();
    expect(done).toMatchObject({ status: "SUCCEEDED", redriveCount: 1, executionArn: failed.executionArn });
    expect(done.redriveDate?.getTime()).toBe(redriveDate.getTime());
    expect(output(done)).toEqual({ baked: "p-1", redrives: 1 });
    // Prepare ran once; Bake twice.
    expect(h.calls.map((c) => c.fn)).toEqual(["prepare", "bake", "bake"]);

    const events = exec.history.events;
    expect(events[failedCount]).toMatchObject({
      id: failedCount + 1,
      type: "ExecutionRedriven",
      executionRedrivenEventDetails: { redriveCount: 1 },
    });
    expect(types(afterRedrive(events))).toEqual([
      "ExecutionRedriven",
      "TaskStateEntered",
      "LambdaFunctionScheduled",
      "LambdaFunctionStarted",
      "LambdaFunctionSucceeded",
      "TaskStateExited",
      "PassStateEntered",
      "PassStateExited",
      "ExecutionSucceeded",
    ]);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(h.statuses).toEqual(["RUNNING", "FAILED", "RUNNING", "SUCCEEDED"]);
    expect(exec.view()).toMatchObject({
      redriveStatus: "NOT_REDRIVABLE",
      redriveStatusReason: "Execution is SUCCEEDED and cannot be redriven",
    });
  });

  it("a Catch that routes to a Fail state fails again on redrive (the Fail state is what is redriven)", async () => {
    const h = harness({
      fns: {
        f: () => {
          throw new FnError("E", "x");
        },
      },
    });
    const exec = h.start({
      StartAt: "T",
      States: {
        T: { Type: "Task", Resource: lambdaArn("f"), Catch: [{ ErrorEquals: ["States.ALL"], Next: "Failed" }], End: true },
        Failed: { Type: "Fail", Error: "kiln.Failed" },
      },
    });
    await exec.whenDone();
    exec.redrive();
    const v = await exec.whenDone();
    expect(v).toMatchObject({ status: "FAILED", error: "kiln.Failed", redriveCount: 1 });
    expect(h.calls).toHaveLength(1);
    expect(types(afterRedrive(exec.history.events))).toEqual(["ExecutionRedriven", "FailStateEntered", "ExecutionFailed"]);
  });
});

describe("redrive: Map", () => {
  it("re-runs only the failed iterations and keeps the others' results", async () => {
    const { broken, fn } = switchable();
    broken.add(1);
    broken.add(3);
    const h = harness({ fns: { work: fn } });
    const def: StatesGraph = {
      StartAt: "M",
      States: {
        M: {
          Type: "Map",
          MaxConcurrency: 1,
          ItemSelector: { "item.$": "$$.Map.Item.Value" },
          ItemProcessor: { StartAt: "Work", States: { Work: { Type: "Task", Resource: lambdaArn("work"), End: true } } },
          End: true,
        },
      },
    };
    const exec = h.start(def, [0, 1, 2, 3]);
    const failed = await exec.whenDone();
    expect(failed).toMatchObject({ status: "FAILED", error: "kiln.StepFailed" });
    // MaxConcurrency 1: item 1 failed, items 2 and 3 never started.
    expect(h.calls.map((c) => (c.payload as any).item)).toEqual([0, 1]);

    broken.delete(1);
    exec.redrive();
    const second = await exec.whenDone();
    expect(second.status).toBe("FAILED");
    expect(h.calls.map((c) => (c.payload as any).item)).toEqual([0, 1, 1, 2, 3]);

    broken.clear();
    exec.redrive();
    const done = await exec.whenDone();
    expect(done).toMatchObject({ status: "SUCCEEDED", redriveCount: 2 });
    expect(output(done)).toEqual([{ item: 0 }, { item: 1 }, { item: 2 }, { item: 3 }]);
    // Only item 3 ran again on the second redrive.
    expect(h.calls.map((c) => (c.payload as any).item)).toEqual([0, 1, 1, 2, 3, 3]);
    const last = afterRedrive(exec.history.events);
    expect(last.filter((e) => e.type === "MapIterationStarted").map((e) => e.mapIterationStartedEventDetails)).toEqual([
      { name: "M", index: 3 },
    ]);
    expect(types(last)).toEqual([
      "ExecutionRedriven",
      "MapStateEntered",
      "MapStateStarted",
      "MapIterationStarted",
      "TaskStateEntered",
      "LambdaFunctionScheduled",
      "LambdaFunctionStarted",
      "LambdaFunctionSucceeded",
      "TaskStateExited",
      "MapIterationSucceeded",
      "MapStateSucceeded",
      "MapStateExited",
      "ExecutionSucceeded",
    ]);
  });

  it("resumes a failed iteration at its failed inner state", async () => {
    const { broken, fn } = switchable();
    broken.add(2);
    const h = harness({ fns: { first: (p) => p, second: fn } });
    const def: StatesGraph = {
      StartAt: "M",
      States: {
        M: {
          Type: "Map",
          ItemProcessor: {
            StartAt: "A",
            States: {
              A: { Type: "Task", Resource: lambdaArn("first"), Next: "B" },
              B: { Type: "Task", Resource: lambdaArn("second"), End: true },
            },
          },
          End: true,
        },
      },
    };
    const exec = h.start(def, [1, 2, 3]);
    await exec.whenDone();
    const before = h.calls.length;
    broken.clear();
    exec.redrive();
    const v = await exec.whenDone();
    expect(output(v)).toEqual([1, 2, 3]);
    expect(h.calls.slice(before).map((c) => `${c.fn}(${JSON.stringify(c.payload)})`)).toEqual(["second(2)"]);
  });
});

describe("redrive: Parallel", () => {
  it("re-runs only the failed branch, from its failed state", async () => {
    const { broken, fn } = switchable();
    broken.add("green");
    const h = harness({ fns: { ok: (p) => p, flaky: fn, prep: (p) => p } });
    const def: StatesGraph = {
      StartAt: "P",
      States: {
        P: {
          Type: "Parallel",
          Branches: [
            { StartAt: "Blue", States: { Blue: { Type: "Task", Resource: lambdaArn("ok"), End: true } } },
            {
              StartAt: "Prep",
              States: {
                Prep: { Type: "Task", Resource: lambdaArn("prep"), Parameters: { v: "green" }, OutputPath: "$.v", Next: "Green" },
                Green: { Type: "Task", Resource: lambdaArn("flaky"), End: true },
              },
            },
          ],
          End: true,
        },
      },
    };
    const exec = h.start(def, "in");
    const failed = await exec.whenDone();
    expect(failed).toMatchObject({ status: "FAILED", error: "kiln.StepFailed" });
    expect(h.calls.map((c) => c.fn).sort()).toEqual(["flaky", "ok", "prep"]);

    broken.clear();
    exec.redrive();
    const done = await exec.whenDone();
    expect(done.status).toBe("SUCCEEDED");
    expect(output(done)).toEqual(["in", "green"]);
    // Blue and Prep did not run again.
    expect(h.calls.map((c) => c.fn).sort()).toEqual(["flaky", "flaky", "ok", "prep"]);
    expect(types(afterRedrive(exec.history.events))).toEqual([
      "ExecutionRedriven",
      "ParallelStateEntered",
      "ParallelStateStarted",
      "TaskStateEntered",
      "LambdaFunctionScheduled",
      "LambdaFunctionStarted",
      "LambdaFunctionSucceeded",
      "TaskStateExited",
      "ParallelStateSucceeded",
      "ParallelStateExited",
      "ExecutionSucceeded",
    ]);
  });

  it("branches stopped because a sibling failed are re-run too", async () => {
    const { broken, fn } = switchable();
    broken.add("x");
    const h = harness({ fns: { bad: fn } });
    const def: StatesGraph = {
      StartAt: "P",
      States: {
        P: {
          Type: "Parallel",
          Branches: [
            {
              StartAt: "W",
              States: { W: { Type: "Wait", Seconds: 100, Next: "After" }, After: { Type: "Pass", Result: "waited", End: true } },
            },
            { StartAt: "B", States: { B: { Type: "Task", Resource: lambdaArn("bad"), End: true } } },
          ],
          End: true,
        },
      },
    };
    const exec = h.start(def, "x");
    await exec.whenDone();
    expect(types(exec.history.events)).toContain("WaitStateAborted");
    broken.clear();
    const t0 = h.clock.now();
    exec.redrive();
    const v = await exec.whenDone();
    expect(output(v)).toEqual(["waited", "x"]);
    expect(h.clock.now() - t0).toBe(100_000);
  });
});

describe("redrive: aborted and timed-out executions", () => {
  it("an ABORTED execution resumes at the state it was stopped in", async () => {
    const h = harness({ fns: { f: (p) => p } });
    const exec = h.start({
      StartAt: "A",
      States: {
        A: { Type: "Task", Resource: lambdaArn("f"), Next: "W" },
        W: { Type: "Wait", Seconds: 60, Next: "Z" },
        Z: { Type: "Pass", Result: "z", End: true },
      },
    });
    await h.clock.sleep(30_000);
    await exec.stop();
    expect(exec.view()).toMatchObject({ status: "ABORTED", redriveStatus: "REDRIVABLE" });
    exec.redrive();
    const v = await exec.whenDone();
    expect(output(v)).toBe("z");
    expect(h.calls).toHaveLength(1);
  });

  it("a TIMED_OUT execution's TimeoutSeconds restarts on redrive", async () => {
    const h = harness();
    const exec = h.start({
      TimeoutSeconds: 50,
      StartAt: "A",
      States: { A: { Type: "Wait", Seconds: 40, Next: "B" }, B: { Type: "Wait", Seconds: 40, End: true } },
    });
    expect((await exec.whenDone()).status).toBe("TIMED_OUT");
    exec.redrive();
    // B runs again from its start: 40 s < 50 s.
    expect((await exec.whenDone()).status).toBe("SUCCEEDED");
  });
});

describe("redrive eligibility", () => {
  it.each([
    ["RUNNING", "Execution is RUNNING and cannot be redriven"],
    ["SUCCEEDED", "Execution is SUCCEEDED and cannot be redriven"],
    ["14 days after it stopped", "Execution redrivable period exceeded"],
  ])("%s → NOT_REDRIVABLE", async (when, reason) => {
    const h = harness({
      fns: {
        f: () => {
          throw new FnError("E", "x");
        },
      },
    });
    const def: StatesGraph =
      when === "RUNNING"
        ? { StartAt: "W", States: { W: { Type: "Wait", Seconds: 10, End: true } } }
        : when === "SUCCEEDED"
          ? { StartAt: "P", States: { P: { Type: "Pass", End: true } } }
          : { StartAt: "T", States: { T: { Type: "Task", Resource: lambdaArn("f"), End: true } } };
    const exec = h.start(def);
    if (when !== "RUNNING") await exec.whenDone();
    if (when.startsWith("14 days")) {
      await h.clock.sleep(14 * 24 * 3600 * 1000 - 1000);
      expect(exec.redrivability().redriveStatus).toBe("REDRIVABLE");
      await h.clock.sleep(2000);
    }
    expect(exec.redrivability()).toEqual({ redriveStatus: "NOT_REDRIVABLE", redriveStatusReason: reason });
    if (when === "RUNNING") await exec.stop();
  });
});
