/** The operator commands: each reads or changes kiln's state only through AWS APIs. */
import { createHmac, randomBytes } from "node:crypto";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  type ExecutionStatus,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  RedriveExecutionCommand,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { COMMIT_PATTERN, type KilnConfig, loadConfig, type ServiceConfig, serviceConfig } from "../../lib/config/index.ts";
import { EXECUTION_ARN, executionName, unitKey } from "../../lib/names.ts";
import { formatDuration, readableCause, type StepLine, stepLines } from "../../lib/ops/history.ts";
import { causeMessage, judgedFailure } from "../../lib/ops/redrive.ts";
import { type ServiceStatus, serviceStatus, unitExecutions } from "../../lib/ops/status.ts";
import {
  branchOf,
  describeExecution,
  type ExecutionUnit,
  environmentsOf,
  machineOfExecution,
  type OperatorRequest,
  parseInput,
  resolveEnvironment,
  resolveService,
  stateVisit,
  TargetError,
  unitOfInput,
} from "../../lib/ops/target.ts";
import { APPROVAL_STATE, REJECTED_ERROR } from "../../lib/pager/index.ts";
import { CliError, EXIT, type Target } from "./target.ts";

export type Out = (line: string) => void;

/** Who is acting: `$USER` for the CLI; the console passes its own name. */
export function operator(): string {
  return process.env.USER || process.env.USERNAME || "operator";
}

function cliError(err: unknown): never {
  if (err instanceof TargetError) throw new CliError(err.message, err.kind === "unknown" ? EXIT.notFound : EXIT.usage);
  throw err;
}

/** A configured (service, environment): `environment` defaults as `resolveEnvironment` says. */
export function resolveUnit(
  service: string | undefined,
  environment?: string,
  config: KilnConfig = loadConfig(),
): { service: string; environment: string; cfg: ServiceConfig } {
  try {
    const s = resolveService(config, service);
    return { ...s, environment: resolveEnvironment(s.service, s.cfg, environment) };
  } catch (err) {
    cliError(err);
  }
}

function requireMachine(arn: string | undefined, what: string): string {
  if (!arn) throw new CliError(`the ${what} state machine is not deployed in this stack`, EXIT.notFound);
  return arn;
}

/** An execution given by ARN or by name (names are resolved against the deploy machine). */
export function executionArn(t: Target, ref: string | undefined): string {
  if (!ref) throw new CliError("an execution ARN or name is required", EXIT.usage);
  if (ref.startsWith("arn:")) {
    if (!EXECUTION_ARN.test(ref)) throw new CliError(`not an execution ARN: ${ref}`, EXIT.usage);
    return ref;
  }
  if (!/^[A-Za-z0-9_-]{1,80}$/.test(ref)) throw new CliError(`not an execution name: ${ref}`, EXIT.usage);
  const deploy = requireMachine(t.stateMachines.deploy, "deploy");
  return deploy.replace(":stateMachine:", ":execution:") + `:${ref}`;
}

/** A deployment an operator names, checked: it exists, it is a deployment of this stack, and its unit is configured. */
export interface DeploymentRef {
  arn: string;
  execution: DescribeExecutionCommandOutput;
  input: Record<string, unknown>;
  unit: ExecutionUnit & { environment: string };
}

/** Checks the deployment `ref` names before anything acts on it (unknown → exit 3). */
export async function deploymentRef(
  t: Target,
  ref: string | undefined,
  config: KilnConfig = loadConfig(),
): Promise<DeploymentRef> {
  const arn = executionArn(t, ref);
  const deployMachine = requireMachine(t.stateMachines.deploy, "deploy");
  if (machineOfExecution(arn) !== deployMachine)
    throw new CliError(`${arn} is not a deployment of this stack (its deploy machine is ${deployMachine})`, EXIT.notFound);
  const execution = await describeExecution(t.clients.sfn, arn);
  if (!execution) throw new CliError(`no execution ${arn}`, EXIT.notFound);
  const input = parseInput(execution.input) ?? {};
  const unit = unitOfInput(input, config);
  if (!unit)
    throw new CliError(
      `${arn} does not deploy a service of kiln.config.yaml (input service ${JSON.stringify(input.service)})`,
      EXIT.notFound,
    );
  // Inputs from before environments had only a branch: an unknown branch means the service's default environment.
  const environment = unit.environment ?? resolveUnit(unit.service, undefined, config).environment;
  return { arn, execution, input, unit: { service: unit.service, environment } };
}

