/**
 * Virtual time that waits for outside callers (lib/clock.ts VirtualClock.serve) and history events
 * in causal order. The served rule: jump to the next timer only on demand, when nothing inside is
 * runnable, no outside request just happened, and the jump does not reach an open task token's
 * deadline; otherwise time flows at wall speed.
 */
import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../../lib/clock.ts";
import { harness, lambdaArn, single, types } from "./harness.ts";

const DAY = 86_400_000;
const wall = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("served virtual clock", () => {
  it("without demand it idles: a far timer is not jumped to, time flows at wall speed", async () => {
    const clock = new VirtualClock().serve();
    const t0 = clock.now();
    let fired = false;
    clock.setTimeout(() => (fired = true), 30 * DAY);
    await wall(150);
    expect(fired).toBe(false);
    const advanced = clock.now() - t0;
    expect(advanced).toBeGreaterThanOrEqual(100);
    expect(advanced).toBeLessThan(5_000);
    clock.dispose();
  });

  it("with demand it jumps straight to the next timer", async () => {
    const clock = new VirtualClock().serve();
    const t0 = clock.now();
    const release = clock.demand();
    await clock.sleep(30 * DAY);
    release();
    expect(clock.now() - t0).toBeGreaterThanOrEqual(30 * DAY);
    clock.dispose();
  });

  it("never jumps to the deadline of a wait on an outside caller, even on demand", async () => {
    const clock = new VirtualClock().serve();
    const t0 = clock.now();
    const release = clock.demand();
    let expired = false;
    clock.setTimeout(() => (expired = true), DAY, { awaitsOutside: true });
    // An earlier timer is still jumped to.
    await clock.sleep(3_600_000);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(3_600_000);
    await wall(100);
    expect(expired).toBe(false);
    expect(clock.now() - t0).toBeLessThan(3_600_000 + 5_000);
    release();
    clock.dispose();
  });

  it("does not jump while an outside request runs, nor for the quiet window after it", async () => {
    const clock = new VirtualClock().serve({ quietMs: 200 });
    const t0 = clock.now();
    const release = clock.demand();
    let fired = false;
    void clock.outside(wall(50));
    clock.setTimeout(() => (fired = true), DAY);
    await wall(120);
    expect(fired).toBe(false);
    await wall(300);
    expect(fired).toBe(true);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(DAY);
    release();
    clock.dispose();
  });

  it("an unserved virtual clock still jumps whenever nothing is runnable (in-process tests)", async () => {
    const clock = new VirtualClock();
    const t0 = clock.now();
    await clock.sleep(30 * DAY);
    expect(clock.now() - t0).toBe(30 * DAY);
  });
});

describe("engine on a served clock", () => {
  it("a task token is answerable for its whole TimeoutSeconds; Wait states still jump", async () => {
    const h = harness({ aws: () => ({}) });
    h.clock.serve({ quietMs: 0 });
    const t0 = h.clock.now();
    const exec = h.start({
      StartAt: "Before",
      States: {
        Before: { Type: "Wait", Seconds: 3600, Next: "Ask" },
        Ask: {
          Type: "Task",
          Resource: "arn:aws:states:::sns:publish.waitForTaskToken",
          Parameters: { TopicArn: "arn:aws:sns:us-east-1:123456789012:t", "Message.$": "$$.Task.Token" },
          TimeoutSeconds: 86_400,
          Next: "After",
        },
        After: { Type: "Wait", Seconds: 7200, End: true },
      },
    });
    // Wait until the token has been handed out, then answer "later" in wall time.
    for (let i = 0; i < 200 && !exec.history.events.some((e) => e.type === "TaskSubmitted"); i++) await wall(5);
    await wall(200);
    expect(exec.status).toBe("RUNNING");
    const token = (h.awsCalls[0]!.params as { Message: string }).Message;
    h.engine.sendTaskSuccess(token, JSON.stringify({ ok: true }));
    const view = await exec.whenDone();
    expect(view.status).toBe("SUCCEEDED");
    const elapsed = h.clock.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(10_800_000);
    expect(elapsed).toBeLessThan(10_800_000 + 60_000);
    h.clock.dispose();
  });

  it("other work's demand does not carry the clock past an open token's deadline", async () => {
    const h = harness({ aws: () => ({}) });
    h.clock.serve({ quietMs: 0 });
    const t0 = h.clock.now();
    const exec = h.start(
      single({
        Type: "Parallel",
        Branches: [
          {
            StartAt: "Ask",
            States: {
              Ask: {
                Type: "Task",
                Resource: "arn:aws:states:::events:putEvents.waitForTaskToken",
                Parameters: { Entries: [{ "Detail.$": "States.JsonToString($$.Task)" }] },
                TimeoutSeconds: 86_400,
                End: true,
              },
            },
          },
          { StartAt: "Long", States: { Long: { Type: "Wait", Seconds: 2 * 86_400, End: true } } },
        ],
      }),
    );
    for (let i = 0; i < 200 && h.awsCalls.length === 0; i++) await wall(5);
    await wall(200);
    expect(exec.status).toBe("RUNNING");
    expect(h.clock.now() - t0).toBeLessThan(DAY);
    const detail = JSON.parse((h.awsCalls[0]!.params as { Entries: { Detail: string }[] }).Entries[0]!.Detail) as {
      Token: string;
    };
    h.engine.sendTaskSuccess(detail.Token, "{}");
    const view = await exec.whenDone();
    expect(view.status).toBe("SUCCEEDED");
    expect(h.clock.now() - t0).toBeGreaterThanOrEqual(2 * DAY);
    h.clock.dispose();
  });

  it("a stack whose only timers are schedules idles: no state demands time", async () => {
    const h = harness();
    h.clock.serve();
    const t0 = h.clock.now();
    let runs = 0;
    // A schedule: re-arms itself every day, starts nothing that is running now.
    const tick = () => {
      runs++;
      h.clock.setTimeout(tick, DAY);
    };
    h.clock.setTimeout(tick, DAY);
    await wall(200);
    expect(runs).toBe(0);
    expect(h.clock.now() - t0).toBeLessThan(5_000);
    h.clock.dispose();
  });
});

describe("history in causal order", () => {
  it("a callback task whose work outlives its timeout writes nothing after the execution closed", async () => {
    const h = harness({
      fns: {
        slow: async () => {
          await h.clock.sleep(5_000);
          return { late: true };
        },
      },
    });
    const r = await h.run(
      single({
        Type: "Task",
        Resource: "arn:aws:states:::lambda:invoke.waitForTaskToken",
        Parameters: { FunctionName: lambdaArn("slow"), Payload: { "token.$": "$$.Task.Token" } },
        TimeoutSeconds: 1,
      }),
    );
    expect(r.view).toMatchObject({ status: "FAILED", error: "States.Timeout" });
    // Let the slow function finish after the execution closed.
    await h.clock.sleep(10_000);
    const t = types(r.events);
    expect(t.at(-1)).toBe("ExecutionFailed");
    expect(t).not.toContain("TaskSubmitted");
    expect(t).toEqual([
      "ExecutionStarted",
      "TaskStateEntered",
      "TaskScheduled",
      "TaskStarted",
      "TaskTimedOut",
      "ExecutionFailed",
    ]);
  });
});
