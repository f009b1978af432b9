/** The operator commands: each reads or changes kiln's state only through AWS APIs. */
import { createHmac, randomBytes } from "node:crypto";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import {
  DescribeExecutionCommand,
  type ExecutionStatus,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  RedriveExecutionCommand,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { COMMIT_PATTERN, loadConfig, serviceConfig } from "../../lib/config/index.ts";
import { type ServiceStatus, serviceStatus } from "../../lib/ops/status.ts";
import { CliError, EXIT, type Target } from "./target.ts";

export type Out = (line: string) => void;

function requireService(service: string | undefined): string {
  if (!service) throw new CliError("a service name is required", EXIT.usage);
  try {
    serviceConfig(loadConfig(), service);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.notFound);
  }
  return service;
}

function requireMachine(arn: string | undefined, what: string): string {
  if (!arn) throw new CliError(`the ${what} state machine is not deployed in this stack`, EXIT.notFound);
  return arn;
}

/** An execution given by ARN or by name (resolved against the deploy, abort and rollback machines). */
export function executionArn(t: Target, ref: string | undefined): string {
  if (!ref) throw new CliError("an execution ARN or name is required", EXIT.usage);
  if (ref.startsWith("arn:")) {
    if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/.test(ref)) throw new CliError(`not an execution ARN: ${ref}`, EXIT.usage);
    return ref;
  }
  if (!/^[A-Za-z0-9_-]{1,80}$/.test(ref)) throw new CliError(`not an execution name: ${ref}`, EXIT.usage);
  const deploy = requireMachine(t.stateMachines.deploy, "deploy");
  return deploy.replace(":stateMachine:", ":execution:") + `:${ref}`;
}

export async function deploy(t: Target, service: string | undefined, commit: string | undefined, out: Out): Promise<string> {
  const svc = requireService(service);
  if (!commit || !COMMIT_PATTERN.test(commit)) throw new CliError("--commit must be a 40-character lowercase hex commit id", EXIT.usage);
  // An operator's commit enters the same queue as a push (the requestDeploy function).
  const fn = t.functions.requestDeploy;
  if (!fn) throw new CliError("the requestDeploy function is not deployed in this stack", EXIT.notFound);
  const r = await t.clients.lambda.send(
    new InvokeCommand({ FunctionName: fn, Payload: Buffer.from(JSON.stringify({ service: svc, commit, requestedBy: process.env.USER ?? "operator" })) }),
  );
  const payload = JSON.parse(Buffer.from(r.Payload ?? new Uint8Array()).toString("utf8") || "{}");
  if (r.FunctionError) throw new CliError(`deploy failed: ${payload.errorType}: ${payload.errorMessage}`, EXIT.failed);
  if (payload.action === "started") {
    out(`started ${payload.executionArn}`);
    return payload.executionArn as string;
  }
  if (payload.action === "queued") {
    out(`queued behind ${payload.holder}: ${payload.reason}`);
    return t.stateMachines.deploy!.replace(":stateMachine:", ":execution:") + `:${payload.name}`;
  }
  throw new CliError(`not deployed: ${payload.reason}`, EXIT.failed);
}

/** Sends a GitHub push webhook, signed with the stack's secret, to the stack's webhook URL. */
export async function push(
  t: Target,
  service: string | undefined,
  opts: { commit?: string; branch?: string },
  out: Out,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const svc = requireService(service);
  if (!t.webhookUrl || !t.webhookSecret) throw new CliError("this target has no local webhook URL and secret (push works against the local stack)", EXIT.usage);
  const cfg = serviceConfig(loadConfig(), svc);
  const commit = opts.commit ?? randomBytes(20).toString("hex");
  if (!COMMIT_PATTERN.test(commit)) throw new CliError("--commit must be a 40-character lowercase hex commit id", EXIT.usage);
  const branch = opts.branch ?? Object.keys(cfg.branches)[0]!;
  const r = await sendPush(t.webhookUrl, t.webhookSecret, { repository: cfg.repository, branch, commit });
  out(`${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

/** A GitHub-shaped push delivery (the fields GitHub sends that kiln reads, plus common ones). */
export function pushPayload(p: { repository: string; branch: string; commit: string; before?: string }): Record<string, unknown> {
  const [owner, name] = p.repository.split("/");
  return {
    ref: `refs/heads/${p.branch}`,
    before: p.before ?? "0".repeat(40),
    after: p.commit,
    created: false,
    deleted: false,
    forced: false,
    compare: `https://github.com/${p.repository}/compare/${p.commit.slice(0, 12)}`,
    repository: { id: 1, name, full_name: p.repository, owner: { login: owner, name: owner }, default_branch: p.branch, private: true },
    pusher: { name: "kiln-local", email: "kiln@example.invalid" },
    sender: { login: "kiln-local" },
    head_commit: { id: p.commit, message: "local change", timestamp: new Date().toISOString(), author: { name: "kiln-local" } },
    commits: [{ id: p.commit, message: "local change" }],
  };
}