function operatorInput(reason?: string, by?: string): OperatorRequest {
  return { trigger: "operator", requestedBy: by ?? operator(), ...(reason ? { reason } : {}) };
}

/** Invokes one of the stack's functions and returns its answer; a function error fails the command. */
async function invoke(t: Target, fn: string, payload: unknown, what: string): Promise<Record<string, unknown>> {
  const r = await t.clients.lambda.send(new InvokeCommand({ FunctionName: fn, Payload: Buffer.from(JSON.stringify(payload)) }));
  const result = JSON.parse(Buffer.from(r.Payload ?? new Uint8Array()).toString("utf8") || "{}") as Record<string, unknown>;
  if (r.FunctionError) throw new CliError(`${what} failed: ${result.errorType}: ${result.errorMessage}`, EXIT.failed);
  return result;
}

/**
 * `kiln deploy`: the request enters the same queue as a push (the stack's `requestDeploy`
 * function: lock, sequence number, latest wins) and the outcome is printed. Started or queued is
 * success; ignored (older than what is queued or live) and busy are failures, with the reason.
 */
export async function deploy(
  t: Target,
  service: string | undefined,
  opts: { commit?: string; env?: string; reason?: string },
  out: Out,
): Promise<{ code: number; result: Record<string, unknown> }> {
  const unit = resolveUnit(service, opts.env);
  if (!opts.commit || !COMMIT_PATTERN.test(opts.commit))
    throw new CliError("--commit must be a 40-character lowercase hex commit id", EXIT.usage);
  const fn = t.functions.requestDeploy;
  if (!fn) throw new CliError("the requestDeploy function is not deployed in this stack", EXIT.notFound);
  const request = {
    service: unit.service,
    environment: unit.environment,
    commit: opts.commit,
    requestedBy: operator(),
    ...(opts.reason ? { reason: opts.reason } : {}),
  };
  const result = await invoke(t, fn, request, "deploy request");
  const where = `${unit.service} (${unit.environment})`;
  switch (result.action) {
    case "started":
      out(`started ${result.executionArn}${result.duplicate ? ` (already requested: ${result.status ?? "RUNNING"})` : ""}`);
      return { code: EXIT.ok, result };
    case "queued":
      out(`queued ${result.name} for ${where} behind ${result.holder}${result.reason ? `: ${result.reason}` : ""}`);
      return { code: EXIT.ok, result };
    case "ignored":
    case "busy":
      out(`${result.action}: ${result.reason ?? "(no reason given)"}`);
      return { code: EXIT.failed, result };
    default:
      throw new CliError(`deploy request answered something unexpected: ${JSON.stringify(result).slice(0, 300)}`, EXIT.failed);
  }
}

/**
 * Sends a GitHub push webhook, signed with the stack's secret, to the stack's webhook URL. The
 * branch is the environment's (`--env`), or `--branch` as given.
 */
