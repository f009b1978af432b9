/**
 * Run Command: SendCommand with `AWS-RunShellScript`, invocation and command statuses, rate control
 * (MaxConcurrency / MaxErrors), delivery and execution timeouts, cancellation, and the EventBridge
 * status-change events. Scripts really run with bash in the instance's sandbox (see shell.ts).
 *
 * Each script runs as `bash _script.sh` with cwd = the instance's sandbox root (or its
 * `workingDirectory` inside the sandbox) and a clean environment: PATH with `<rootDir>/usr/local/bin`
 * first, `KILN_ROOT`, `KILN_INSTANCE_ID`, `AWS_SSM_INSTANCE_ID`, `AWS_REGION`, and `AWS_ENDPOINT_URL`
 * when the cloud listens; anything else the script exports itself.
 *
 * Time model (documented choice): a real bash process finishes in wall milliseconds while the
 * cloud clock is held, so simulated durations come from settings and faults, not from the script:
 * - delivery: `ssm.deliveryMs` (2 s ± 50 %) from dispatch to InProgress;
 * - results: visible `ssm.resultMs` (1 s) after the process exits;
 * - `command` faults (`{kind:"command", match:"<regex on the script>", mode}`):
 *   `timeout` → the script does not run; the invocation ends TimedOut/ExecutionTimedOut when its
 *   executionTimeout elapses on the cloud clock; `fail` → the script does not run; Failed with
 *   `exitCode` (default 1) after `delayMs` (default 0); `slow` → the script runs after `delayMs` of
 *   cloud time (TimedOut without running when `delayMs` ≥ executionTimeout).
 * - a script's own `sleep` is real wall time during which virtual time stands still; keep scripts
 *   fast. Under real and scaled clocks the executionTimeout timer kills long scripts for real; under
 *   the virtual clock `ssm.maxWallMs` (default 120 s of wall time) kills a runaway script, which is
 *   then reported as an execution timeout.
 */
import path from "node:path";
import type { TimerHandle } from "../../../../lib/clock.ts";
import type { Cloud } from "../../cloud.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { RequestContext } from "../../protocol/types.ts";
import type { Agents } from "./agents.ts";
import { INSTANCE_ID, instanceAttrs, isoDuration, paginate, seededUuid } from "./common.ts";
import { sandboxMode } from "./sandbox.ts";
import { KILLED_EXIT_CODE, runShellScript, type ShellRun } from "./shell.ts";

export type InvocationStatus =
  "Pending" | "InProgress" | "Delayed" | "Success" | "Cancelled" | "TimedOut" | "Failed" | "Cancelling";
export type CommandStatus = "Pending" | "InProgress" | "Success" | "Cancelled" | "Failed" | "TimedOut" | "Cancelling";

const TERMINAL = new Set<InvocationStatus>(["Success", "Cancelled", "TimedOut", "Failed"]);
const DOCUMENT = "AWS-RunShellScript";
const PLUGIN = "aws:runShellScript";
/** Truncation limits of the API (GetCommandInvocation, CommandPlugins[].Output). */
const STDOUT_LIMIT = 24_000;
const STDERR_LIMIT = 8_000;
const PLUGIN_OUTPUT_LIMIT = 2_500;
const MAX_CONCURRENCY = /^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$/;
const MAX_ERRORS = /^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$/;

interface Target {
  Key: string;
  Values: string[];
}

export interface Invocation {
  readonly command: Command;
  readonly instanceId: string;
  status: InvocationStatus;
  details: string;
  /** GetCommandInvocation answers InvocationDoesNotExist before this instant. */
  readonly visibleAt: number;
  dispatched: boolean;
  startedAt?: number;
  endedAt?: number;
  responseCode: number;
  stdout: string;
  stderr: string;
  run?: ShellRun;
  readonly timers: Set<TimerHandle>;
  cancelling?: boolean;
  execTimedOut?: boolean;
}

export interface Command {
  readonly id: string;
  readonly documentName: string;
  readonly documentVersion: string;
  readonly comment: string;
  readonly parameters: Record<string, string[]>;
  readonly instanceIds: string[];
  readonly targets: Target[];
  readonly requestedAt: number;
  readonly expiresAfter: number;
  readonly timeoutSeconds: number;
  readonly executionTimeout: number;
  readonly workingDirectory?: string;
  readonly script: string;
  readonly maxConcurrency: string;
  readonly maxErrors: string;
  readonly concurrencyLimit: number;
  readonly errorLimit: number;
  readonly outputS3BucketName: string;
  readonly outputS3KeyPrefix: string;
  readonly outputS3Region: string;
  readonly serviceRole: string;
  readonly notificationConfig: { NotificationArn: string; NotificationEvents: string[]; NotificationType: string };
  readonly cloudWatchOutputConfig: { CloudWatchLogGroupName: string; CloudWatchOutputEnabled: boolean };
  readonly invocations: Invocation[];
  status: CommandStatus;
  details: string;
  cancelRequested: boolean;
  /** MaxErrors was exceeded: nothing more is dispatched. */
  halted: boolean;
  deadline?: TimerHandle;
}

