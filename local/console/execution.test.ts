import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { describe, expect, it } from "vitest";
import { causeText, replayHistory, taskOutput } from "./execution.ts";

/** Builds a history with AWS ids and `previousEventId` links, one event per entry. */
function history(...events: Omit<HistoryEvent, "id" | "previousEventId" | "timestamp">[]): HistoryEvent[] {
  return events.map(
    (e, i) => ({ ...e, id: i + 1, previousEventId: i, timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) }) as HistoryEvent,
  );
}

const entered = (name: string, type = "TaskStateEntered") => ({ type, stateEnteredEventDetails: { name } }) as HistoryEvent;
const exited = (name: string, type = "TaskStateExited") => ({ type, stateExitedEventDetails: { name } }) as HistoryEvent;
const succeeded = (output: unknown) =>
  ({ type: "TaskSucceeded", taskSucceededEventDetails: { output: JSON.stringify(output) } }) as HistoryEvent;
const failed = (error: string, cause: string) =>
  ({ type: "TaskFailed", taskFailedEventDetails: { error, cause } }) as HistoryEvent;
const lambdaCause = (message: string) =>
  JSON.stringify({ errorType: "kiln.VerificationFailed", errorMessage: message, trace: ["at x"] });

const STATES = ["Shift", "Verify", "Done"];

describe("replayHistory", () => {
  it("marks the state a failed execution stopped at, with the task's error and the Lambda message", () => {
    const r = replayHistory(
      history(
        { type: "ExecutionStarted" },
        entered("Shift"),
        { type: "TaskScheduled" },
        succeeded({ StatusCode: 200, Payload: { status: "shifted", seen: { weights: [90, 10] } } }),
        exited("Shift"),
        entered("Verify"),
        { type: "TaskScheduled" },
        { type: "TaskStarted" },
        failed("kiln.VerificationFailed", lambdaCause("alarm web-5xx in ALARM")),
        {
          type: "ExecutionFailed",
          executionFailedEventDetails: { error: "kiln.VerificationFailed", cause: lambdaCause("alarm web-5xx in ALARM") },
        },
      ),
      STATES,
    );
    expect(r.failed).toBe("Verify");
    expect(r.current).toEqual([]);
    expect(Object.fromEntries(Object.entries(r.states).map(([k, v]) => [k, v.outcome]))).toEqual({
      Shift: "succeeded",
      Verify: "failed",
      Done: "notRun",
    });
    expect(r.states.Shift!.results).toEqual([
      expect.objectContaining({ ok: true, output: { status: "shifted", seen: { weights: [90, 10] } }, state: "Shift" }),
    ]);
    expect(r.states.Verify!.results).toEqual([
      expect.objectContaining({ ok: false, error: "kiln.VerificationFailed", cause: "alarm web-5xx in ALARM", eventId: 9 }),
    ]);
    // Task events name their state in the history; execution events do not.
    expect(r.events.map((e) => [e.type, e.state])).toContainEqual(["TaskStarted", "Verify"]);
    expect(r.events.at(-1)).toEqual({
      id: 10,
      at: "2026-01-01T00:00:09.000Z",
      type: "ExecutionFailed",
      detail: "kiln.VerificationFailed: alarm web-5xx in ALARM",
    });
  });

  it("follows a redrive: the failed state runs again and the execution's failure clears", () => {
    const base = [
      entered("Verify"),
      failed("kiln.VerificationFailed", "alarm"),
      { type: "ExecutionFailed", executionFailedEventDetails: { error: "kiln.VerificationFailed" } } as HistoryEvent,
      { type: "ExecutionRedriven", executionRedrivenEventDetails: { redriveCount: 1 } } as HistoryEvent,
      entered("Verify"),
    ];
    const running = replayHistory(history(...base), STATES);
    expect(running.failed).toBeUndefined();
    expect(running.current).toEqual(["Verify"]);
    expect(running.states.Verify).toMatchObject({ outcome: "running", visits: 2 });

    const done = replayHistory(
      history(
        ...base,
        succeeded({ status: "passed" }),
        exited("Verify"),
        entered("Done", "SucceedStateEntered"),
        exited("Done", "SucceedStateExited"),
        {
          type: "ExecutionSucceeded",
        },
      ),
      STATES,
    );
    expect(done.current).toEqual([]);
    expect(done.states.Verify!.outcome).toBe("succeeded");
    expect(done.states.Verify!.results.map((x) => x.ok)).toEqual([false, true]);
    expect(done.states.Done!.outcome).toBe("succeeded");
  });

  it.each([
    ["ExecutionAborted", "aborted", undefined],
    ["ExecutionTimedOut", "failed", "Verify"],
  ])("after %s the running state is %s", (type, outcome, failedAt) => {
    const r = replayHistory(history(entered("Verify"), { type } as HistoryEvent), STATES);
    expect(r.states.Verify!.outcome).toBe(outcome);
    expect(r.failed).toBe(failedAt);
  });

  it("keeps the latest five results of a polling state", () => {
    const polls = Array.from({ length: 7 }, (_, i) => [
      entered("Verify"),
      succeeded({ status: "reconciling", n: i }),
      exited("Verify"),
    ]).flat();
    const r = replayHistory(history(...polls), STATES);
    expect(r.states.Verify!.visits).toBe(7);
    expect(r.states.Verify!.results.map((x) => (x.output as { n: number }).n)).toEqual([2, 3, 4, 5, 6]);
  });

  it("attributes events of states nested in a Parallel branch to the nested state, not the graph's", () => {
    const r = replayHistory(
      history(
        entered("Fan", "ParallelStateEntered"),
        { type: "ParallelStateStarted" },
        entered("Inner"),
        succeeded({ ok: 1 }),
        exited("Inner"),
      ),
      ["Fan"],
    );
    expect(r.events.find((e) => e.type === "TaskSucceeded")?.state).toBe("Inner");
    expect(r.states.Fan).toMatchObject({ outcome: "running", results: [] });
    expect(r.current).toEqual(["Fan"]);
  });
});

describe("taskOutput and causeText", () => {
  it.each([
    ["a Lambda invoke result", JSON.stringify({ ExecutedVersion: "$LATEST", StatusCode: 200, Payload: { a: 1 } }), { a: 1 }],
    ["plain JSON", JSON.stringify({ status: "passed" }), { status: "passed" }],
    ["text that is not JSON", "hello", "hello"],
    ["nothing", undefined, undefined],
  ])("reads %s", (_what, raw, want) => {
    expect(taskOutput(raw)).toEqual(want);
  });

  it("cuts a huge output to a string that says how much is missing", () => {
    const out = taskOutput(JSON.stringify({ blob: "x".repeat(40_000) }));
    expect(typeof out).toBe("string");
    expect(out).toMatch(/… \(\d+ more characters\)$/);
  });

  it.each([
    ["a Lambda error", lambdaCause("green healthy 2/4"), "green healthy 2/4"],
    ["a plain cause", "States.Timeout", "States.Timeout"],
  ])("takes the message of %s", (_what, cause, want) => {
    expect(causeText(cause)).toBe(want);
  });
});