export async function push(
  t: Target,
  service: string | undefined,
  opts: { commit?: string; branch?: string; env?: string },
  out: Out,
): Promise<{ status: number; body: Record<string, unknown> }> {
  if (opts.branch !== undefined && opts.env !== undefined) throw new CliError("give --branch or --env, not both", EXIT.usage);
  const svc = (() => {
    try {
      return resolveService(loadConfig(), service);
    } catch (err) {
      cliError(err);
    }
  })();
  if (!t.webhookUrl || !t.webhookSecret)
    throw new CliError("this target has no local webhook URL and secret (push works against the local stack)", EXIT.usage);
  const commit = opts.commit ?? randomBytes(20).toString("hex");
  if (!COMMIT_PATTERN.test(commit)) throw new CliError("--commit must be a 40-character lowercase hex commit id", EXIT.usage);
  const branch = opts.branch ?? branchOf(svc.cfg, resolveUnit(service, opts.env).environment)!;
  const r = await sendPush(t.webhookUrl, t.webhookSecret, { repository: svc.cfg.repository, branch, commit });
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
    repository: {
      id: 1,
      name,
      full_name: p.repository,
      owner: { login: owner, name: owner },
      default_branch: p.branch,
      private: true,
    },
    pusher: { name: "kiln-local", email: "kiln@example.invalid" },
    sender: { login: "kiln-local" },
    head_commit: { id: p.commit, message: "local change", timestamp: new Date().toISOString(), author: { name: "kiln-local" } },
    commits: [{ id: p.commit, message: "local change" }],
  };
}

export async function sendPush(
  url: string,
  secret: string,
  p: { repository: string; branch: string; commit: string; before?: string },
  /** A redelivery: the same `X-GitHub-Delivery` and the same raw body, byte for byte. */
  again?: { deliveryId: string; raw: string },
): Promise<{ status: number; body: Record<string, unknown>; deliveryId: string; raw: string }> {
  const body = again?.raw ?? JSON.stringify(pushPayload(p));
  const deliveryId = again?.deliveryId ?? randomBytes(16).toString("hex");
  const sig = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "push",
      "x-github-delivery": deliveryId,
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
  return { status: res.status, body: parsed, deliveryId, raw: body };
}

/**
 * Status of every (service, environment), or of one service's environments, or of one unit when
 * `environment` is given.
 */
export async function status(
  t: Target,
  service: string | undefined,
  environment?: string,
): Promise<{ services: ServiceStatus[]; stack: Record<string, unknown> }> {
  const config = loadConfig();
  if (environment !== undefined && !service) throw new CliError("--env needs a service", EXIT.usage);
  const units = service
    ? environment !== undefined
      ? [resolveUnit(service, environment, config)]
      : environmentsOf(resolveUnit(service, undefined, config).cfg).map((env) => resolveUnit(service, env, config))
    : Object.entries(config.services).flatMap(([s, cfg]) =>
        environmentsOf(cfg).map((env) => ({ service: s, environment: env, cfg })),
      );
  const services = await Promise.all(
    units.map((u) =>
      // The environment's own settings (its listener, target groups, alarms), not the service's defaults.
      serviceStatus(u.service, serviceConfig(config, u.service, u.environment), t.clients, {
        deployStateMachineArn: t.stateMachines.deploy,
        environment: u.environment,
        config,
        ...(t.tables.LockTable ? { lockTable: t.tables.LockTable } : {}),
      }),
    ),
  );
  return {
    services,
    stack: {
      kind: t.kind,
      region: t.region,
      endpoint: t.endpoint,
      webhookUrl: t.webhookUrl,
      consoleUrl: t.consoleUrl,
      stateMachines: t.stateMachines,
    },
  };
}