export class RunCommand {
  private readonly commands = new Map<string, Command>();

  constructor(
    private readonly cloud: Cloud,
    private readonly agents: Agents,
  ) {}

  // ---------------------------------------------------------------- actions

  sendCommand(input: unknown, ctx: RequestContext): { Command: unknown } {
    const p = new Params(input, ctx);
    const documentName = p.str("DocumentName", { required: true });
    const docName = documentName.replace(/^arn:aws:ssm:[^:]*:[^:]*:document\//, "");
    if (docName !== DOCUMENT) {
      throw new AwsError(
        "InvalidDocument",
        `Document ${documentName} does not exist in your account or is not supported by the simulated cloud (only ${DOCUMENT}).`,
      );
    }
    const documentVersion = p.str("DocumentVersion") ?? "$DEFAULT";
    if (!/^(\$DEFAULT|\$LATEST|1)$/.test(documentVersion))
      throw new AwsError("InvalidDocumentVersion", `Document version ${documentVersion} is not valid for ${DOCUMENT}.`);
    const parameters = readDocumentParameters(p.raw.Parameters);
    const executionTimeout = Number(parameters.executionTimeout?.[0] ?? "3600");
    const comment = p.str("Comment", { max: 100 }) ?? "";
    const timeoutSeconds =
      p.int("TimeoutSeconds", { min: 30, max: 2_592_000 }) ?? this.cloud.setting("ssm.defaultTimeoutSeconds", 3600);
    const maxConcurrency = p.str("MaxConcurrency", { pattern: MAX_CONCURRENCY, max: 7 }) ?? "50";
    const maxErrors = p.str("MaxErrors", { pattern: MAX_ERRORS, max: 7 }) ?? "0";
    const instanceIds = p.list<string>("InstanceIds");
    const targets = p.list<Target>("Targets");
    if (instanceIds.length > 0 && targets.length > 0)
      throw new AwsError("ValidationException", "InstanceIds and Targets cannot both be specified.");
    if (instanceIds.length === 0 && targets.length === 0)
      throw new AwsError("ValidationException", "One of InstanceIds or Targets must be specified.");
    if (instanceIds.length > 50)
      throw new AwsError(
        "ValidationException",
        "1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50",
      );
    if (targets.length > 5)
      throw new AwsError(
        "ValidationException",
        "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length less than or equal to 5",
      );

    const resolved = instanceIds.length > 0 ? this.checkInstanceIds(instanceIds) : this.resolveTargets(targets);
    const now = this.cloud.clock.now();
    const id = seededUuid(this.cloud);
    const n = resolved.length;
    const cw = p.obj("CloudWatchOutputConfig");
    const nc = p.obj("NotificationConfig");
    const cmd: Command = {
      id,
      documentName,
      documentVersion,
      comment,
      parameters,
      instanceIds: instanceIds.length > 0 ? [...instanceIds] : [],
      targets: targets.map((t) => ({ Key: t.Key, Values: [...(t.Values ?? [])] })),
      requestedAt: now,
      expiresAfter: now + (timeoutSeconds + executionTimeout) * 1000,
      timeoutSeconds,
      executionTimeout,
      workingDirectory: parameters.workingDirectory?.[0] || undefined,
      script: (parameters.commands ?? []).join("\n"),
      maxConcurrency,
      maxErrors,
      concurrencyLimit: maxConcurrency.endsWith("%")
        ? Math.max(1, Math.ceil((n * Number(maxConcurrency.slice(0, -1))) / 100))
        : Number(maxConcurrency),
      errorLimit: maxErrors.endsWith("%") ? Math.floor((n * Number(maxErrors.slice(0, -1))) / 100) : Number(maxErrors),
      outputS3BucketName: p.str("OutputS3BucketName") ?? "",
      outputS3KeyPrefix: p.str("OutputS3KeyPrefix") ?? "",
      outputS3Region: p.str("OutputS3Region") ?? this.cloud.region,
      serviceRole: p.str("ServiceRoleArn") ?? "",
      notificationConfig: {
        NotificationArn: nc?.str("NotificationArn") ?? "",
        NotificationEvents: nc?.list<string>("NotificationEvents") ?? [],
        NotificationType: nc?.str("NotificationType") ?? "",
      },
      cloudWatchOutputConfig: {
        CloudWatchLogGroupName: cw?.str("CloudWatchLogGroupName") ?? "",
        CloudWatchOutputEnabled: cw?.bool("CloudWatchOutputEnabled") ?? false,
      },
      invocations: [],
      status: "Pending",
      details: "Pending",
      cancelRequested: false,
      halted: false,
    };
    const visibleMs = this.cloud.setting("ssm.invocationVisibleMs", 500);
    for (const instanceId of resolved) {
      cmd.invocations.push({
        command: cmd,
        instanceId,
        status: "Pending",
        details: "Pending",
        visibleAt: now + visibleMs,
        dispatched: false,
        responseCode: -1,
        stdout: "",
        stderr: "",
        timers: new Set(),
      });
    }
    this.commands.set(id, cmd);
    this.emitCommand(cmd);
    for (const inv of cmd.invocations) this.emitInvocation(inv);
    if (cmd.invocations.length > 0) {
      cmd.deadline = this.cloud.clock.setTimeout(() => this.deliveryDeadline(cmd), timeoutSeconds * 1000);
      this.dispatchMore(cmd);
    } else {
      this.updateCommandStatus(cmd);
    }
    return { Command: this.renderCommand(cmd) };
  }

  getCommandInvocation(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const commandId = p.str("CommandId", { required: true });
    const instanceId = p.str("InstanceId", { required: true });
    const pluginName = p.str("PluginName");
    if (commandId.length !== 36) throw lengthError("commandId", commandId, 36);
    if (!INSTANCE_ID.test(instanceId)) throw new AwsError("InvalidInstanceId", "");
    if (pluginName !== undefined && pluginName !== PLUGIN)
      throw new AwsError("InvalidPluginName", `The plugin name ${pluginName} is not valid for this document.`);
    const inv = this.commands.get(commandId)?.invocations.find((i) => i.instanceId === instanceId);
    // Invocations appear shortly after SendCommand; until then (and for unknown pairs) AWS answers
    // InvocationDoesNotExist, which the official waiter retries on.
    if (!inv || this.cloud.clock.now() < inv.visibleAt) throw new AwsError("InvocationDoesNotExist", "");
    const cmd = inv.command;
    const now = this.cloud.clock.now();
    return {
      CommandId: cmd.id,
      InstanceId: inv.instanceId,
      Comment: cmd.comment,
      DocumentName: cmd.documentName,
      DocumentVersion: cmd.documentVersion,
      PluginName: PLUGIN,
      ResponseCode: inv.responseCode,
      // These three are strings on the wire, not epoch numbers (reference §5.4).
      ExecutionStartDateTime: inv.startedAt === undefined ? "" : new Date(inv.startedAt).toISOString(),
      ExecutionElapsedTime: inv.startedAt === undefined ? "" : isoDuration((inv.endedAt ?? now) - inv.startedAt),
      ExecutionEndDateTime: inv.endedAt === undefined || inv.startedAt === undefined ? "" : new Date(inv.endedAt).toISOString(),
      Status: inv.status,
      StatusDetails: inv.details,
      StandardOutputContent: inv.stdout.slice(0, STDOUT_LIMIT),
      StandardOutputUrl: "",
      StandardErrorContent: inv.stderr.slice(0, STDERR_LIMIT),
      StandardErrorUrl: "",
      CloudWatchOutputConfig: cmd.cloudWatchOutputConfig,
    };
  }

  listCommandInvocations(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const commandId = p.str("CommandId");
    const instanceId = p.str("InstanceId");
    const details = p.bool("Details", false) ?? false;
    const maxResults = p.int("MaxResults", { min: 1, max: 50 }) ?? 50;
    const filters = readCommandFilters(p, "invocation");
    const now = this.cloud.clock.now();
    const all: Invocation[] = [];
    for (const cmd of this.sortedCommands()) {
      if (commandId && cmd.id !== commandId) continue;
      if (!filters.every((f) => f(cmd))) continue;
      for (const inv of cmd.invocations) {
        if (instanceId && inv.instanceId !== instanceId) continue;
        if (now < inv.visibleAt) continue;
        if (!filtersMatchInvocation(p, inv)) continue;
        all.push(inv);
      }
    }
    const { page, next } = paginate(all, maxResults, p.str("NextToken"));
    return { CommandInvocations: page.map((inv) => this.renderInvocation(inv, details)), NextToken: next };
  }

  listCommands(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const commandId = p.str("CommandId");
    const instanceId = p.str("InstanceId");
    const maxResults = p.int("MaxResults", { min: 1, max: 50 }) ?? 50;
    const filters = readCommandFilters(p, "command");
    if (commandId && !this.commands.has(commandId)) throw new AwsError("InvalidCommandId", "");
    const all = this.sortedCommands().filter(
      (c) =>
        (!commandId || c.id === commandId) &&
        (!instanceId || c.invocations.some((i) => i.instanceId === instanceId)) &&
        filters.every((f) => f(c)),
    );
    const { page, next } = paginate(all, maxResults, p.str("NextToken"));
    return { Commands: page.map((c) => this.renderCommand(c)), NextToken: next };
  }

  cancelCommand(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const commandId = p.str("CommandId", { required: true });
    const ids = p.list<string>("InstanceIds");
    const cmd = this.commands.get(commandId);
    if (!cmd) throw new AwsError("InvalidCommandId", "");
    if (ids.length === 0) cmd.cancelRequested = true;
    const cancelMs = this.cloud.setting("ssm.cancelMs", 1000);
    for (const inv of cmd.invocations) {
      if (ids.length > 0 && !ids.includes(inv.instanceId)) continue;
      if (TERMINAL.has(inv.status) || inv.cancelling) continue;
      inv.cancelling = true;
      this.clearTimers(inv);
      inv.run?.kill();
      this.setStatus(inv, "Cancelling", "Cancelling");
      const t = this.cloud.clock.setTimeout(() => {
        inv.timers.delete(t);
        // The agent reports its stopped-preemptively code for a process it killed.
        this.finish(inv, "Cancelled", "Cancelled", inv.startedAt === undefined ? -1 : KILLED_EXIT_CODE);
      }, cancelMs);
      inv.timers.add(t);
    }
    this.updateCommandStatus(cmd);
    return {};
  }

  // ---------------------------------------------------------------- lifecycle

  /** The instance stopped or terminated: its agent is gone. */
  instanceGone(instanceId: string): void {
    for (const cmd of this.commands.values()) {
      for (const inv of cmd.invocations) {
        if (inv.instanceId !== instanceId || !inv.dispatched || TERMINAL.has(inv.status) || inv.cancelling) continue;
        if (inv.status === "InProgress") {
          // The agent's shutdown flag turns a killed process into Failed (not TimedOut).
          inv.run?.kill();
          this.finish(inv, "Failed", "Failed", KILLED_EXIT_CODE);
        } else {
          this.finish(inv, "Failed", "Undeliverable", -1);
        }
      }
    }
  }

  /** Kills every running script and clears every timer (cloud shutdown). */
  stop(): void {
    for (const cmd of this.commands.values()) {
      if (cmd.deadline) this.cloud.clock.clearTimeout(cmd.deadline);
      for (const inv of cmd.invocations) {
        this.clearTimers(inv);
        inv.run?.kill();
      }
    }
  }

  all(): Command[] {
    return this.sortedCommands();
  }

  // ---------------------------------------------------------------- targeting

  /**
   * InstanceIds: every node must be managed, online and its instance running, else the whole call
   * fails. An agent that lost its connection is rejected too unless `ssm.rejectOfflineAgents` is
   * false, in which case its invocation waits (Delayed) until the delivery timeout.
   */
  private checkInstanceIds(ids: string[]): string[] {
    const seen = new Set<string>();
    const bad: string[] = [];
    const rejectOffline = this.cloud.setting("ssm.rejectOfflineAgents", true);
    for (const id of ids) {
      if (seen.has(id)) throw new AwsError("DuplicateInstanceId", `Instance Id ${id} is duplicated in the request.`);
      seen.add(id);
      const inst = this.agents.instance(id);
      const ping = this.agents.pingStatus(id);
      if (!INSTANCE_ID.test(id) || !inst || inst.state !== "running" || !ping || (rejectOffline && ping !== "Online"))
        bad.push(id);
    }
    if (bad.length > 0)
      throw new AwsError(
        "InvalidInstanceId",
        `Instances [[${bad.join(", ")}]] not in a valid state for account ${this.cloud.accountId}`,
      );
    return ids;
  }

  /**
   * Targets are ANDed; values of one target are ORed. Tag targets reach running managed nodes; an
   * `InstanceIds` target keeps ids that are not managed, whose invocations end Undeliverable.
   */
  private resolveTargets(targets: Target[]): string[] {
    let ids: string[] | undefined;
    const managed = () => this.agents.list().map((a) => a.instanceId);
    for (const t of targets) {
      if (!t || typeof t.Key !== "string") throw new AwsError("ValidationException", "Each target needs a Key.");
      const values = Array.isArray(t.Values) ? t.Values : [];
      let matched: string[];
      if (t.Key === "InstanceIds") matched = values;
      else if (t.Key === "tag-key") matched = managed().filter((id) => values.some((k) => this.agents.instance(id)?.tags.has(k)));
      else if (t.Key.startsWith("tag:")) {
        const key = t.Key.slice(4);
        matched = managed().filter((id) => {
          const v = this.agents.instance(id)?.tags.get(key);
          return v !== undefined && values.includes(v);
        });
      } else if (t.Key.startsWith("resource-groups:"))
        matched = []; // no resource groups in the simulated cloud
      else
        throw new AwsError(
          "ValidationException",
          `Target key ${t.Key} is not supported. Use InstanceIds, tag:<key>, tag-key or resource-groups:Name.`,
        );
      ids = ids === undefined ? [...new Set(matched)] : ids.filter((id) => matched.includes(id));
    }
    return ids ?? [];
  }

  // ---------------------------------------------------------------- invocation state machine

  private dispatchMore(cmd: Command): void {
    if (cmd.halted || cmd.cancelRequested) return;
    let inflight = cmd.invocations.filter((i) => i.dispatched && !TERMINAL.has(i.status)).length;
    for (const inv of cmd.invocations) {
      if (inflight >= cmd.concurrencyLimit) break;
      if (inv.dispatched || TERMINAL.has(inv.status) || inv.cancelling) continue;
      inv.dispatched = true;
      inflight++;
      this.after(inv, this.cloud.jitter(this.cloud.setting("ssm.deliveryMs", 2000), 0.5), () => this.deliver(inv));
    }
  }

  private deliver(inv: Invocation): void {
    const inst = this.agents.instance(inv.instanceId);
    if (inst?.state !== "running" || !this.agents.isRegistered(inv.instanceId)) {
      this.finish(inv, "Failed", "Undeliverable", -1);
      return;
    }
    if (!this.agents.isOnline(inv.instanceId)) {
      // The service retries delivery until the command's delivery timeout (TimeoutSeconds).
      if (inv.status !== "Delayed") this.setStatus(inv, "Delayed", "Delayed");
      this.after(inv, this.cloud.setting("ssm.deliveryRetryMs", 30_000), () => this.deliver(inv));
      return;
    }
    this.start(inv);
  }

  private start(inv: Invocation): void {
    const cmd = inv.command;
    inv.startedAt = this.cloud.clock.now();
    this.setStatus(inv, "InProgress", "InProgress");
    this.updateCommandStatus(cmd);
    const timeoutMs = cmd.executionTimeout * 1000;
    const fault = this.cloud.faults.match("command", {
      ...instanceAttrs(this.agents.instance(inv.instanceId), inv.instanceId),
      commandId: cmd.id,
      match: cmd.script,
    });
    const timedOut = () => this.complete(inv, { timedOut: true, exitCode: KILLED_EXIT_CODE, stdout: "", stderr: "" });
    if (fault?.mode === "timeout") {
      this.after(inv, timeoutMs, timedOut);
    } else if (fault?.mode === "fail") {
      const delay = Number(fault.delayMs ?? 0);
      if (delay >= timeoutMs) this.after(inv, timeoutMs, timedOut);
      else
        this.after(inv, delay, () =>
          this.complete(inv, {
            exitCode: Number(fault.exitCode ?? 1),
            stdout: "",
            stderr: String(fault.message ?? "command failed (injected fault)"),
          }),
        );
    } else if (fault?.mode === "slow") {
      const delay = Number(fault.delayMs ?? 0);
      if (delay >= timeoutMs) this.after(inv, timeoutMs, timedOut);
      else this.after(inv, delay, () => this.execute(inv, timeoutMs - delay));
    } else {
      this.execute(inv, timeoutMs);
    }
  }

  private execute(inv: Invocation, remainingMs: number): void {
    const cmd = inv.command;
    const inst = this.agents.instance(inv.instanceId);
    if (!inst) {
      this.finish(inv, "Failed", "Undeliverable", -1);
      return;
    }
    const rootDir = inst.rootDir;
    const orchestration = path.join(
      rootDir,
      "var/lib/amazon/ssm",
      inv.instanceId,
      "document/orchestration",
      cmd.id,
      "awsrunShellScript/0.awsrunShellScript",
    );
    // workingDirectory is a path on the instance, so it lives under the sandbox root. Without one the
    // real agent starts in its orchestration directory; here scripts start at the sandbox root, the
    // instance's "/", so relative paths such as opt/sample-app resolve inside the sandbox.
    const cwd = cmd.workingDirectory ? path.join(rootDir, path.resolve("/", cmd.workingDirectory)) : rootDir;
    const env: Record<string, string> = {
      PATH: `${path.join(rootDir, "usr/local/bin")}:${process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"}`,
      HOME: rootDir,
      LANG: "C.UTF-8",
      KILN_ROOT: rootDir,
      KILN_INSTANCE_ID: inv.instanceId,
      AWS_SSM_INSTANCE_ID: inv.instanceId,
      AWS_SSM_REGION_NAME: this.cloud.region,
      AWS_REGION: this.cloud.region,
      ...(this.cloud.endpoint ? { AWS_ENDPOINT_URL: this.cloud.endpoint } : {}),
    };
    const virtual = this.cloud.clock.kind === "virtual";
    const run = runShellScript({
      clock: this.cloud.clock,
      dir: orchestration,
      script: cmd.script,
      cwd,
      env,
      wallLimitMs: virtual ? this.cloud.setting("ssm.maxWallMs", 120_000) : undefined,
      sandbox: { writable: rootDir, mode: sandboxMode(this.cloud.setting("ssm.sandbox", "auto")) },
    });
    inv.run = run;
    // Under a virtual clock this timer cannot fire while the process holds the clock; see header.
    const killTimer = this.after(inv, remainingMs, () => {
      inv.execTimedOut = true;
      run.kill();
    });
    run.done.then(
      (res) => {
        inv.run = undefined;
        this.cloud.clock.clearTimeout(killTimer);
        inv.timers.delete(killTimer);
        if (TERMINAL.has(inv.status) || inv.cancelling) {
          // Shut down or cancelled meanwhile: keep what the script printed before it was killed.
          if (!inv.stdout && !inv.stderr) {
            inv.stdout = res.stdout;
            inv.stderr = res.stderr;
          }
          return;
        }
        const timedOut = inv.execTimedOut === true || res.wallTimedOut;
        this.after(inv, this.cloud.jitter(this.cloud.setting("ssm.resultMs", 1000), 0.2), () =>
          this.complete(inv, { timedOut, exitCode: res.exitCode, stdout: res.stdout, stderr: res.stderr }),
        );
      },
      (err: unknown) => {
        inv.run = undefined;
        if (TERMINAL.has(inv.status) || inv.cancelling) return;
        this.complete(inv, { exitCode: 1, stdout: "", stderr: `failed to run commands: ${(err as Error).message}` });
      },
    );
  }

  private complete(inv: Invocation, r: { timedOut?: boolean; exitCode: number; stdout: string; stderr: string }): void {
    inv.stdout = r.stdout;
    inv.stderr = r.stderr;
    // The Linux agent maps exit code 137 (its own kill code) to TimedOut even when the script
    // exited 137 by itself, e.g. after an OOM kill.
    if (r.timedOut || r.exitCode === KILLED_EXIT_CODE) {
      this.finish(inv, "TimedOut", "ExecutionTimedOut", this.cloud.setting("ssm.timeoutResponseCode", KILLED_EXIT_CODE));
    } else if (r.exitCode === 0) {
      this.finish(inv, "Success", "Success", 0);
    } else {
      this.finish(inv, "Failed", "Failed", r.exitCode);
    }
  }

  /** Not started before TimeoutSeconds: every waiting invocation ends DeliveryTimedOut. */
  private deliveryDeadline(cmd: Command): void {
    cmd.deadline = undefined;
    for (const inv of cmd.invocations) {
      if (TERMINAL.has(inv.status) || inv.cancelling || inv.startedAt !== undefined) continue;
      this.finish(inv, "TimedOut", "DeliveryTimedOut", -1, false);
    }
    this.afterInvocationChange(cmd);
  }

  private finish(inv: Invocation, status: InvocationStatus, details: string, code: number, propagate = true): void {
    if (TERMINAL.has(inv.status)) return;
    this.clearTimers(inv);
    inv.cancelling = false;
    inv.responseCode = code;
    if (inv.startedAt !== undefined) inv.endedAt = this.cloud.clock.now();
    this.setStatus(inv, status, details);
    if (propagate) this.afterInvocationChange(inv.command);
  }

  private afterInvocationChange(cmd: Command): void {
    const errors = cmd.invocations.filter((i) => i.details === "Failed" || i.details === "ExecutionTimedOut").length;
    if (!cmd.halted && errors > cmd.errorLimit) {
      // MaxErrors exceeded: running invocations finish, the rest are never sent.
      cmd.halted = true;
      for (const inv of cmd.invocations)
        if (!inv.dispatched && !TERMINAL.has(inv.status)) this.finish(inv, "Cancelled", "Terminated", -1, false);
    }
    this.dispatchMore(cmd);
    this.updateCommandStatus(cmd);
  }

  private updateCommandStatus(cmd: Command): void {
    const [status, details] = aggregate(cmd);
    if (cmd.invocations.every((i) => TERMINAL.has(i.status)) && cmd.deadline) {
      this.cloud.clock.clearTimeout(cmd.deadline);
      cmd.deadline = undefined;
    }
    if (status === cmd.status && details === cmd.details) return;
    cmd.status = status;
    cmd.details = details;
    this.emitCommand(cmd);
  }

  private setStatus(inv: Invocation, status: InvocationStatus, details: string): void {
    const changed = inv.status !== status;
    inv.status = status;
    inv.details = details;
    if (changed) this.emitInvocation(inv);
  }

  /** A cloud-clock timer owned by the invocation; it does nothing once the invocation is over. */
  private after(inv: Invocation, ms: number, fn: () => void): TimerHandle {
    const t = this.cloud.clock.setTimeout(() => {
      inv.timers.delete(t);
      if (TERMINAL.has(inv.status) || inv.cancelling) return;
      fn();
    }, ms);
    inv.timers.add(t);
    return t;
  }

  private clearTimers(inv: Invocation): void {
    for (const t of inv.timers) this.cloud.clock.clearTimeout(t);
    inv.timers.clear();
  }

  // ---------------------------------------------------------------- rendering and events

  private sortedCommands(): Command[] {
    return [...this.commands.values()].sort((a, b) => b.requestedAt - a.requestedAt);
  }

  renderCommand(cmd: Command): Record<string, unknown> {
    const c = counts(cmd);
    return {
      CommandId: cmd.id,
      DocumentName: cmd.documentName,
      DocumentVersion: cmd.documentVersion,
      Comment: cmd.comment,
      ExpiresAfter: new Date(cmd.expiresAfter),
      Parameters: cmd.parameters,
      InstanceIds: cmd.instanceIds,
      Targets: cmd.targets,
      RequestedDateTime: new Date(cmd.requestedAt),
      Status: cmd.status,
      StatusDetails: cmd.details,
      OutputS3Region: cmd.outputS3Region,
      OutputS3BucketName: cmd.outputS3BucketName,
      OutputS3KeyPrefix: cmd.outputS3KeyPrefix,
      MaxConcurrency: cmd.maxConcurrency,
      MaxErrors: cmd.maxErrors,
      TargetCount: c.target,
      CompletedCount: c.completed,
      ErrorCount: c.errors,
      DeliveryTimedOutCount: c.deliveryTimedOut,
      ServiceRole: cmd.serviceRole,
      NotificationConfig: cmd.notificationConfig,
      CloudWatchOutputConfig: cmd.cloudWatchOutputConfig,
      TimeoutSeconds: cmd.timeoutSeconds,
    };
  }

  private renderInvocation(inv: Invocation, details: boolean): Record<string, unknown> {
    const cmd = inv.command;
    const inst = this.agents.instance(inv.instanceId);
    return {
      CommandId: cmd.id,
      InstanceId: inv.instanceId,
      InstanceName: inst ? computerName(inst.privateIp) : "",
      Comment: cmd.comment,
      DocumentName: cmd.documentName,
      DocumentVersion: cmd.documentVersion,
      RequestedDateTime: new Date(cmd.requestedAt),
      Status: inv.status,
      StatusDetails: inv.details,
      TraceOutput: "",
      StandardOutputUrl: "",
      StandardErrorUrl: "",
      CommandPlugins: details
        ? [
            {
              Name: PLUGIN,
              Status: pluginStatus(inv.status),
              StatusDetails: inv.details,
              ResponseCode: inv.responseCode,
              ResponseStartDateTime: inv.startedAt === undefined ? undefined : new Date(inv.startedAt),
              ResponseFinishDateTime: inv.endedAt === undefined ? undefined : new Date(inv.endedAt),
              Output: pluginOutput(inv),
              StandardOutputUrl: "",
              StandardErrorUrl: "",
              OutputS3Region: cmd.outputS3Region,
              OutputS3BucketName: cmd.outputS3BucketName,
              OutputS3KeyPrefix: cmd.outputS3KeyPrefix,
            },
          ]
        : [],
      ServiceRole: cmd.serviceRole,
      NotificationConfig: cmd.notificationConfig,
      CloudWatchOutputConfig: cmd.cloudWatchOutputConfig,
    };
  }

  private instanceArn(id: string): string {
    return `arn:aws:ec2:${this.cloud.region}:${this.cloud.accountId}:instance/${id}`;
  }

  private emitCommand(cmd: Command): void {
    this.cloud.emit({
      source: "aws.ssm",
      detailType: "EC2 Command Status-change Notification",
      resources: cmd.invocations.map((i) => this.instanceArn(i.instanceId)),
      detail: {
        "command-id": cmd.id,
        "document-name": cmd.documentName,
        "expire-after": new Date(cmd.expiresAfter).toISOString(),
        parameters: cmd.parameters,
        "requested-date-time": new Date(cmd.requestedAt).toISOString(),
        status: cmd.status,
      },
    });
  }

  private emitInvocation(inv: Invocation): void {
    this.cloud.emit({
      source: "aws.ssm",
      detailType: "EC2 Command Invocation Status-change Notification",
      resources: [this.instanceArn(inv.instanceId)],
      detail: {
        "command-id": inv.command.id,
        "document-name": inv.command.documentName,
        "instance-id": inv.instanceId,
        "requested-date-time": new Date(inv.command.requestedAt).toISOString(),
        status: inv.status,
      },
    });
  }
}

// -------------------------------------------------------------------- pure helpers

/**
 * Parameters of AWS-RunShellScript: `commands` (StringList, required), `workingDirectory`,
 * `executionTimeout` (1–172800 s, default 3600). Anything else is `InvalidParameters`.
 */
function readDocumentParameters(raw: unknown): Record<string, string[]> {
  if (raw === undefined || raw === null)
    throw new AwsError("InvalidParameters", "document AWS-RunShellScript requires parameter commands");
  if (typeof raw !== "object" || Array.isArray(raw))
    throw new AwsError("InvalidParameters", "Parameters must be a map of string lists");
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!["commands", "workingDirectory", "executionTimeout"].includes(k))
      throw new AwsError("InvalidParameters", `document AWS-RunShellScript does not support parameter ${k}`);
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
      throw new AwsError("InvalidParameters", `parameter ${k} must be a list of strings`);
    out[k] = v as string[];
  }
  if (!out.commands || out.commands.length === 0)
    throw new AwsError("InvalidParameters", "document AWS-RunShellScript requires parameter commands");
  for (const k of ["workingDirectory", "executionTimeout"]) {
    if (out[k] && out[k].length > 1) throw new AwsError("InvalidParameters", `parameter ${k} takes a single value`);
  }
  const t = out.executionTimeout?.[0];
  if (t !== undefined && !(/^[1-9][0-9]*$/.test(t) && Number(t) <= 172_800)) {
    throw new AwsError("InvalidParameters", `executionTimeout ${t} is not valid: expected whole seconds between 1 and 172800`);
  }
  return out;
}