export async function sendPush(
  url: string,
  secret: string,
  p: { repository: string; branch: string; commit: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = JSON.stringify(pushPayload(p));
  const sig = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "push",
      "x-github-delivery": randomBytes(16).toString("hex"),
      "x-hub-signature-256": sig,
      "user-agent": "GitHub-Hookshot/kiln-local",
    },
    body,
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, body: parsed };
}

export async function status(t: Target, service: string | undefined): Promise<{ services: ServiceStatus[]; stack: Record<string, unknown> }> {
  const config = loadConfig();
  const names = service ? [requireService(service)] : Object.keys(config.services);
  const services = await Promise.all(
    names.map((s) => serviceStatus(s, serviceConfig(config, s), t.clients, { deployStateMachineArn: t.stateMachines.deploy })),
  );
  return {
    services,
    stack: { kind: t.kind, region: t.region, endpoint: t.endpoint, webhookUrl: t.webhookUrl, consoleUrl: t.consoleUrl, stateMachines: t.stateMachines },
  };
}

export function formatStatus(s: { services: ServiceStatus[]; stack: Record<string, unknown> }, out: Out): void {
  if (s.stack.kind === "local") out(`local stack  endpoint ${s.stack.endpoint}  console ${s.stack.consoleUrl ?? "-"}  webhook ${s.stack.webhookUrl ?? "-"}`);
  for (const svc of s.services) {
    out("");
    out(`${svc.service}  live commit ${svc.liveCommit?.slice(0, 12) ?? "(unknown)"}  ${svc.loadBalancer?.url ?? ""}`);
    if (svc.error) out(`  error: ${svc.error}`);
    out(`  traffic  ${svc.weights.map((w) => `${w.name} ${w.weight}%`).join("  |  ") || "-"}`);
    for (const f of svc.fleets) {
      const healthy = f.instances.filter((i) => i.health === "healthy").length;
      out(`  ${f.role.padEnd(8)} ${f.group}  commit ${f.commit?.slice(0, 12) ?? "?"}  desired ${f.capacity.desired}  instances ${f.instances.length}  healthy ${healthy}`);
    }
    for (const e of svc.executions.slice(0, 5)) out(`  ${e.status.padEnd(9)} ${e.name}  ${e.startDate ?? ""}`);
  }
}

export interface ExecutionLog {
  arn: string;
  status: ExecutionStatus | string;
  error?: string;
  cause?: string;
  redriveCount?: number;
  events: { id: number; at: string; type: string; state?: string; detail?: string }[];
}

export async function logs(t: Target, ref: string | undefined): Promise<ExecutionLog> {
  const arn = executionArn(t, ref);
  let d;
  try {
    d = await t.clients.sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
  } catch (err) {
    if ((err as Error).name === "ExecutionDoesNotExist") throw new CliError(`no execution ${arn}`, EXIT.notFound);
    throw err;
  }
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const r = await t.clients.sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, nextToken, maxResults: 1000 }));
    events.push(...(r.events ?? []));
    nextToken = r.nextToken;
  } while (nextToken);
  return {
    arn,
    status: d.status!,
    error: d.error,
    cause: d.cause,
    redriveCount: d.redriveCount,
    events: events.map((e) => ({ id: e.id!, at: e.timestamp!.toISOString(), type: e.type!, ...describeEvent(e) })),
  };
}

function describeEvent(e: HistoryEvent): { state?: string; detail?: string } {
  const entered = e.stateEnteredEventDetails ?? e.stateExitedEventDetails;
  if (entered) return { state: entered.name };
  const failed = e.taskFailedEventDetails ?? e.executionFailedEventDetails ?? e.lambdaFunctionFailedEventDetails;
  if (failed) return { detail: `${failed.error ?? ""}: ${(failed.cause ?? "").slice(0, 400)}` };
  return {};
}

export function formatLogs(l: ExecutionLog, out: Out): void {
  out(`${l.arn}  ${l.status}${l.redriveCount ? `  (redriven ${l.redriveCount}×)` : ""}`);
  if (l.error) out(`  ${l.error}: ${l.cause ?? ""}`);
  for (const e of l.events) {
    if (!e.state && !e.detail && !/^Execution/.test(e.type)) continue;
    out(`  ${e.at}  ${e.type.padEnd(28)} ${e.state ?? ""}${e.detail ? ` ${e.detail}` : ""}`);
  }
}

