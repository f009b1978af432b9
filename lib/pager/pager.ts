/**
 * On-call: a failed, timed-out or aborted deployment pages (PagerDuty Events API v2, Slack, SNS)
 * once per failure, with everything needed to act — the failed step, error, cause, console link
 * and the exact `kiln redrive` / `kiln abort` commands. A later success of the same execution
 * (after a redrive) or of a later deployment of the same (service, environment) resolves the page.
 * What an operator did on purpose — an abort, a rejection, a rollback or abort kiln refused —
 * is recorded and notified at info (Slack, SNS), never paged. Only kiln's own state machines count.
 * See docs/on-call.md.
 */

import { DescribeExecutionCommand, ListExecutionsCommand } from "@aws-sdk/client-sfn";
import { PublishCommand } from "@aws-sdk/client-sns";
import type { Clock } from "../clock.ts";
import { unitKey } from "../names.ts";
import {
  describeExecution,
  machineOfExecution,
  newestEvents,
  operatorRequestOf,
  parseInput as parseInputObject,
  unitOfInput,
} from "../ops/target.ts";
import { ThrottledError } from "../errors.ts";
import { type LockDeps, recordFailure, recordSuccess, type SfnSender } from "../lock/lock.ts";
import { type DocumentSender, VersionedStore } from "../lock/store.ts";
import { type Log, silentLog } from "../log.ts";
import type { StatusChangeEvent } from "./event.ts";
import { DeliveryError, type Fetch, postJson, type RetryPolicy } from "./http.ts";

export const PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue";

export type Severity = "critical" | "error" | "warning" | "info";

/** Where a service's pages go. Every channel is optional; none configured = logged only. */
export interface PagerRoute {
  environment?: string;
  severity: Severity;
  /** SSM SecureString holding the PagerDuty integration (routing) key. */
  pagerDutyRoutingKeyParam?: string;
  /** SSM SecureString holding the Slack incoming-webhook URL. */
  slackWebhookParam?: string;
  /** SNS topic ARN. */
  snsTopicArn?: string;
}

export interface SnsSender {
  send(command: any): Promise<any>;
}

/** kiln's state machines (ARNs): executions of any other machine are ignored. */
export interface KilnMachines {
  deploy?: string;
  abort?: string;
  rollback?: string;
}

export interface PagerDeps {
  sfn: SfnSender;
  machines: KilnMachines;
  sns?: SnsSender;
  /** Page records (and the lock, whose failure bookkeeping the pager keeps) live in this table. */
  ddb: DocumentSender;
  table: string;
  clock: Pick<Clock, "now" | "sleep">;
  fetch: Fetch;
  /** Decrypted SSM SecureString values (cached). */
  secret(param: string): Promise<string>;
  /** Routing for a service's pages; `executionArn` gives the region and account (for an SNS topic given by name). */
  routeFor(service: string, input: ExecutionInput, executionArn: string): PagerRoute;
  pagerDutyUrl?: string;
  /** Link to the execution; default the AWS console. */
  consoleUrl?: (executionArn: string) => string;
  /** Record failures/successes on the service lock (so a push supersedes an unresolved failure). Default true. */
  updateLock?: boolean;
  retry?: RetryPolicy;
  random?: () => number;
  log?: Log;
}

/** The deploy (or abort) execution input fields the page reports. */
export interface ExecutionInput {
  service?: string;
  environment?: string;
  commit?: string;
  trigger?: string;
  branch?: string;
  repository?: string;
  requestedBy?: string;
  /** Abort executions name the deployment they abort. */
  executionArn?: string;
  reason?: string;
}

/** What an operator did that the pager notifies at info instead of paging. */
export type NoticeKind = "operator-abort" | "rejected" | "rollback-refused" | "abort-refused" | "superseded";

export interface Notice {
  kind: NoticeKind;
  /** Who acted (the operator request's `requestedBy`, or the rejection's cause). */
  by?: string;
  reason?: string;
}

/** Everything a page says about a failure. */
export interface PageFacts {
  service: string;
  environment?: string;
  commit?: string;
  trigger?: string;
  status: string;
  executionArn: string;
  executionName: string;
  stateMachine: string;
  region: string;
  failedState?: string;
  error?: string;
  cause?: string;
  redriveCount: number;
  console: string;
  redrive: string;
  abort: string;
  stoppedAt?: string;
  /** Set when this is an operator's action notified at info rather than a page. */
  notice?: Notice;
}

