/** How `kiln logs` and `kiln status` read a history: step lines, readable causes, the canary step. */
import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { describe, expect, it } from "vitest";
import { canaryFromParameters, formatDuration, readableCause, stepLines } from "../../lib/ops/history.ts";

let t = Date.parse("2026-01-05T09:00:00Z");
const ev = (type: string, name?: string, extra: Record<string, unknown> = {}, seconds = 10): HistoryEvent =>
  ({
    type,
    timestamp: new Date((t += seconds * 1000)),
    ...(name && type.endsWith("Entered") ? { stateEnteredEventDetails: { name } } : {}),
    ...(name && type.endsWith("Exited") ? { stateExitedEventDetails: { name } } : {}),
    ...extra,
  }) as HistoryEvent;
const visit = (type: string, name: string) => [ev(`${type}StateEntered`, name), ev(`${type}StateExited`, name)];
const LAMBDA_CAUSE = JSON.stringify({
  errorType: "kiln.StepFailed",
  errorMessage: "green target group has no healthy targets",
  trace: ["kiln.StepFailed: green…", "    at shiftTraffic (/var/task/lib/roll/steps.ts:506:13)"],
});

describe("stepLines", () => {
  it("folds a polling loop (Task → Choice → Wait → Task…) into one line with a count", () => {
    const events = [
      ev("ExecutionStarted"),
      ...visit("Task", "CreateGreenFleet"),
      ...[1, 2, 3].flatMap(() => [
        ...visit("Task", "WaitGreenReady"),
        ...visit("Choice", "IsGreenReadyDone"),
        ...visit("Wait", "WaitForGreenReady"),
      ]),
      ...visit("Task", "WaitGreenReady"),
      ...visit("Choice", "IsGreenReadyDone"),
      ...visit("Task", "ServiceInGreen"),
      ev("ExecutionSucceeded"),
    ];
    const lines = stepLines(events, "SUCCEEDED");
    expect(lines.map((l) => [l.state, l.count, l.outcome])).toEqual([
      ["CreateGreenFleet", 1, "succeeded"],
      ["WaitGreenReady", 4, "succeeded"],
      ["ServiceInGreen", 1, "succeeded"],
    ]);
    // From its first entry to its last exit: 4 × (task + choice + wait) less the last wait, 10 s per event.
    expect(lines[1]!.durationSeconds).toBe(210);
  });

  it("keeps each canary step on its own line (ShiftTraffic comes back through VerifyCanary)", () => {
    const step = () => [
      ...visit("Task", "ShiftTraffic"),
      ...visit("Task", "BakeCanary"),
      ...visit("Choice", "BakeVerdict"),
      ...visit("Task", "BakeCanary"),
      ...visit("Choice", "BakeVerdict"),
      ...visit("Task", "VerifyCanary"),
      ...visit("Choice", "CanaryVerdict"),
      ...visit("Pass", "NextCanaryStep"),
    ];
    const lines = stepLines([...step(), ...step()], "RUNNING");
    expect(lines.map((l) => `${l.state}×${l.count}`)).toEqual([
      "ShiftTraffic×1",
      "BakeCanary×2",
      "VerifyCanary×1",
      "ShiftTraffic×1",
      "BakeCanary×2",
      "VerifyCanary×1",
    ]);
  });

  it("a failed step shows its cause as text; a retried failure is counted; a redrive ends the line", () => {
    const failed = { taskFailedEventDetails: { error: "kiln.StepFailed", cause: LAMBDA_CAUSE } };
    const events = [
      ev("TaskStateEntered", "CreateGreenFleet"),
      ev("TaskFailed", undefined, { taskFailedEventDetails: { error: "kiln.Throttled", cause: "{}" } }),
      ev("TaskStateExited", "CreateGreenFleet"),
      ev("TaskStateEntered", "ShiftTraffic"),
      ev("TaskFailed", undefined, failed),
      ev("ExecutionFailed", undefined, { executionFailedEventDetails: failed.taskFailedEventDetails }),
      ev("ExecutionRedriven"),
      ev("TaskStateEntered", "ShiftTraffic"),
    ];
    const lines = stepLines(events, "RUNNING");
    expect(lines.map((l) => [l.state, l.outcome])).toEqual([
      ["CreateGreenFleet", "succeeded"],
      ["ShiftTraffic", "running"],
      ["(redriven)", "redriven"],
      ["ShiftTraffic", "running"],
    ]);
    expect(lines[0]!.retries).toBe(1);
    expect(lines[1]!.cause).toBe("kiln.StepFailed: green target group has no healthy targets");
    expect(stepLines(events.slice(0, 6), "FAILED")[1]).toMatchObject({ outcome: "failed" });
  });
});

describe("readableCause", () => {
  it.each([
    ["kiln.StepFailed", LAMBDA_CAUSE, "kiln.StepFailed: green target group has no healthy targets"],
    [
      "States.TaskFailed",
      JSON.stringify({ errorType: "Error", errorMessage: "boom\n    at x (/var/task/index.js:1:2)" }),
      "Error: boom",
    ],
    ["States.Timeout", undefined, "States.Timeout"],
    ["kiln.Rejected", "rejected by ana: not now", "kiln.Rejected: rejected by ana: not now"],
    ["X", "failed reading /var/task/lib/roll/steps.ts:12:3 here", "X: failed reading  here"],
  ])("%s %j → %j", (error, cause, text) => {
    expect(readableCause(error, cause)).toBe(text);
  });
});

describe("canaryFromParameters", () => {
  const params = (index: unknown) =>
    JSON.stringify({ FunctionName: "f", Payload: { plan: { steps: [{ weight: 10 }, { weight: 50 }, { weight: 100 }] }, index } });
  it.each([
    [0, { step: 1, steps: 3, weight: 10 }],
    [1, { step: 2, steps: 3, weight: 50 }],
    [2, { step: 3, steps: 3, weight: 100 }],
    [3, undefined],
    ["1", undefined],
  ])("index %j → %j", (index, position) => {
    expect(canaryFromParameters(params(index))).toEqual(position);
  });
  it("is nothing for other tasks", () => {
    expect(canaryFromParameters(JSON.stringify({ Payload: { plan: {} } }))).toBeUndefined();
    expect(canaryFromParameters(undefined)).toBeUndefined();
  });
});

describe("formatDuration", () => {
  it.each([
    [undefined, "-"],
    [42, "42s"],
    [185, "3m05s"],
    [3720, "1h02m"],
  ])("%j → %s", (s, text) => expect(formatDuration(s)).toBe(text));
});