export async function redrive(t: Target, ref: string | undefined, out: Out): Promise<void> {
  const arn = executionArn(t, ref);
  try {
    await t.clients.sfn.send(new RedriveExecutionCommand({ executionArn: arn }));
  } catch (err) {
    const name = (err as Error).name;
    if (name === "ExecutionNotRedrivable" || name === "ExecutionDoesNotExist") throw new CliError(`cannot redrive ${arn}: ${(err as Error).message}`, EXIT.failed);
    throw err;
  }
  out(`redriven ${arn}`);
}

export async function abort(t: Target, ref: string | undefined, out: Out): Promise<string> {
  if (!ref) throw new CliError("an execution ARN/name or a service is required", EXIT.usage);
  let input: Record<string, unknown>;
  if (!ref.startsWith("arn:") && Object.hasOwn(loadConfig().services, ref)) input = { service: ref };
  else {
    const arn = executionArn(t, ref);
    const service = arn.split(":").pop()!.split("-")[0];
    input = { service, executionArn: arn };
  }
  const machine = requireMachine(t.stateMachines.abort, "abort");
  const r = await t.clients.sfn.send(
    new StartExecutionCommand({ stateMachineArn: machine, name: `${input.service}-abort-${Date.now().toString(36)}`, input: JSON.stringify(input) }),
  );
  out(`aborting: ${r.executionArn}`);
  return r.executionArn!;
}

export async function rollback(t: Target, service: string | undefined, out: Out): Promise<string> {
  const svc = requireService(service);
  const machine = requireMachine(t.stateMachines.rollback, "rollback");
  const r = await t.clients.sfn.send(
    new StartExecutionCommand({ stateMachineArn: machine, name: `${svc}-rollback-${Date.now().toString(36)}`, input: JSON.stringify({ service: svc }) }),
  );
  out(`rolling back: ${r.executionArn}`);
  return r.executionArn!;
}

export async function rotate(t: Target, service: string | undefined, out: Out): Promise<Record<string, unknown>> {
  const svc = requireService(service);
  const fn = t.functions.rotate;
  if (!fn) throw new CliError("the rotate function is not deployed in this stack", EXIT.notFound);
  const r = await t.clients.lambda.send(new InvokeCommand({ FunctionName: fn, Payload: Buffer.from(JSON.stringify({ service: svc })) }));
  const payload = JSON.parse(Buffer.from(r.Payload ?? new Uint8Array()).toString("utf8") || "{}");
  if (r.FunctionError) throw new CliError(`rotation failed: ${payload.errorType}: ${payload.errorMessage}`, EXIT.failed);
  out(JSON.stringify(payload));
  return payload;
}

/** Approve or reject a deployment waiting at its approval gate (the task token is in the deployments table). */
export async function decide(t: Target, ref: string | undefined, approve: boolean, reason: string | undefined, out: Out): Promise<void> {
  const arn = executionArn(t, ref);
  const table = t.tables.DeploymentsTable;
  if (!table) throw new CliError("the deployments table is not known for this target", EXIT.notFound);
  const r = await t.clients.dynamodb.send(new GetCommand({ TableName: table, Key: { service: arn.split(":").pop()!.split("-")[0], startedAt: `approval#${arn}` } }));
  const token = r.Item?.taskToken as string | undefined;
  if (!token) throw new CliError(`${arn} is not waiting for approval`, EXIT.notFound);
  try {
    if (approve) await t.clients.sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify({ approvedBy: process.env.USER ?? "operator" }) }));
    else
      await t.clients.sfn.send(
        new SendTaskFailureCommand({ taskToken: token, error: "kiln.Rejected", cause: reason ?? `rejected by ${process.env.USER ?? "operator"}` }),
      );
  } catch (err) {
    if (/TaskTimedOut|InvalidToken|TaskDoesNotExist/.test((err as Error).name)) throw new CliError(`${arn} is no longer waiting for approval`, EXIT.failed);
    throw err;
  }
  out(`${approve ? "approved" : "rejected"} ${arn}`);
}

/** Waits until an execution stops running; returns its final status. */
export async function waitForExecution(t: Target, arn: string, opts: { everyMs?: number; onPoll?: () => Promise<void> } = {}): Promise<string> {
  for (;;) {
    const d = await t.clients.sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    await opts.onPoll?.();
    if (d.status !== "RUNNING" && d.status !== "PENDING_REDRIVE") return d.status!;
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 500));
  }
}