export type PagerResult =
  | {
      action: "triggered" | "notified" | "resolved";
      executionArn: string;
      service: string;
      environment?: string;
      channels: string[];
      resolved?: string[];
      notice?: NoticeKind;
    }
  | { action: "duplicate" | "ignored"; executionArn?: string; service?: string; reason: string };

type Channel = "pagerduty" | "slack" | "sns";

interface Incident {
  status: string;
  openedAt: number;
  redriveCount: number;
  /** `<event>:<channel>` → when it was delivered. */
  sent: Record<string, number>;
  /** `<event>` → when a delivery started (so a concurrent redelivery does not send it too). */
  claims: Record<string, number>;
  resolvedAt?: number;
  resolvedBy?: string;
  /** `info`: an operator's action, notified and closed at once (nothing to resolve). */
  level?: "page" | "info";
  facts: PageFacts;
}

/** One item per (service, environment) (`service = "pager#<service>/<environment>"`) next to the lock items. */
interface PageRecord {
  service: string;
  version: number;
  incidents: Record<string, Incident>;
  updatedAt: number;
}

/** A claim older than this is considered abandoned (its invocation crashed) and is taken over. */
const CLAIM_TIMEOUT_MS = 5 * 60_000;
const MAX_INCIDENTS = 50;
const CAUSE_LIMIT = 2_000;

/** Page records are per unit of deployment; an execution whose environment is unknown is filed under its service. */
const recordKey = (unit: string) => `pager#${unit}`;

/** Step Functions console link for an execution. */
export function awsConsoleUrl(executionArn: string): string {
  const region = executionArn.split(":")[3] ?? "us-east-1";
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}

/**
 * The state that failed: scanning the history backwards, the most recent `…StateEntered` without
 * a matching `…StateExited` (a Parallel/Map parent is entered before its failing child, so the
 * innermost one is found first). Also the first task-level error/cause seen, for executions whose
 * own error is generic (`States.TaskFailed`).
 */
export async function failedStep(
  sfn: SfnSender,
  executionArn: string,
): Promise<{ state?: string; error?: string; cause?: string }> {
  const exited = new Map<string, number>();
  let state: string | undefined;
  let error: string | undefined;
  let cause: string | undefined;
  // Five pages of 200 reach far enough back for the failure; histories can hold 25,000 events.
  for await (const event of newestEvents(sfn, executionArn, 5)) {
    const e = event as unknown as Record<string, unknown>;
    const type = String(e.type ?? "");
    for (const [k, v] of Object.entries(e)) {
      if (!k.endsWith("EventDetails") || !v || typeof v !== "object") continue;
      const d = v as { name?: string; error?: string; cause?: string };
      if (type.endsWith("StateExited") && d.name) exited.set(d.name, (exited.get(d.name) ?? 0) + 1);
      else if (type.endsWith("StateEntered") && d.name && !state) {
        const n = exited.get(d.name) ?? 0;
        if (n > 0) exited.set(d.name, n - 1);
        else state = d.name;
      }
      // The execution's own failure is in the event already; the point here is the task's.
      if ((type.endsWith("Failed") || type.endsWith("TimedOut")) && !type.startsWith("Execution")) {
        if (!error && d.error) error = d.error;
        if (!cause && d.cause) cause = d.cause;
      }
    }
    if (state && error) return { state, error, ...(cause !== undefined ? { cause } : {}) };
  }
  return { ...(state ? { state } : {}), ...(error ? { error } : {}), ...(cause !== undefined ? { cause } : {}) };
}

function parseInput(s: string | null | undefined): ExecutionInput | undefined {
  if (!s) return undefined;
  try {
    const v = JSON.parse(s);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as ExecutionInput) : undefined;
  } catch {
    return undefined;
  }
}