export function formatStatus(s: { services: ServiceStatus[]; stack: Record<string, unknown> }, out: Out): void {
  if (s.stack.kind === "local")
    out(`local stack  endpoint ${s.stack.endpoint}  console ${s.stack.consoleUrl ?? "-"}  webhook ${s.stack.webhookUrl ?? "-"}`);
  for (const svc of s.services) {
    out("");
    out(
      `${svc.service}${svc.environment ? ` (${svc.environment})` : ""}  live commit ${svc.liveCommit?.slice(0, 12) ?? "(unknown)"}  ${svc.loadBalancer?.url ?? ""}`,
    );
    if (svc.error) out(`  error: ${svc.error}`);
    out(`  traffic  ${svc.weights.map((w) => `${w.name} ${w.weight}%`).join("  |  ") || "-"}`);
    for (const f of svc.fleets) {
      const healthy = f.instances.filter((i) => i.health === "healthy").length;
      out(
        `  ${f.state.padEnd(8)} ${f.group}  commit ${f.commit?.slice(0, 12) ?? "?"}  desired ${f.capacity.desired}  instances ${f.instances.length}  healthy ${healthy}`,
      );
    }
    if (svc.lock) {
      const h = svc.lock.holder;
      out(
        h
          ? `  lock     held by ${h.name ?? h.executionArn}  commit ${h.commit?.slice(0, 12) ?? "?"}  ${h.state ?? ""}${h.since ? ` since ${h.since}` : ""}`
          : "  lock     free",
      );
      const q = svc.lock.queued;
      out(q ? `  queued   ${q.commit.slice(0, 12)}  trigger ${q.trigger ?? "?"}  seq ${q.seq}  (${q.name})` : "  queued   -");
      if (svc.lock.failed) out(`  failed   ${svc.lock.failed.executionArn} (${svc.lock.failed.status}, unresolved)`);
    }
    for (const e of svc.executions.slice(0, 5)) {
      const canary = e.canary ? ` (canary step ${e.canary.step}/${e.canary.steps}, ${e.canary.weight}%)` : "";
      const step =
        e.currentStep === APPROVAL_STATE ? "  waiting for approval" : e.currentStep ? `  at ${e.currentStep}${canary}` : "";
      out(`  ${e.status.padEnd(9)} ${e.name}  ${e.startDate ?? ""}${step}`);
    }
  }
}

export interface ExecutionLog {
  arn: string;
  status: ExecutionStatus | string;
  error?: string;
  cause?: string;
  redriveCount?: number;
  events: { id: number; at: string; type: string; state?: string; detail?: string }[];
  /** One line per step, polling loops folded (what `kiln logs` prints without `--raw`). */
  steps: StepLine[];
}

/**
 * `kiln logs <execution | service>`: an execution's history; a configured service (with `env`)
 * means its unit's newest deployment.
 */
export async function logs(t: Target, ref: string | undefined, opts: { env?: string } = {}): Promise<ExecutionLog> {
  let arn: string;
  const config = loadConfig();
  if (ref && !ref.startsWith("arn:") && Object.hasOwn(config.services, ref)) {
    const unit = resolveUnit(ref, opts.env, config);
    const [newest] = await unitExecutions(t.clients.sfn, requireMachine(t.stateMachines.deploy, "deploy"), unit, {
      limit: 1,
      config,
    });
    if (!newest) throw new CliError(`${unit.service} (${unit.environment}) has no deployment`, EXIT.notFound);
    arn = newest.arn;
  } else {
    if (opts.env !== undefined) throw new CliError("--env applies to `logs <service>`; an execution names its own", EXIT.usage);
    arn = executionArn(t, ref);
  }
  const d = await describeExecution(t.clients.sfn, arn);
  if (!d) throw new CliError(`no execution ${arn}`, EXIT.notFound);
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
    steps: stepLines(events, d.status!),
  };
}

function describeEvent(e: HistoryEvent): { state?: string; detail?: string } {
  const entered = e.stateEnteredEventDetails ?? e.stateExitedEventDetails;
  if (entered) return { state: entered.name };
  const failed = e.taskFailedEventDetails ?? e.executionFailedEventDetails ?? e.lambdaFunctionFailedEventDetails;
  if (failed) return { detail: `${failed.error ?? ""}: ${(failed.cause ?? "").slice(0, 400)}` };
  return {};
}

/** `kiln logs`: one line per step — start, duration, outcome, count of a folded polling loop, cause as text. */
export function formatSteps(l: ExecutionLog, out: Out): void {
  out(`${l.arn}  ${l.status}${l.redriveCount ? `  (redriven ${l.redriveCount}×)` : ""}`);
  if (l.error) out(`  ${readableCause(l.error, l.cause)}`);
  for (const s of l.steps) out(formatStepLine(s));
}

export function formatStepLine(s: StepLine): string {
  if (s.outcome === "redriven") return `  ${s.start}  ── redriven ──`;
  const count = s.count > 1 ? ` ×${s.count}` : "";
  const retries = s.retries ? ` (${s.retries} failed attempt${s.retries > 1 ? "s" : ""} retried)` : "";
  const cause = s.cause && (s.outcome === "failed" || s.retries) ? `  ${s.cause}` : "";
  return `  ${s.start}  ${`${s.state}${count}`.padEnd(26)} ${formatDuration(s.durationSeconds).padStart(7)}  ${s.outcome}${retries}${cause}`;
}

