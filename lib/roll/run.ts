import { ListCommandInvocationsCommand, SendCommandCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { renderCommands } from "../commands.ts";
import { StepFailedError } from "../errors.ts";

/** SendCommand's limit on `InstanceIds` (AWS: 0–50; use Targets or several commands beyond). */
export const MAX_INSTANCE_IDS_PER_COMMAND = 50;

export interface InvocationResult {
  instanceId: string;
  status: string;
  exitCode?: number;
  output?: string;
}

export interface ScriptStepResult {
  status: "pending" | "succeeded";
  commandId: string;
  instances: InvocationResult[];
}

/**
 * Runs a script on instances with SSM AWS-RunShellScript as a reconciling step: the first call
 * sends the command and returns `pending` with its id; later calls (given that id) report progress
 * until every invocation succeeded, or throw `kiln.StepFailed` naming each failed instance, its
 * status, exit code and the tail of its output. Scripts run again after a crash must be
 * idempotent (service-in/out, smoke tests are).
 */
export async function runScriptStep(
  p: {
    instanceIds: string[];
    script: string;
    env?: Record<string, string>;
    comment: string;
    commandId?: string;
    timeoutSeconds?: number;
    maxConcurrency?: string;
  },
  deps: { ssm: SSMClient },
): Promise<ScriptStepResult> {
  if (p.instanceIds.length === 0) return { status: "succeeded", commandId: p.commandId ?? "", instances: [] };
  if (!p.commandId) {
    // SendCommand accepts at most 50 InstanceIds: larger fleets get one command per 50, and the
    // step carries their ids joined by commas (the ids are UUIDs, so the join is unambiguous).
    const ids: string[] = [];
    for (let i = 0; i < p.instanceIds.length; i += MAX_INSTANCE_IDS_PER_COMMAND) {
      const r = await deps.ssm.send(
        new SendCommandCommand({
          DocumentName: "AWS-RunShellScript",
          InstanceIds: p.instanceIds.slice(i, i + MAX_INSTANCE_IDS_PER_COMMAND),
          Comment: p.comment.slice(0, 100),
          TimeoutSeconds: 600,
          MaxConcurrency: p.maxConcurrency ?? "100%",
          MaxErrors: "0",
          Parameters: {
            commands: renderCommands(p.script, p.env ?? {}),
            executionTimeout: [String(p.timeoutSeconds ?? 600)],
          },
        }),
      );
      const id = r.Command?.CommandId;
      if (!id) throw new StepFailedError("SendCommand returned no command id");
      ids.push(id);
    }
    return { status: "pending", commandId: ids.join(","), instances: [] };
  }
  const commandId = p.commandId;
  const invocations: InvocationResult[] = [];
  for (const CommandId of commandId.split(",")) {
    let NextToken: string | undefined;
    do {
      const r = await deps.ssm.send(new ListCommandInvocationsCommand({ CommandId, Details: true, NextToken }));
      for (const inv of r.CommandInvocations ?? []) {
        const plugin = inv.CommandPlugins?.[0];
        invocations.push({
          instanceId: inv.InstanceId ?? "?",
          status: inv.Status ?? "Pending",
          exitCode: plugin?.ResponseCode,
          output: plugin?.Output?.slice(-500),
        });
      }
      NextToken = r.NextToken;
    } while (NextToken);
  }
  const failed = invocations.filter((i) => ["Failed", "TimedOut", "Cancelled", "Cancelling"].includes(i.status));
  if (failed.length > 0) {
    const detail = failed
      .map(
        (f) =>
          `${f.instanceId}: ${f.status}${f.exitCode !== undefined ? ` (exit ${f.exitCode})` : ""}${f.output ? ` — ${f.output.trim().split("\n").slice(-3).join(" | ")}` : ""}`,
      )
      .join("; ");
    throw new StepFailedError(
      `command ${commandId} (${p.comment}) failed on ${failed.length}/${p.instanceIds.length} instances: ${detail}`,
    );
  }
  const done = invocations.length >= p.instanceIds.length && invocations.every((i) => i.status === "Success");
  return { status: done ? "succeeded" : "pending", commandId, instances: invocations.map(({ output: _o, ...rest }) => rest) };
}
