/**
 * The status of a unit's executions: a running one names the state it is in, and the CLI says
 * "waiting for approval" for the approval gate.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { unitExecutions } from "../../../lib/ops/status.ts";
import { formatStatus } from "../../../local/cli/commands.ts";
import { FakeStates, FakeTable, MACHINES, useConfig } from "../../cli/fake-target.ts";

const previousConfig = process.env.KILN_CONFIG;
beforeAll(() => useConfig({}));
afterAll(() => {
  if (previousConfig === undefined) delete process.env.KILN_CONFIG;
  else process.env.KILN_CONFIG = previousConfig;
});

it("a running execution names its current state; the CLI says it waits for approval", async () => {
  const states = new FakeStates();
  const waiting = states.waitingDeployment(new FakeTable(), "web", "production", "a".repeat(40), 3);
  const done = states.add({
    stateMachineArn: MACHINES.deploy,
    name: "web-production-bbbbbbbbbbbb-push-2",
    input: JSON.stringify({ service: "web", environment: "production", commit: "b".repeat(40), trigger: "push", seq: 2 }),
    status: "SUCCEEDED",
    history: [{ type: "TaskStateEntered", stateEnteredEventDetails: { name: "Done" } }],
  });
  const list = await unitExecutions(states as never, MACHINES.deploy, { service: "web", environment: "production" });
  expect(list.find((e) => e.arn === waiting.executionArn)?.currentStep).toBe("RequestApproval");
  expect(list.find((e) => e.arn === done.executionArn)).not.toHaveProperty("currentStep");

  const lines: string[] = [];
  formatStatus(
    {
      stack: { kind: "aws" },
      services: [{ service: "web", environment: "production", weights: [], fleets: [], executions: list }],
    },
    (l) => lines.push(l),
  );
  expect(lines.find((l) => l.includes(waiting.name))).toMatch(/RUNNING\s+\S+\s+\S+\s+waiting for approval$/);
});
