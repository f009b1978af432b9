import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { commandComment, findCommands, getInvocation, sendScript } from "../commands.ts";
import { StepFailedError, TimeoutError } from "../errors.ts";
import type { Attempt, BakeDeps, BakePlan, PollResult } from "./types.ts";
import { checkDeadline, nextCheckSeconds, waitStart } from "./waits.ts";
import { guardedReconciler } from "./util.ts";

export interface ScriptStepInput {
  plan: BakePlan;
  attempt?: Attempt;
  builderId: string;
}

export interface ScriptStepStatus extends PollResult {
  commandId: string;
  /** True when this call found the command already sent (retry, crash, or a later poll). */
  adopted: boolean;
  exitCode?: number;
}

/** Slack on top of SSM's own delivery + execution timeouts before kiln declares the command lost. */
const LOST_COMMAND_SLACK_SECONDS = 120;
const DELIVERY_TIMEOUT_SECONDS = 600;

type Which = { step: "Install" | "ImageTest"; script: "install" | "imageTest"; timeout: "installSeconds" | "imageTestSeconds" };

async function runOnBuilder(
  w: Which,
  input: ScriptStepInput,
  deps: Pick<BakeDeps, "ec2" | "ssm" | "clock">,
): Promise<ScriptStepStatus> {
  const { plan, builderId } = input;
  const cfg = plan.config;
  const attempt = input.attempt?.redriveCount ?? 0;
  const comment = commandComment(plan.execution.name, w.step, attempt);
  const timeout = cfg.timeouts[w.timeout];
  const expected = cfg.expected[w.timeout];

  // The desired state is "this attempt's command succeeded": adopt it if it was sent already.
  const [existing] = await findCommands(deps.ssm, { comment, instanceId: builderId });
  if (!existing?.CommandId) {
    const inst = (await deps.ec2.send(new DescribeInstancesCommand({ InstanceIds: [builderId] }))).Reservations?.[0]
      ?.Instances?.[0];
    if (inst?.State?.Name !== "running")
      throw new StepFailedError(
        `${w.step}: builder ${builderId} is ${inst?.State?.Name ?? "gone"}, cannot run the ${w.script} script; start a new execution`,
      );
    const commandId = await sendScript(deps.ssm, {
      instanceIds: [builderId],
      script: cfg.scripts[w.script],
      env: plan.env,
      comment,
      executionTimeoutSeconds: timeout,
      deliveryTimeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
    });
    return {
      status: "pending",
      commandId,
      adopted: false,
      waitSeconds: Math.max(2, expected),
      detail: `sent ${w.script} script to ${builderId} as command ${commandId}`,
    };
  }
  const commandId = existing.CommandId;
  const inv = await getInvocation(deps.ssm, commandId, builderId);
  const where = `builder ${builderId}, command ${commandId}`;
  switch (inv.state) {
    case "success":
      return {
        status: "done",
        commandId,
        adopted: true,
        exitCode: inv.responseCode,
        waitSeconds: 0,
        detail: `${w.script} script succeeded on ${where}`,
      };
    case "failed":
    case "cancelled":
    case "timed-out": {
      const msg =
        `${w.step} failed on ${where}: ${inv.status}/${inv.statusDetails}` +
        `${inv.responseCode >= 0 ? `, exit code ${inv.responseCode}` : ""}. The builder is kept for inspection (aws ssm get-command-invocation --command-id ${commandId} --instance-id ${builderId}); redrive runs the script again.` +
        `${inv.stderrTail ? `\nstderr (tail):\n${inv.stderrTail}` : ""}${inv.stdoutTail ? `\nstdout (tail):\n${inv.stdoutTail}` : ""}`;
      throw inv.state === "timed-out" ? new TimeoutError(msg) : new StepFailedError(msg);
    }
    default: {
      const requested = existing.RequestedDateTime?.getTime();
      const elapsed = checkDeadline(
        deps.clock.now(),
        waitStart(requested, input.attempt),
        timeout + DELIVERY_TIMEOUT_SECONDS + LOST_COMMAND_SLACK_SECONDS,
        `${w.step}: command ${commandId} on ${builderId} is still ${inv.status} past its timeouts; the builder is kept for inspection`,
      );
      return {
        status: "pending",
        commandId,
        adopted: true,
        waitSeconds: nextCheckSeconds(elapsed, expected, timeout),
        detail: `${w.script} script ${inv.status} on ${where}`,
      };
    }
  }
}

/** Install: run the service's install script for the commit on the builder (send once, then poll). */
export const install = guardedReconciler(
  "Install",
  (input: ScriptStepInput, deps: Pick<BakeDeps, "ec2" | "ssm" | "clock" | "lock">) =>
    runOnBuilder({ step: "Install", script: "install", timeout: "installSeconds" }, input, deps),
);

/** ImageTest: run the service's image tests on the builder (send once, then poll). */
export const imageTest = guardedReconciler(
  "ImageTest",
  (input: ScriptStepInput, deps: Pick<BakeDeps, "ec2" | "ssm" | "clock" | "lock">) =>
    runOnBuilder({ step: "ImageTest", script: "imageTest", timeout: "imageTestSeconds" }, input, deps),
);