function truncate(s: string | undefined, n: number): string | undefined {
  return s === undefined || s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** The one-line summary every channel leads with. */
export function summary(f: PageFacts): string {
  const where = f.environment ? `${f.service} (${f.environment})` : f.service;
  if (f.notice)
    return `kiln: ${where} ${NOTICE_TEXT[f.notice.kind]}${f.commit ? ` of ${f.commit.slice(0, 12)}` : ""}${f.notice.by ? ` by ${f.notice.by}` : ""}`.slice(
      0,
      1024,
    );
  const at = f.failedState ? ` at ${f.failedState}` : "";
  const err = f.error ? `: ${f.error}` : "";
  const commit = f.commit ? ` of ${f.commit.slice(0, 12)}` : "";
  return `kiln: ${where} deployment${commit} ${f.status}${at}${err}`.slice(0, 1024);
}

const NOTICE_TEXT: Record<NoticeKind, string> = {
  superseded: "deployment refused to run (superseded by a newer request; nothing changed)",
  "operator-abort": "deployment aborted",
  rejected: "deployment rejected",
  "rollback-refused": "rollback refused",
  "abort-refused": "abort refused",
};

/** PagerDuty Events API v2 trigger (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/). */
export function pagerDutyTrigger(routingKey: string, f: PageFacts, severity: Severity) {
  return {
    routing_key: routingKey,
    event_action: "trigger" as const,
    dedup_key: f.executionArn,
    payload: {
      summary: summary(f),
      source: `${f.stateMachine} (${f.region})`,
      severity,
      component: f.service,
      ...(f.environment ? { group: f.environment } : {}),
      class: f.error ?? f.status,
      ...(f.stoppedAt ? { timestamp: f.stoppedAt } : {}),
      custom_details: {
        service: f.service,
        environment: f.environment,
        commit: f.commit,
        trigger: f.trigger,
        status: f.status,
        failed_step: f.failedState,
        error: f.error,
        cause: f.cause,
        execution_arn: f.executionArn,
        redrive_count: f.redriveCount,
        console: f.console,
        redrive: f.redrive,
        abort: f.abort,
      },
    },
    links: [{ href: f.console, text: "Execution in the Step Functions console" }],
    client: "kiln",
    client_url: f.console,
  };
}

export function pagerDutyResolve(routingKey: string, executionArn: string) {
  return { routing_key: routingKey, event_action: "resolve" as const, dedup_key: executionArn };
}

/** The page as text (Slack mrkdwn / SNS), with the same facts as the PagerDuty event. */
export function pageText(f: PageFacts, resolvedBy?: string): string {
  if (f.notice) {
    return [
      `:information_source: *${summary(f)}*`,
      `Severity: info (an operator's action: nobody is paged)`,
      `Service: ${f.service}${f.environment ? `  Environment: ${f.environment}` : ""}${f.commit ? `  Commit: ${f.commit}` : ""}`,
      ...(f.notice.reason ? [`Reason: ${f.notice.reason}`] : []),
      ...(f.cause ? [`Detail: ${f.cause}`] : []),
      `Execution: ${f.executionArn}`,
      `Console: ${f.console}`,
    ].join("\n");
  }
  if (resolvedBy) {
    const how =
      resolvedBy === f.executionArn ? "the execution succeeded (redriven)" : `a later deployment succeeded: ${resolvedBy}`;
    return [`:white_check_mark: *Resolved* ${summary(f)}`, `Resolved because ${how}.`, `Execution: ${f.executionArn}`].join("\n");
  }
  return [
    `:rotating_light: *${summary(f)}*`,
    `Service: ${f.service}${f.environment ? `  Environment: ${f.environment}` : ""}${f.commit ? `  Commit: ${f.commit}` : ""}${f.trigger ? `  Trigger: ${f.trigger}` : ""}`,
    `Failed step: ${f.failedState ?? "(unknown)"}  Status: ${f.status}${f.redriveCount ? `  Redrives so far: ${f.redriveCount}` : ""}`,
    `Error: ${f.error ?? "(none)"}`,
    ...(f.cause ? [`Cause: ${f.cause}`] : []),
    `Console: ${f.console}`,
    `Retry from the failed step: \`${f.redrive}\``,
    `Restore blue and give up: \`${f.abort}\``,
  ].join("\n");
}

async function factsFor(
  e: StatusChangeEvent,
  input: ExecutionInput,
  deps: PagerDeps,
  route: PagerRoute | undefined,
): Promise<PageFacts> {
  const d = e.detail;
  const [, , , region = "", , , sm = "", name = ""] = d.executionArn.split(":");
  let error = d.error ?? undefined;
  let cause = d.cause ?? undefined;
  let failedState: string | undefined;
  if (d.status !== "SUCCEEDED") {
    const h = await failedStep(deps.sfn, d.executionArn).catch((err) => {
      (deps.log ?? silentLog).warn("could not read the execution history", { executionArn: d.executionArn, error: String(err) });
      return {} as { state?: string; error?: string; cause?: string };
    });
    failedState = h.state;
    // A task failure surfaces as the generic States.TaskFailed; the task's own error and cause say more.
    if ((!error || error === "States.TaskFailed") && h.error) {
      error = h.error;
      cause = h.cause ?? cause;
    }
    cause ??= h.cause;
  }
  const environment = input.environment ?? route?.environment;
  return {
    service: input.service!,
    ...(environment ? { environment } : {}),
    ...(input.commit ? { commit: input.commit } : {}),
    ...(input.trigger ? { trigger: input.trigger } : {}),
    status: d.status,
    executionArn: d.executionArn,
    executionName: name,
    stateMachine: sm,
    region,
    ...(failedState ? { failedState } : {}),
    ...(error ? { error } : {}),
    ...(cause ? { cause: truncate(cause, CAUSE_LIMIT)! } : {}),
    redriveCount: d.redriveCount ?? 0,
    console: (deps.consoleUrl ?? awsConsoleUrl)(d.executionArn),
    redrive: `kiln redrive ${d.executionArn}`,
    abort: `kiln abort ${d.executionArn}`,
    ...(d.stopDate ? { stoppedAt: new Date(d.stopDate).toISOString() } : {}),
  };
}

/**
 * Handles one "Step Functions Execution Status Change" event: FAILED, TIMED_OUT, ABORTED trigger a
 * page; SUCCEEDED resolves open pages of the service. Idempotent per failure and channel, so an
 * EventBridge redelivery or a Lambda retry does not page twice. Throws `kiln.Throttled` when a
 * channel stayed unreachable through the retries (Lambda's async retry then tries again, skipping
 * channels already delivered).
 */
export async function handleStatusChange(event: StatusChangeEvent, deps: PagerDeps): Promise<PagerResult> {
  const d = event.detail;
  const log = deps.log ?? silentLog;
  // The rule matches only kiln's machines; this is the same check for a rule someone widened.
  const machine = d.stateMachineArn ?? machineOfExecution(d.executionArn);
  if (!Object.values(deps.machines).includes(machine))
    return { action: "ignored", executionArn: d.executionArn, reason: `not an execution of kiln's state machines (${machine})` };
  const failed = d.status === "FAILED" || d.status === "TIMED_OUT" || d.status === "ABORTED";
  if (!failed && d.status !== "SUCCEEDED")
    return { action: "ignored", executionArn: d.executionArn, reason: `status ${d.status} neither pages nor resolves` };

  let input = parseInput(d.input);
  if (!input) {
    // EventBridge leaves input out when it is too large; Step Functions has it.
    const r = await deps.sfn.send(new DescribeExecutionCommand({ executionArn: d.executionArn }));
    input = parseInput(r.input) ?? {};
  }
  const unit = unitOfInput(input as Record<string, unknown>);
  if (!unit) return { action: "ignored", executionArn: d.executionArn, reason: "not a kiln execution (no service in its input)" };
  const { service } = unit;
  // Inputs without an environment (from before environments) take the route's, from their branch.
  const route = deps.routeFor(service, input, d.executionArn);
  const environment = unit.environment ?? route.environment;
  const withEnv: ExecutionInput = { ...input, service, ...(environment ? { environment } : {}) };
  const record = recordKey(environment ? unitKey(service, environment) : service);

  const store = new VersionedStore<PageRecord>(deps.ddb, deps.table);
  const lockDeps: LockDeps = { ddb: deps.ddb, table: deps.table, clock: deps.clock };
  if (failed) {
    const res = await trigger(event, withEnv, record, route, store, deps);
    if (deps.updateLock !== false) await recordFailure(lockUnitOf(service, environment), d.executionArn, d.status, lockDeps);
    log.info("page", { ...res });
    return res;
  }
  const res = await resolve(event, service, record, store, deps);
  if (deps.updateLock !== false) await recordSuccess(lockUnitOf(service, environment), d.executionArn, lockDeps);
  log.info("page", { ...res });
  return res;
}

/** The (service, environment) lock item the pager keeps failure bookkeeping on. */
function lockUnitOf(service: string, environment: string | undefined): { service: string; environment: string } {
  return { service, environment: environment ?? "" };
}

/** The error a rejection at the approval gate fails it with (`kiln reject`, the console). */
export const REJECTED_ERROR = "kiln.Rejected";
/** The error a superseded execution fails with at AcquireLock/RenewLock or a guarded roll step. */
export const SUPERSEDED_ERROR = "kiln.Superseded";
/** The deploy machine's approval gate. */
export const APPROVAL_STATE = "RequestApproval";

/** How many of the abort machine's newest executions are read to find the one that stopped a deployment. */
const ABORTS_SCANNED = 20;

/**
 * Whether a failure is an operator's own action, to be notified at info instead of paged:
 * - a deployment ABORTED (`kiln.Aborted`) by an abort execution whose input has `trigger: operator`
 *   and names it (`executionArn`);
 * - a deployment that failed at the approval gate with `kiln.Rejected`;
 * - an operator's rollback or abort (input `trigger: operator`) that failed at its Prepare step,
 *   i.e. kiln refused it before changing anything (no retained fleet, window passed, lock held).
 * Anything else — a failed compensation, a rollback that failed midway, an abort kiln started
 * itself — pages.
 */
export async function noticeFor(
  event: StatusChangeEvent,
  input: ExecutionInput,
  f: PageFacts,
  deps: PagerDeps,
): Promise<Notice | undefined> {
  const d = event.detail;
  const machine = d.stateMachineArn ?? machineOfExecution(d.executionArn);
  const op = operatorRequestOf(input as Record<string, unknown>);
  const asOperator = (kind: NoticeKind): Notice => ({ kind, by: op!.requestedBy, ...(op!.reason ? { reason: op!.reason } : {}) });
  if (machine === deps.machines.deploy) {
    if (d.status === "FAILED" && f.error === REJECTED_ERROR && f.failedState === APPROVAL_STATE) return { kind: "rejected" };
    // A superseded execution (typically redriven by an operator) refused to change the fleet: nothing is broken (I7).
    if (d.status === "FAILED" && f.error === SUPERSEDED_ERROR) return { kind: "superseded" };
    if (d.status === "ABORTED" && d.error === "kiln.Aborted" && deps.machines.abort) {
      const r = await deps.sfn.send(
        new ListExecutionsCommand({ stateMachineArn: deps.machines.abort, maxResults: ABORTS_SCANNED }),
      );
      for (const e of (r.executions ?? []) as { executionArn?: string }[]) {
        const abortInput = parseInputObject((await describeExecution(deps.sfn, e.executionArn!))?.input);
        const req = operatorRequestOf(abortInput);
        if (abortInput?.executionArn === d.executionArn && req)
          return { kind: "operator-abort", by: req.requestedBy, ...(req.reason ? { reason: req.reason } : {}) };
      }
    }
    return undefined;
  }
  if (!op || d.status !== "FAILED") return undefined;
  if (machine === deps.machines.rollback && f.failedState === "PrepareRollback") return asOperator("rollback-refused");
  if (machine === deps.machines.abort && f.failedState === "PrepareAbort") return asOperator("abort-refused");
  return undefined;
}

function channelsOf(route: PagerRoute, deps: PagerDeps): Channel[] {
  const out: Channel[] = [];
  if (route.pagerDutyRoutingKeyParam) out.push("pagerduty");
  if (route.slackWebhookParam) out.push("slack");
  if (route.snsTopicArn && deps.sns) out.push("sns");
  return out;
}

async function trigger(
  event: StatusChangeEvent,
  input: ExecutionInput,
  record: string,
  route: PagerRoute,
  store: VersionedStore<PageRecord>,
  deps: PagerDeps,
): Promise<PagerResult> {
  const d = event.detail;
  const service = input.service!;
  const key = `trigger#${d.redriveCount ?? 0}`;
  const now = () => deps.clock.now();
  const facts = await factsFor(event, input, deps, route);
  const notice = await noticeFor(event, input, facts, deps);
  if (notice) facts.notice = notice;
  // An operator's action is news, not an incident: PagerDuty pages people, so it does not get it.
  const channels = channelsOf(route, deps).filter((c) => !notice || c !== "pagerduty");

  // Claim this failure (one page per failure, even when EventBridge delivers the event twice).
  const claim = await store.mutate<{ go: boolean; reason?: string; sent: Record<string, number> }>(record, (rec) => {
    const r: PageRecord = rec ?? { service: record, version: 0, incidents: {}, updatedAt: now() };
    const inc = r.incidents[d.executionArn];
    const done = channels.every((c) => inc?.sent[`${key}:${c}`] !== undefined);
    if (inc && done && inc.claims[key] !== undefined)
      return { result: { go: false, reason: "already paged for this failure", sent: inc.sent } };
    const claimedAt = inc?.claims[key];
    if (claimedAt !== undefined && now() - claimedAt < CLAIM_TIMEOUT_MS && !done) {
      return { result: { go: false, reason: "another invocation is paging for this failure", sent: inc?.sent ?? {} } };
    }
    const next: Incident = {
      status: d.status,
      openedAt: inc?.openedAt ?? now(),
      redriveCount: d.redriveCount ?? 0,
      sent: inc?.sent ?? {},
      claims: { ...(inc?.claims ?? {}), [key]: now() },
      facts,
      ...(notice
        ? { level: "info" as const, resolvedAt: inc?.resolvedAt ?? now(), resolvedBy: "notice" }
        : { level: "page" as const }),
    };
    return {
      write: prune({ ...r, incidents: { ...r.incidents, [d.executionArn]: next }, updatedAt: now() }),
      result: { go: true, sent: next.sent },
    };
  });
  if (!claim.go) return { action: "duplicate", executionArn: d.executionArn, service, reason: claim.reason! };
  const env = input.environment ? { environment: input.environment } : {};

  const delivered: string[] = [];
  let transient: DeliveryError | undefined;
  for (const c of channels) {
    if (claim.sent[`${key}:${c}`] !== undefined) continue;
    try {
      await send(c, route, facts, deps, undefined);
      delivered.push(c);
      await markSent(store, record, d.executionArn, `${key}:${c}`, now());
    } catch (err) {
      const e =
        err instanceof DeliveryError ? err : new DeliveryError(String((err as Error)?.message ?? err), false, { cause: err });
      (deps.log ?? silentLog).error("page delivery failed", {
        channel: c,
        executionArn: d.executionArn,
        permanent: e.permanent,
        error: e.message,
      });
      // A rejected message will be rejected again: record it (negative time = failed) so retries skip it.
      if (e.permanent) await markSent(store, record, d.executionArn, `${key}:${c}`, -now());
      else transient = e;
    }
  }
  if (transient) {
    // Let the claim lapse at once so the retry is not taken for a concurrent delivery.
    await store.mutate(record, (rec) => {
      const inc = rec?.incidents[d.executionArn];
      if (!rec || !inc) return { result: undefined };
      const { [key]: _, ...claims } = inc.claims;
      return {
        write: { ...rec, incidents: { ...rec.incidents, [d.executionArn]: { ...inc, claims } }, updatedAt: now() },
        result: undefined,
      };
    });
    throw new ThrottledError(`paging ${service} for ${d.executionArn}: ${transient.message}`, { cause: transient });
  }
  if (notice)
    return { action: "notified", executionArn: d.executionArn, service, ...env, channels: delivered, notice: notice.kind };
  return { action: "triggered", executionArn: d.executionArn, service, ...env, channels: delivered };
}

async function markSent(store: VersionedStore<PageRecord>, record: string, executionArn: string, key: string, at: number) {
  await store.mutate(record, (rec) => {
    const inc = rec?.incidents[executionArn];
    if (!rec || !inc) return { result: undefined };
    return {
      write: { ...rec, incidents: { ...rec.incidents, [executionArn]: { ...inc, sent: { ...inc.sent, [key]: at } } } },
      result: undefined,
    };
  });
}

async function resolve(
  event: StatusChangeEvent,
  service: string,
  record: string,
  store: VersionedStore<PageRecord>,
  deps: PagerDeps,
): Promise<PagerResult> {
  const d = event.detail;
  const now = deps.clock.now();
  // Every open incident of the service: this execution's own (redriven to success) and any
  // earlier failure this successful deployment superseded.
  const open = await store.mutate<[string, Incident][]>(record, (rec) => {
    if (!rec) return { result: [] };
    const toResolve = Object.entries(rec.incidents).filter(([, inc]) => inc.resolvedAt === undefined);
    if (toResolve.length === 0) return { result: [] };
    const incidents = { ...rec.incidents };
    for (const [arn, inc] of toResolve) incidents[arn] = { ...inc, resolvedAt: now, resolvedBy: d.executionArn };
    return { write: { ...rec, incidents, updatedAt: now }, result: toResolve };
  });
  if (open.length === 0)
    return {
      action: "duplicate",
      executionArn: d.executionArn,
      service,
      reason: "no open page for this service and environment",
    };
  const channels = new Set<string>();
  let transient: DeliveryError | undefined;
  for (const [arn, inc] of open) {
    const route = deps.routeFor(service, { service, ...(inc.facts.commit ? { commit: inc.facts.commit } : {}) }, arn);
    for (const c of channelsOf(route, deps)) {
      // Only channels that carried the page get the resolution.
      if (!Object.keys(inc.sent).some((k) => k.endsWith(`:${c}`))) continue;
      try {
        await send(c, route, inc.facts, deps, d.executionArn);
        channels.add(c);
      } catch (err) {
        const e = err instanceof DeliveryError ? err : new DeliveryError(String(err), false, { cause: err });
        (deps.log ?? silentLog).error("resolve delivery failed", { channel: c, executionArn: arn, error: e.message });
        if (!e.permanent) transient = e;
      }
    }
  }
  if (transient) {
    // Reopen so the retry resolves again (PagerDuty resolve is idempotent by dedup key).
    await store.mutate(record, (rec) => {
      if (!rec) return { result: undefined };
      const incidents = { ...rec.incidents };
      for (const [arn] of open) {
        const inc = incidents[arn];
        if (inc?.resolvedBy === d.executionArn) {
          const { resolvedAt: _a, resolvedBy: _b, ...still } = inc;
          incidents[arn] = still;
        }
      }
      return { write: { ...rec, incidents }, result: undefined };
    });
    throw new ThrottledError(`resolving pages of ${service}: ${transient.message}`, { cause: transient });
  }
  return {
    action: "resolved",
    executionArn: d.executionArn,
    service,
    channels: [...channels],
    resolved: open.map(([arn]) => arn),
  };
}

async function send(c: Channel, route: PagerRoute, f: PageFacts, deps: PagerDeps, resolvedBy: string | undefined): Promise<void> {
  const http = {
    fetch: deps.fetch,
    clock: deps.clock,
    ...(deps.retry ? { retry: deps.retry } : {}),
    ...(deps.random ? { random: deps.random } : {}),
  };
  if (c === "pagerduty") {
    const key = await deps.secret(route.pagerDutyRoutingKeyParam!);
    const body = resolvedBy ? pagerDutyResolve(key, f.executionArn) : pagerDutyTrigger(key, f, route.severity);
    await postJson(deps.pagerDutyUrl ?? PAGERDUTY_EVENTS_URL, body, { ...http, what: "PagerDuty" });
  } else if (c === "slack") {
    const url = await deps.secret(route.slackWebhookParam!);
    await postJson(url, { text: pageText(f, resolvedBy) }, { ...http, what: "Slack" });
  } else {
    try {
      await deps.sns!.send(
        new PublishCommand({
          TopicArn: route.snsTopicArn,
          // SNS subjects: at most 100 printable ASCII characters.
          Subject: `${resolvedBy ? "RESOLVED " : f.notice ? "INFO " : ""}${summary(f)}`
            .replace(/[^\x20-\x7e]/g, "?")
            .slice(0, 100),
          Message: pageText(f, resolvedBy),
          // Subscribers filter on these (SNS subscription filter policies): a notice is severity info.
          MessageAttributes: {
            severity: { DataType: "String", StringValue: f.notice ? "info" : route.severity },
            kind: { DataType: "String", StringValue: resolvedBy ? "resolved" : f.notice ? `notice:${f.notice.kind}` : "page" },
            service: { DataType: "String", StringValue: f.service },
            ...(f.environment ? { environment: { DataType: "String", StringValue: f.environment } } : {}),
          },
        }),
      );
    } catch (err) {
      const name = (err as Error).name;
      const permanent = [
        "NotFoundException",
        "InvalidParameterException",
        "AuthorizationErrorException",
        "InvalidParameterValueException",
      ].includes(name);
      throw new DeliveryError(`SNS: ${name}: ${(err as Error).message}`, permanent, { cause: err });
    }
  }
}

function prune(r: PageRecord): PageRecord {
  const entries = Object.entries(r.incidents);
  if (entries.length <= MAX_INCIDENTS) return r;
  // Drop the oldest resolved incidents first; open ones are never dropped.
  const resolved = entries.filter(([, i]) => i.resolvedAt !== undefined).sort((a, b) => a[1].openedAt - b[1].openedAt);
  const drop = new Set(resolved.slice(0, entries.length - MAX_INCIDENTS).map(([k]) => k));
  return { ...r, incidents: Object.fromEntries(entries.filter(([k]) => !drop.has(k))) };
}
