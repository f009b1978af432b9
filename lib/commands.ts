import { createHash } from "node:crypto";
import {
  type Command,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SendCommandCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { InvalidInputError, StepFailedError } from "./errors.ts";

/**
 * SSM Run Command helpers shared by the bake and roll phases: send a shell script with
 * environment variables, find a command already sent for a step (SendCommand has no idempotency
 * token, so a retried step must look before it sends), and read invocation status.
 *
 * Environment values are passed as data, never as script text: each becomes one line
 * `export NAME='value'` in front of the script, with the value single-quoted (inside single
 * quotes bash interprets nothing; a `'` in the value is written as `'\''`). Names are checked
 * against `[A-Z_][A-Z0-9_]*`, values may not contain NUL or line breaks. Callers validate the
 * values on top of that (commit, branch, repository: lib/config/identifiers.ts).
 */

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

/** Quotes `value` as one bash word whose expansion is exactly `value`. */
export function shellQuote(value: string): string {
  if (value.includes("\0")) throw new InvalidInputError("a shell value may not contain NUL");
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME='value'` lines, one per variable, in a stable (sorted) order. */
export function environmentPreamble(env: Record<string, string>): string[] {
  return Object.keys(env)
    .sort()
    .map((name) => {
      const value = env[name]!;
      if (!ENV_NAME.test(name)) throw new InvalidInputError(`environment variable name ${JSON.stringify(name)} is not allowed`);
      if (/[\0\r\n]/.test(value)) throw new InvalidInputError(`environment variable ${name} may not contain NUL or line breaks`);
      return `export ${name}=${shellQuote(value)}`;
    });
}

/** The AWS-RunShellScript `commands` list: the environment preamble, then the script's lines. */
export function renderCommands(script: string, env: Record<string, string> = {}): string[] {
  return [...environmentPreamble(env), ...script.replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n")];
}

/**
 * A SendCommand `Comment` (≤ 100 chars) that identifies one step of one execution attempt, so a
 * retried step can find the command it already sent (ListCommands returns comments).
 */
export function commandComment(executionName: string, step: string, attempt = 0): string {
  const c = `kiln ${step} r${attempt} ${executionName}`;
  if (c.length <= 100) return c;
  const h = createHash("sha256").update(c).digest("hex").slice(0, 10);
  return `${c.slice(0, 89)}~${h}`;
}

export interface ScriptCommand {
  instanceIds: string[];
  script: string;
  env?: Record<string, string>;
  comment: string;
  /** AWS-RunShellScript executionTimeout: the script is killed after this (status TimedOut). */
  executionTimeoutSeconds: number;
  /** SendCommand TimeoutSeconds: delivery deadline (AWS minimum 30). */
  deliveryTimeoutSeconds?: number;
  workingDirectory?: string;
  /** Defaults: MaxConcurrency "50", MaxErrors "0" (the first failure stops dispatch), as AWS. */
  maxConcurrency?: string;
  maxErrors?: string;
}

/** Sends `cmd` with AWS-RunShellScript and returns the command id. */
export async function sendScript(ssm: SSMClient, cmd: ScriptCommand): Promise<string> {
  if (cmd.instanceIds.length === 0 || cmd.instanceIds.length > 50)
    throw new InvalidInputError(`SendCommand takes 1–50 instance ids, got ${cmd.instanceIds.length}`);
  const r = await ssm.send(
    new SendCommandCommand({
      DocumentName: "AWS-RunShellScript",
      InstanceIds: cmd.instanceIds,
      Comment: cmd.comment.slice(0, 100),
      TimeoutSeconds: Math.max(30, cmd.deliveryTimeoutSeconds ?? 600),
      ...(cmd.maxConcurrency ? { MaxConcurrency: cmd.maxConcurrency } : {}),
      ...(cmd.maxErrors ? { MaxErrors: cmd.maxErrors } : {}),
      Parameters: {
        commands: renderCommands(cmd.script, cmd.env),
        executionTimeout: [String(cmd.executionTimeoutSeconds)],
        ...(cmd.workingDirectory ? { workingDirectory: [cmd.workingDirectory] } : {}),
      },
    }),
  );
  const id = r.Command?.CommandId;
  if (!id) throw new StepFailedError("SendCommand returned no command id");
  return id;
}

/** Commands whose comment is exactly `comment` (optionally for one instance), newest first. */
export async function findCommands(ssm: SSMClient, q: { comment: string; instanceId?: string }): Promise<Command[]> {
  const out: Command[] = [];
  let NextToken: string | undefined;
  do {
    const r = await ssm.send(
      new ListCommandsCommand({ ...(q.instanceId ? { InstanceId: q.instanceId } : {}), NextToken, MaxResults: 50 }),
    );
    for (const c of r.Commands ?? []) if (c.Comment === q.comment) out.push(c);
    NextToken = r.NextToken;
  } while (NextToken);
  return out.sort((a, b) => (b.RequestedDateTime?.getTime() ?? 0) - (a.RequestedDateTime?.getTime() ?? 0));
}

/**
 * Sends the command unless one with the same comment was already sent to the same first
 * instance: a step retried after a crash adopts the command instead of running the script twice.
 */
export async function ensureScript(ssm: SSMClient, cmd: ScriptCommand): Promise<{ commandId: string; adopted: boolean }> {
  const [existing] = await findCommands(ssm, { comment: cmd.comment.slice(0, 100), instanceId: cmd.instanceIds[0] });
  if (existing?.CommandId) return { commandId: existing.CommandId, adopted: true };
  return { commandId: await sendScript(ssm, cmd), adopted: false };
}

/** Invocation outcome in kiln's terms. `pending` covers Pending/Delayed and "not created yet". */
export type InvocationState = "pending" | "running" | "success" | "failed" | "timed-out" | "cancelled";

export interface Invocation {
  commandId: string;
  instanceId: string;
  state: InvocationState;
  /** AWS Status / StatusDetails as reported (e.g. Failed / Failed, TimedOut / ExecutionTimedOut). */
  status: string;
  statusDetails: string;
  /** Exit code; -1 while not finished. */
  responseCode: number;
  stdoutTail: string;
  stderrTail: string;
  startedAt?: string;
  endedAt?: string;
}

/** Maps an SSM invocation Status (reference §5.3) to kiln's states. */
export function invocationState(status: string | undefined): InvocationState {
  switch (status) {
    case "Success":
      return "success";
    case "Failed":
      return "failed";
    case "TimedOut":
      return "timed-out";
    case "Cancelled":
    case "Cancelling":
      return "cancelled";
    case "InProgress":
      return "running";
    default:
      return "pending";
  }
}

/** The last `lines` lines of `text`, at most `chars` characters. */
export function tail(text: string | undefined, lines = 15, chars = 1500): string {
  if (!text) return "";
  const t = text.replace(/\s+$/, "").split("\n").slice(-lines).join("\n");
  return t.length > chars ? `…${t.slice(-chars)}` : t;
}

/**
 * One instance's invocation. Right after SendCommand AWS answers `InvocationDoesNotExist` until
 * the invocation is created (reference §5.4): that is reported as `pending`, not an error.
 */
export async function getInvocation(ssm: SSMClient, commandId: string, instanceId: string): Promise<Invocation> {
  try {
    const r = await ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }));
    return {
      commandId,
      instanceId,
      state: invocationState(r.Status),
      status: r.Status ?? "Pending",
      statusDetails: r.StatusDetails ?? "",
      responseCode: r.ResponseCode ?? -1,
      stdoutTail: tail(r.StandardOutputContent),
      stderrTail: tail(r.StandardErrorContent),
      ...(r.ExecutionStartDateTime ? { startedAt: r.ExecutionStartDateTime } : {}),
      ...(r.ExecutionEndDateTime ? { endedAt: r.ExecutionEndDateTime } : {}),
    };
  } catch (err) {
    if ((err as Error).name === "InvocationDoesNotExist")
      return {
        commandId,
        instanceId,
        state: "pending",
        status: "Pending",
        statusDetails: "InvocationDoesNotExist",
        responseCode: -1,
        stdoutTail: "",
        stderrTail: "",
      };
    throw err;
  }
}

/** Every invocation of a command (many instances), with plugin output tails. */
export async function listInvocations(ssm: SSMClient, commandId: string): Promise<Invocation[]> {
  const out: Invocation[] = [];
  let NextToken: string | undefined;
  do {
    const r = await ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId, Details: true, NextToken }));
    for (const inv of r.CommandInvocations ?? []) {
      const plugin = inv.CommandPlugins?.[0];
      out.push({
        commandId,
        instanceId: inv.InstanceId ?? "?",
        state: invocationState(inv.Status),
        status: inv.Status ?? "Pending",
        statusDetails: inv.StatusDetails ?? "",
        responseCode: plugin?.ResponseCode ?? -1,
        stdoutTail: tail(plugin?.Output),
        stderrTail: "",
      });
    }
    NextToken = r.NextToken;
  } while (NextToken);
  return out;
}

/** Terminal failure states. */
export function isFailure(s: InvocationState): boolean {
  return s === "failed" || s === "timed-out" || s === "cancelled";
}