function lengthError(member: string, value: string, len: number): AwsError {
  return new AwsError(
    "ValidationException",
    `1 validation error detected: Value '${value}' at '${member}' failed to satisfy constraint: Member must have length equal to ${len}`,
  );
}

type CommandPredicate = (c: Command) => boolean;

/** ListCommands / ListCommandInvocations `Filters` ({key, value}; keys per the model). */
function readCommandFilters(p: Params, level: "command" | "invocation"): CommandPredicate[] {
  const filters = p.list<{ key?: string; value?: string }>("Filters");
  if (filters.length > 5) throw new AwsError("ValidationException", "At most 5 filters are allowed.");
  return filters.map((f) => {
    const value = String(f?.value ?? "");
    switch (f?.key) {
      case "InvokedAfter":
      case "InvokedBefore": {
        const at = Date.parse(value);
        if (Number.isNaN(at)) throw new AwsError("InvalidFilterValue", `${value} is not a valid date for ${f.key}`);
        return f.key === "InvokedAfter" ? (c) => c.requestedAt >= at : (c) => c.requestedAt <= at;
      }
      case "Status":
        // ListCommandInvocations applies it per invocation (filtersMatchInvocation).
        return level === "command" ? (c) => c.status === value : () => true;
      case "ExecutionStage":
        if (value !== "Executing" && value !== "Complete")
          throw new AwsError("InvalidFilterValue", `${value} is not a valid ExecutionStage`);
        return (c) => (value === "Complete") === c.invocations.every((i) => TERMINAL.has(i.status));
      case "DocumentName":
        return (c) => c.documentName === value;
      default:
        throw new AwsError("InvalidFilterKey", `${String(f?.key)} is not a valid filter key`);
    }
  });
}