/** `kiln logs --raw`: the history events as Step Functions records them. */
export function formatLogs(l: ExecutionLog, out: Out): void {
  out(`${l.arn}  ${l.status}${l.redriveCount ? `  (redriven ${l.redriveCount}×)` : ""}`);
  if (l.error) out(`  ${l.error}: ${l.cause ?? ""}`);
  for (const e of l.events) {
    if (!e.state && !e.detail && !/^Execution/.test(e.type)) continue;
    out(`  ${e.at}  ${e.type.padEnd(28)} ${e.state ?? ""}${e.detail ? ` ${e.detail}` : ""}`);
  }
}

/**
 * Redrives a failed execution from its failed step. A commit that failed the canary judge is only
 * redriven with `force` (the CLI's `--force`, the console's confirmation): the refusal says why and
 * what to do instead, and starts nothing.
 */
export async function redrive(t: Target, ref: string | undefined, out: Out, opts: { force?: boolean } = {}): Promise<void> {
  const arn = executionArn(t, ref);
  if (!opts.force) {
    const d = await t.clients.sfn.send(new DescribeExecutionCommand({ executionArn: arn })).catch((err: Error) => {
      if (err.name === "ExecutionDoesNotExist") throw new CliError(`cannot redrive ${arn}: no such execution`, EXIT.notFound);
      throw err;
    });
    const judged = judgedFailure(d);
    if (judged)
      throw new CliError(
        [
          `not redriven: ${arn} failed the canary: ${judged}`,
          "  a redrive judges the same commit again on fresh traffic; the way forward is an abort or a new push:",
          `    npx kiln abort ${arn}`,
          `  to redrive anyway: npx kiln redrive ${arn} --force`,
        ].join("\n"),
        EXIT.usage,
      );
  }
  try {
    await t.clients.sfn.send(new RedriveExecutionCommand({ executionArn: arn }));
  } catch (err) {
    const name = (err as Error).name;
    if (name === "ExecutionNotRedrivable" || name === "ExecutionDoesNotExist")
      throw new CliError(`cannot redrive ${arn}: ${(err as Error).message}`, EXIT.failed);
    throw err;
  }
  out(`redriven ${arn}`);
}

const FINISHED = new Set(["SUCCEEDED", "ABORTED"]);

/**
 * The deployment `kiln abort` would compensate, checked first so a mistaken abort starts nothing
 * (exit 3): a running or failed deployment of a configured unit that no later deployment of the
 * unit has superseded by succeeding. `ref` is an execution, or a service (with `env`): then its
 * newest deployment.
 */
export async function abortTarget(
  t: Target,
  ref: string | undefined,
  env: string | undefined,
  config: KilnConfig = loadConfig(),
): Promise<DeploymentRef> {
  if (!ref) throw new CliError("an execution ARN/name or a service is required", EXIT.usage);
  const deployMachine = requireMachine(t.stateMachines.deploy, "deploy");
  let target: DeploymentRef;
  if (!ref.startsWith("arn:") && Object.hasOwn(config.services, ref)) {
    const unit = resolveUnit(ref, env, config);
    const [newest] = await unitExecutions(t.clients.sfn, deployMachine, unit, { limit: 1, config });
    if (!newest) throw new CliError(`${unit.service} (${unit.environment}) has no deployment to abort`, EXIT.notFound);
    target = await deploymentRef(t, newest.arn, config);
  } else {
    if (env !== undefined)
      throw new CliError("--env applies to `abort <service>`; an execution names its own environment", EXIT.usage);
    try {
      target = await deploymentRef(t, ref, config);
    } catch (err) {
      // A bare word that is neither a configured service nor an execution of this stack.
      if (err instanceof CliError && !ref.startsWith("arn:"))
        throw new CliError(
          `nothing to abort: ${JSON.stringify(ref)} is neither a service of kiln.config.yaml nor a deployment of this stack (${err.message})`,
          err.code === EXIT.usage ? EXIT.usage : EXIT.notFound,
        );
      throw err;
    }
  }
  const status = target.execution.status ?? "UNKNOWN";
  if (FINISHED.has(status))
    throw new CliError(
      `${target.arn} already finished (${status}): there is nothing to abort${status === "SUCCEEDED" ? ` — to go back to the previous fleet use \`kiln rollback ${target.unit.service} --env ${target.unit.environment}\`` : ""}`,
      EXIT.notFound,
    );
  if (status !== "RUNNING" && status !== "PENDING_REDRIVE") {
    // A failed deployment is worth compensating only while nothing newer went live.
    const started = target.execution.startDate?.getTime() ?? 0;
    const newer = (await unitExecutions(t.clients.sfn, deployMachine, target.unit, { limit: 10, config })).find(
      (e) => e.status === "SUCCEEDED" && Date.parse(e.startDate ?? "") > started,
    );
    if (newer)
      throw new CliError(
        `${target.arn} (${status}) was superseded by ${newer.name}, which succeeded: there is nothing to abort`,
        EXIT.notFound,
      );
  }
  return target;
}

/**
 * `kiln abort`: checks the target (see `abortTarget`), then starts the abort machine for it. The
 * abort's input names the deployment and says an operator asked (`trigger: operator`,
 * `requestedBy`, `reason`): the pager notifies at info, never pages, for what an operator did.
 */
export async function abort(
  t: Target,
  ref: string | undefined,
  opts: { env?: string; reason?: string; by?: string },
  out: Out,
): Promise<string> {
  const machine = requireMachine(t.stateMachines.abort, "abort");
  const target = await abortTarget(t, ref, opts.env);
  const { service, environment } = target.unit;
  const r = await t.clients.sfn.send(
    new StartExecutionCommand({
      stateMachineArn: machine,
      name: executionName(service, environment, "abort", "operator", Date.now().toString(36)),
      input: JSON.stringify({ service, environment, executionArn: target.arn, ...operatorInput(opts.reason, opts.by) }),
    }),
  );
  out(`aborting ${target.arn}: ${r.executionArn}`);
  return r.executionArn!;
}

/** How long `kiln rollback` waits for PrepareRollback to accept or refuse. */
const ROLLBACK_DECISION_POLLS = 240;

/**
 * `kiln rollback`: starts the rollback machine for a configured unit and waits until its
 * PrepareRollback accepted (the previous fleet is retained and in its window, the lock is free) or
 * refused. A refusal exits 1 with the reason; the pager records it at info.
 */
export async function rollback(
  t: Target,
  service: string | undefined,
  opts: { env?: string; reason?: string; everyMs?: number },
  out: Out,
): Promise<string> {
  const unit = resolveUnit(service, opts.env);
  const machine = requireMachine(t.stateMachines.rollback, "rollback");
  const r = await t.clients.sfn.send(
    new StartExecutionCommand({
      stateMachineArn: machine,
      name: executionName(unit.service, unit.environment, "rollback", "operator", Date.now().toString(36)),
      input: JSON.stringify({ service: unit.service, environment: unit.environment, ...operatorInput(opts.reason) }),
    }),
  );
  const arn = r.executionArn!;
  for (let i = 0; i < ROLLBACK_DECISION_POLLS; i++) {
    const d = await describeExecution(t.clients.sfn, arn);
    if (d && d.status !== "RUNNING" && d.status !== "PENDING_REDRIVE") {
      if (d.status === "SUCCEEDED") break;
      throw new CliError(
        `rollback of ${unit.service} (${unit.environment}) refused or failed (${d.status}): ${d.error ?? ""} ${causeMessage(d.cause)}`.trim(),
        EXIT.failed,
      );
    }
    if ((await stateVisit(t.clients.sfn, arn, "PrepareRollback")) === "left") break;
    await new Promise((res) => setTimeout(res, opts.everyMs ?? 250));
  }
  out(`rolling back ${unit.service} (${unit.environment}): ${arn}`);
  return arn;
}

export async function rotate(
  t: Target,
  service: string | undefined,
  opts: { env?: string },
  out: Out,
): Promise<Record<string, unknown>> {
  const unit = resolveUnit(service, opts.env);
  const fn = t.functions.rotate;
  if (!fn) throw new CliError("the rotate function is not deployed in this stack", EXIT.notFound);
  // The environment is sent only when named: the rotate function takes it once rotation is per environment.
  const payload = await invoke(
    t,
    fn,
    { service: unit.service, ...(opts.env ? { environment: unit.environment } : {}) },
    "rotation",
  );
  out(JSON.stringify(payload));
  return payload;
}

/** The approval record RequestApproval wrote for a deployment, if it is waiting at the gate now. */
export async function approvalTarget(t: Target, ref: string | undefined): Promise<DeploymentRef & { taskToken: string }> {
  const table = t.tables.DeploymentsTable;
  if (!table) throw new CliError("the deployments table is not known for this target", EXIT.notFound);
  const target = await deploymentRef(t, ref);
  const status = target.execution.status ?? "UNKNOWN";
  if (status !== "RUNNING") throw new CliError(`${target.arn} is ${status}: it is not waiting for approval`, EXIT.notFound);
  if ((await stateVisit(t.clients.sfn, target.arn, APPROVAL_STATE)) !== "in")
    throw new CliError(`${target.arn} is not waiting for approval`, EXIT.notFound);
  const startedAt = `approval#${target.arn}`;
  const { service, environment } = target.unit;
  let item = (
    await t.clients.dynamodb.send(
      new GetCommand({ TableName: table, Key: { service: unitKey(service, environment), startedAt } }),
    )
  ).Item;
  // Approval records written before (service, environment) became the key.
  item ??= (await t.clients.dynamodb.send(new GetCommand({ TableName: table, Key: { service, startedAt } }))).Item;
  const token = item?.taskToken as string | undefined;
  if (!token) throw new CliError(`${target.arn} is not waiting for approval (no approval request recorded)`, EXIT.notFound);
  return { ...target, taskToken: token };
}