function filtersMatchInvocation(p: Params, inv: Invocation): boolean {
  return p.list<{ key?: string; value?: string }>("Filters").every((f) => f?.key !== "Status" || inv.status === f.value);
}

export function aggregate(cmd: Command): [CommandStatus, string] {
  const invs = cmd.invocations;
  if (invs.length === 0) return ["Success", "NoInstancesInTag"]; // UNSURE: AWS's Status for an empty target set
  if (!invs.every((i) => TERMINAL.has(i.status))) {
    if (cmd.cancelRequested) return ["Cancelling", "Cancelling"];
    if (invs.some((i) => i.status !== "Pending")) return ["InProgress", "InProgress"];
    return ["Pending", "Pending"];
  }
  const c = counts(cmd);
  const failed = invs.filter((i) => i.details === "Failed").length;
  if (c.errors > cmd.errorLimit) return failed > 0 ? ["Failed", "Failed"] : ["TimedOut", "ExecutionTimedOut"];
  if (c.deliveryTimedOut > cmd.errorLimit) return ["TimedOut", "DeliveryTimedOut"];
  if (invs.some((i) => i.details === "Cancelled")) return ["Cancelled", "Cancelled"];
  // Undeliverable invocations count neither for Success nor for Incomplete (AWS docs).
  const counted = invs.filter((i) => i.details !== "Undeliverable");
  if (counted.length === 0) return ["Failed", "Undeliverable"];
  if (counted.every((i) => i.status === "Success")) return ["Success", "Success"];
  return ["Failed", "Incomplete"]; // UNSURE: the Status AWS pairs with Incomplete
}

function counts(cmd: Command): { target: number; completed: number; errors: number; deliveryTimedOut: number } {
  let completed = 0;
  let errors = 0;
  let deliveryTimedOut = 0;
  for (const i of cmd.invocations) {
    if (TERMINAL.has(i.status)) completed++;
    if (i.details === "Failed" || i.details === "ExecutionTimedOut") errors++;
    if (i.details === "DeliveryTimedOut") deliveryTimedOut++;
  }
  return { target: cmd.invocations.length, completed, errors, deliveryTimedOut };
}

function pluginStatus(s: InvocationStatus): string {
  if (s === "Delayed") return "Pending";
  if (s === "Cancelling") return "InProgress";
  return s;
}

/** CommandPlugins[].Output: stdout, then stderr after the agent's separator, at most 2,500 chars. */
function pluginOutput(inv: Invocation): string {
  const out = inv.stderr ? `${inv.stdout}\n----------ERROR-------\n${inv.stderr}` : inv.stdout;
  return out.slice(0, PLUGIN_OUTPUT_LIMIT);
}

export function computerName(privateIp: string): string {
  return `ip-${privateIp.replaceAll(".", "-")}.ec2.internal`;
}