/**
 * Approve or reject a deployment waiting at its approval gate. A rejection fails the gate with
 * `kiln.Rejected` and a cause naming who rejected and why; the pager notifies it at info.
 */
export async function decide(
  t: Target,
  ref: string | undefined,
  approve: boolean,
  opts: { reason?: string; by?: string } = {},
  out: Out = () => {},
): Promise<void> {
  const target = await approvalTarget(t, ref);
  const by = opts.by ?? operator();
  try {
    if (approve)
      await t.clients.sfn.send(
        new SendTaskSuccessCommand({ taskToken: target.taskToken, output: JSON.stringify({ approvedBy: by }) }),
      );
    else
      await t.clients.sfn.send(
        new SendTaskFailureCommand({
          taskToken: target.taskToken,
          error: REJECTED_ERROR,
          cause: `rejected by ${by}${opts.reason ? `: ${opts.reason}` : ""}`.slice(0, 32_000),
        }),
      );
  } catch (err) {
    if (/TaskTimedOut|InvalidToken|TaskDoesNotExist/.test((err as Error).name))
      throw new CliError(`${target.arn} is no longer waiting for approval`, EXIT.notFound);
    throw err;
  }
  out(`${approve ? "approved" : "rejected"} ${target.arn} (${target.unit.service} ${target.unit.environment})`);
}

/** Waits until an execution stops running; returns its final status. */
export async function waitForExecution(
  t: Target,
  arn: string,
  opts: { everyMs?: number; onPoll?: () => Promise<void> } = {},
): Promise<string> {
  for (;;) {
    const d = await describeExecution(t.clients.sfn, arn);
    if (!d) throw new CliError(`no execution ${arn}`, EXIT.notFound);
    await opts.onPoll?.();
    if (d.status !== "RUNNING" && d.status !== "PENDING_REDRIVE") return d.status!;
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 500));
  }
}
