/**
 * Simulated Amazon EventBridge Scheduler (rest-json, signing name `scheduler`): schedule groups and
 * schedules with `rate()`, `cron()` and `at()` expressions in a time zone, a flexible time window,
 * start and end dates, and targets fired on the cloud clock — Lambda (async Invoke), Step Functions
 * (StartExecution), SNS (Publish) and universal `aws-sdk` targets.
 *
 * Behaviour worth knowing:
 * - A rate schedule fires at anchor + k × rate, k ≥ 1, the anchor being StartDate or the time the
 *   schedule was created/updated. Whether AWS also fires at the anchor itself is not documented
 *   precisely: `scheduler.rateFiresAtStart` (default false) makes it do so.
 * - FLEXIBLE windows fire at a seeded-random point within `MaximumWindowInMinutes` after each
 *   nominal time.
 * - Failed deliveries that are retryable (throttling, 5xx) are retried with backoff within the
 *   target's RetryPolicy (defaults 185 attempts, 24 h).
 * - `Input` may use the context attributes `<aws.scheduler.schedule-arn>`,
 *   `<aws.scheduler.scheduled-time>`, `<aws.scheduler.execution-id>` and
 *   `<aws.scheduler.attempt-number>`.
 */
import type { Backend, Cloud } from "../../cloud.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { ServiceDefinition } from "../../protocol/types.ts";
import { type AwsCaller, createAwsCaller } from "../../sdk-call.ts";
import { checkTimezone, InvalidScheduleError, nextFireTime, type ParsedSchedule, parseSchedule } from "../events/schedule.ts";
import { deliverToTarget, isRetryableDelivery } from "../events/targets.ts";

export interface ScheduleTarget {
  Arn: string;
  RoleArn: string;
  Input?: string;
  RetryPolicy: { MaximumEventAgeInSeconds: number; MaximumRetryAttempts: number };
  DeadLetterConfig?: { Arn?: string };
  /** Other target parameters (EcsParameters, SqsParameters…), kept as given. */
  [extra: string]: unknown;
}

interface Schedule {
  name: string;
  group: string;
  arn: string;
  expression: string;
  parsed: ParsedSchedule;
  timezone?: string;
  startDate?: number;
  endDate?: number;
  description?: string;
  state: "ENABLED" | "DISABLED";
  flexible: { Mode: "OFF" | "FLEXIBLE"; MaximumWindowInMinutes?: number };
  target: ScheduleTarget;
  kmsKeyArn?: string;
  actionAfterCompletion: "NONE" | "DELETE";
  createdAt: number;
  modifiedAt: number;
  /** Last nominal firing time handled (the next one is computed after it). */
  cursor?: number;
  timer?: ReturnType<Cloud["clock"]["setTimeout"]>;
  /** When the armed timer fires. */
  nextAt?: number;
}

interface Group {
  name: string;
  arn: string;
  createdAt: number;
}

/** One delivery attempt of a schedule. */
export interface ScheduleInvocation {
  schedule: string;
  group: string;
  /** The nominal time this firing belongs to. */
  scheduledTime: string;
  at: string;
  attempt: number;
  executionId: string;
  status: "delivered" | "captured" | "retrying" | "failed";
  input: string;
  detail?: string;
  error?: string;
}

const NAME = /^[0-9a-zA-Z\-_.]{1,64}$/;

export class SchedulerBackend implements Backend {
  readonly definition: ServiceDefinition;
  private readonly groups = new Map<string, Group>();
  private readonly schedules = new Map<string, Schedule>(); // `${group}/${name}`
  private readonly log: ScheduleInvocation[] = [];
  private readonly timers = new Set<ReturnType<Cloud["clock"]["setTimeout"]>>();
  private caller?: AwsCaller;
  private stopped = false;

  constructor(private readonly cloud: Cloud) {
    this.groups.set("default", { name: "default", arn: this.groupArn("default"), createdAt: cloud.clock.now() });
    this.definition = schedulerDefinition(this);
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.schedules.values()) this.cloud.clock.clearTimeout(s.timer);
    for (const t of this.timers) this.cloud.clock.clearTimeout(t);
    this.timers.clear();
  }

  snapshot(): unknown {
    return {
      groups: [...this.groups.keys()],
      schedules: [...this.schedules.values()].map((s) => ({
        name: s.name,
        group: s.group,
        expression: s.expression,
        timezone: s.timezone ?? "UTC",
        state: s.state,
        target: s.target.Arn,
        nextFire: s.nextAt === undefined ? null : new Date(s.nextAt).toISOString(),
      })),
      invocations: this.log.slice(-100),
    };
  }

  /** Delivery attempts so far (bounded by `scheduler.logSize`, default 500), oldest first. */
  invocations(): ScheduleInvocation[] {
    return [...this.log];
  }

  private groupArn(name: string): string {
    return `arn:aws:scheduler:${this.cloud.region}:${this.cloud.accountId}:schedule-group/${name}`;
  }

  private scheduleArn(group: string, name: string): string {
    return `arn:aws:scheduler:${this.cloud.region}:${this.cloud.accountId}:schedule/${group}/${name}`;
  }

  private group(name: string | undefined): string {
    const g = name || "default";
    if (!this.groups.has(g)) throw new AwsError("ResourceNotFoundException", `Schedule group ${g} does not exist.`, 404);
    return g;
  }

  private get(name: string, group: string | undefined): Schedule {
    const g = this.group(group);
    const s = this.schedules.get(`${g}/${name}`);
    if (!s) throw new AwsError("ResourceNotFoundException", `Schedule ${name} does not exist.`, 404);
    return s;
  }

  /** Validates a Create/Update body into a schedule (without registering it). */
  private build(name: string, body: unknown, existing?: Schedule): Schedule {
    if (!NAME.test(name)) throw new AwsError("ValidationException", `Invalid schedule name ${name}.`);
    const p = new Params(body, "json");
    const group = this.group(p.str("GroupName"));
    const expression = p.str("ScheduleExpression", { required: true, max: 256 });
    let parsed: ParsedSchedule;
    try {
      parsed = parseSchedule(expression, { allowAt: true });
    } catch (err) {
      if (err instanceof InvalidScheduleError)
        throw new AwsError("ValidationException", `Invalid Schedule Expression ${expression}.`);
      throw err;
    }
    const timezone = p.str("ScheduleExpressionTimezone");
    if (timezone) {
      try {
        checkTimezone(timezone);
      } catch {
        throw new AwsError("ValidationException", `Invalid ScheduleExpressionTimezone ${timezone}.`);
      }
    }
    const fw = p.obj("FlexibleTimeWindow", { required: true })!;
    const mode = fw.str("Mode", { required: true });
    if (mode !== "OFF" && mode !== "FLEXIBLE") throw fw.invalid("Mode", mode, "must be OFF or FLEXIBLE");
    const window = fw.int("MaximumWindowInMinutes", { min: 1, max: 1440 });
    if (mode === "FLEXIBLE" && window === undefined)
      throw new AwsError("ValidationException", "MaximumWindowInMinutes is required when Mode is FLEXIBLE.");
    if (mode === "OFF" && window !== undefined)
      throw new AwsError("ValidationException", "MaximumWindowInMinutes must not be set when Mode is OFF.");
    const t = p.obj("Target", { required: true })!;
    const arn = t.str("Arn", { required: true, max: 1600 });
    const roleArn = t.str("RoleArn", { required: true, max: 1600 });
    const input = t.str("Input");
    const retry = t.obj("RetryPolicy");
    const { Arn: _a, RoleArn: _r, Input: _i, RetryPolicy: _p, ...extra } = t.raw as Record<string, unknown>;
    const target: ScheduleTarget = {
      ...extra,
      Arn: arn,
      RoleArn: roleArn,
      ...(input !== undefined ? { Input: input } : {}),
      RetryPolicy: {
        MaximumEventAgeInSeconds: retry?.int("MaximumEventAgeInSeconds", { min: 60, max: 86_400 }) ?? 86_400,
        MaximumRetryAttempts: retry?.int("MaximumRetryAttempts", { min: 0, max: 185 }) ?? 185,
      },
    };
    const now = this.cloud.clock.now();
    const startDate = epoch(p.num("StartDate"));
    const endDate = epoch(p.num("EndDate"));
    // Scheduler refuses a start date more than five minutes in the past.
    if (startDate !== undefined && startDate < now - 5 * 60_000)
      throw new AwsError(
        "ValidationException",
        "The StartDate you specify cannot be earlier than 5 minutes prior to the current time.",
      );
    if (endDate !== undefined && endDate <= now)
      throw new AwsError("ValidationException", "The EndDate you specify cannot be earlier than the current time.");
    if (startDate !== undefined && endDate !== undefined && endDate <= startDate)
      throw new AwsError("ValidationException", "The EndDate you specify must be after the StartDate.");
    const state = p.str("State") ?? "ENABLED";
    if (state !== "ENABLED" && state !== "DISABLED") throw p.invalid("State", state, "must be ENABLED or DISABLED");
    const after = p.str("ActionAfterCompletion") ?? "NONE";
    if (after !== "NONE" && after !== "DELETE") throw p.invalid("ActionAfterCompletion", after, "must be NONE or DELETE");
    return {
      name,
      group,
      arn: this.scheduleArn(group, name),
      expression,
      parsed,
      ...(timezone ? { timezone } : {}),
      ...(startDate !== undefined ? { startDate } : {}),
      ...(endDate !== undefined ? { endDate } : {}),
      ...(p.str("Description") !== undefined ? { description: p.str("Description") } : {}),
      state,
      flexible: { Mode: mode, ...(window !== undefined ? { MaximumWindowInMinutes: window } : {}) },
      target,
      ...(p.str("KmsKeyArn") ? { kmsKeyArn: p.str("KmsKeyArn") } : {}),
      actionAfterCompletion: after,
      createdAt: existing?.createdAt ?? now,
      modifiedAt: now,
    };
  }

  /** Arms the timer for the schedule's next firing (or none: disabled, ended, one-off done). */
  private arm(s: Schedule): void {
    this.cloud.clock.clearTimeout(s.timer);
    s.timer = undefined;
    s.nextAt = undefined;
    if (this.stopped || s.state === "DISABLED") return;
    const now = this.cloud.clock.now();
    const anchor = s.startDate ?? s.modifiedAt;
    let after = s.cursor ?? Math.max(now, (s.startDate ?? now) - 1);
    let anchorMs = anchor;
    if (s.parsed.kind === "rate" && s.cursor === undefined && this.cloud.setting("scheduler.rateFiresAtStart", false)) {
      anchorMs = anchor - s.parsed.everyMs;
      after = Math.min(after, anchor - 1);
    }
    const nominal = nextFireTime(s.parsed, after, { timezone: s.timezone, anchorMs });
    if (nominal === undefined) return;
    if (s.endDate !== undefined && nominal > s.endDate) return;
    const flex =
      s.flexible.Mode === "FLEXIBLE" ? Math.floor(this.cloud.random() * (s.flexible.MaximumWindowInMinutes ?? 0) * 60_000) : 0;
    const fireAt = Math.max(now, nominal + flex);
    s.nextAt = fireAt;
    s.timer = this.cloud.clock.setTimeout(() => {
      s.timer = undefined;
      s.nextAt = undefined;
      if (this.schedules.get(`${s.group}/${s.name}`) !== s) return;
      s.cursor = nominal;
      this.fire(s, nominal);
      if (s.parsed.kind === "at") {
        if (s.actionAfterCompletion === "DELETE") this.schedules.delete(`${s.group}/${s.name}`);
        return;
      }
      this.arm(s);
    }, fireAt - now);
  }

  private fire(s: Schedule, nominal: number): void {
    const executionId = uuid(this.cloud);
    void this.attempt(s, nominal, executionId, 1, this.cloud.clock.now());
  }

  private async attempt(s: Schedule, nominal: number, executionId: string, attempt: number, firstAt: number): Promise<void> {
    if (this.stopped) return;
    const scheduledTime = `${new Date(nominal).toISOString().slice(0, 19)}Z`;
    const input = (s.target.Input ?? "{}")
      .replaceAll("<aws.scheduler.schedule-arn>", s.arn)
      .replaceAll("<aws.scheduler.scheduled-time>", scheduledTime)
      .replaceAll("<aws.scheduler.execution-id>", executionId)
      .replaceAll("<aws.scheduler.attempt-number>", String(attempt));
    const record = (status: ScheduleInvocation["status"], extra: { detail?: string; error?: string } = {}) => {
      const entry: ScheduleInvocation = {
        schedule: s.name,
        group: s.group,
        scheduledTime,
        at: this.cloud.clock.date().toISOString(),
        attempt,
        executionId,
        status,
        input,
        ...extra,
      };
      this.log.push(entry);
      const max = Number(this.cloud.setting("scheduler.logSize", 500));
      if (this.log.length > max) this.log.splice(0, this.log.length - max);
      this.cloud.bus.emit("scheduler-invocation", entry);
    };
    try {
      this.caller ??= createAwsCaller(this.cloud);
      // The schedule invokes its target as the role it names (RoleArn).
      const r = await this.cloud.asRole(s.target.RoleArn, s.name, () =>
        deliverToTarget(this.cloud, s.target.Arn, input, this.caller),
      );
      record(r.status, r.detail ? { detail: r.detail } : {});
    } catch (err) {
      const error = err instanceof AwsError ? `${err.code}: ${err.message}` : String(err);
      const delay = Math.min(
        Number(this.cloud.setting("scheduler.retryMaxDelayMs", 60_000)),
        Number(this.cloud.setting("scheduler.retryBaseMs", 1_000)) * 2 ** (attempt - 1),
      );
      const retry =
        isRetryableDelivery(err) &&
        attempt <= s.target.RetryPolicy.MaximumRetryAttempts &&
        this.cloud.clock.now() + delay - firstAt <= s.target.RetryPolicy.MaximumEventAgeInSeconds * 1000;
      record(retry ? "retrying" : "failed", { error });
      if (retry && !this.stopped) {
        const t = this.cloud.clock.setTimeout(
          () => {
            this.timers.delete(t);
            void this.attempt(s, nominal, executionId, attempt + 1, firstAt);
          },
          this.cloud.jitter(delay, 0.2),
        );
        this.timers.add(t);
      }
    }
  }

  private describe(s: Schedule): Record<string, unknown> {
    return {
      Arn: s.arn,
      GroupName: s.group,
      Name: s.name,
      ScheduleExpression: s.expression,
      ...(s.startDate !== undefined ? { StartDate: new Date(s.startDate) } : {}),
      ...(s.endDate !== undefined ? { EndDate: new Date(s.endDate) } : {}),
      ...(s.description !== undefined ? { Description: s.description } : {}),
      ScheduleExpressionTimezone: s.timezone ?? "UTC",
      State: s.state,
      CreationDate: new Date(s.createdAt),
      LastModificationDate: new Date(s.modifiedAt),
      ...(s.kmsKeyArn ? { KmsKeyArn: s.kmsKeyArn } : {}),
      Target: s.target,
      FlexibleTimeWindow: s.flexible,
      ActionAfterCompletion: s.actionAfterCompletion,
    };
  }

  /** Action implementations (wired to routes in `schedulerDefinition`). */
  readonly actions = {
    CreateSchedule: (input: { Name: string; body: unknown }) => {
      const s = this.build(input.Name, input.body);
      const key = `${s.group}/${s.name}`;
      if (this.schedules.has(key)) throw new AwsError("ConflictException", `Schedule ${s.name} already exists.`, 409);
      this.schedules.set(key, s);
      this.arm(s);
      return { ScheduleArn: s.arn };
    },
    UpdateSchedule: (input: { Name: string; body: unknown }) => {
      const group = new Params(input.body, "json").str("GroupName");
      const existing = this.get(input.Name, group);
      // UpdateSchedule replaces the whole definition: fields left out return to their defaults.
      const s = this.build(input.Name, input.body, existing);
      this.cloud.clock.clearTimeout(existing.timer);
      this.schedules.set(`${s.group}/${s.name}`, s);
      this.arm(s);
      return { ScheduleArn: s.arn };
    },
    GetSchedule: (input: { Name: string; groupName?: string }) => this.describe(this.get(input.Name, input.groupName)),
    DeleteSchedule: (input: { Name: string; groupName?: string }) => {
      const s = this.get(input.Name, input.groupName);
      this.cloud.clock.clearTimeout(s.timer);
      this.schedules.delete(`${s.group}/${s.name}`);
      return {};
    },
    ListSchedules: (input: {
      ScheduleGroup?: string;
      NamePrefix?: string;
      State?: string;
      MaxResults?: string;
      NextToken?: string;
    }) => {
      if (input.ScheduleGroup) this.group(input.ScheduleGroup);
      const all = [...this.schedules.values()]
        .filter(
          (s) =>
            (!input.ScheduleGroup || s.group === input.ScheduleGroup) &&
            (!input.NamePrefix || s.name.startsWith(input.NamePrefix)) &&
            (!input.State || s.state === input.State),
        )
        .sort((a, b) => a.group.localeCompare(b.group) || a.name.localeCompare(b.name));
      const { page, next } = paginate(all, input.MaxResults, input.NextToken);
      return {
        Schedules: page.map((s) => ({
          Arn: s.arn,
          Name: s.name,
          GroupName: s.group,
          State: s.state,
          CreationDate: new Date(s.createdAt),
          LastModificationDate: new Date(s.modifiedAt),
          Target: { Arn: s.target.Arn },
        })),
        ...(next ? { NextToken: next } : {}),
      };
    },
    CreateScheduleGroup: (input: { Name: string }) => {
      if (!NAME.test(input.Name)) throw new AwsError("ValidationException", `Invalid schedule group name ${input.Name}.`);
      if (this.groups.has(input.Name))
        throw new AwsError("ConflictException", `Schedule group ${input.Name} already exists.`, 409);
      const g: Group = { name: input.Name, arn: this.groupArn(input.Name), createdAt: this.cloud.clock.now() };
      this.groups.set(g.name, g);
      return { ScheduleGroupArn: g.arn };
    },
    GetScheduleGroup: (input: { Name: string }) => {
      const g = this.groups.get(this.group(input.Name))!;
      return {
        Arn: g.arn,
        Name: g.name,
        State: "ACTIVE",
        CreationDate: new Date(g.createdAt),
        LastModificationDate: new Date(g.createdAt),
      };
    },
    DeleteScheduleGroup: (input: { Name: string }) => {
      const name = this.group(input.Name);
      if (name === "default") throw new AwsError("ValidationException", "The default schedule group cannot be deleted.");
      // Deleting a group deletes its schedules.
      for (const [k, s] of this.schedules) {
        if (s.group !== name) continue;
        this.cloud.clock.clearTimeout(s.timer);
        this.schedules.delete(k);
      }
      this.groups.delete(name);
      return {};
    },
    ListScheduleGroups: (input: { NamePrefix?: string; MaxResults?: string; NextToken?: string }) => {
      const all = [...this.groups.values()]
        .filter((g) => !input.NamePrefix || g.name.startsWith(input.NamePrefix))
        .sort((a, b) => a.name.localeCompare(b.name));
      const { page, next } = paginate(all, input.MaxResults, input.NextToken);
      return {
        ScheduleGroups: page.map((g) => ({
          Arn: g.arn,
          Name: g.name,
          State: "ACTIVE",
          CreationDate: new Date(g.createdAt),
          LastModificationDate: new Date(g.createdAt),
        })),
        ...(next ? { NextToken: next } : {}),
      };
    },
  };
}

/** JSON timestamps arrive as epoch seconds. */
function epoch(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : Math.round(seconds * 1000);
}

function paginate<T>(all: T[], maxResults: string | undefined, token: string | undefined): { page: T[]; next?: string } {
  const max = maxResults === undefined ? 100 : Number(maxResults);
  if (!Number.isInteger(max) || max < 1 || max > 100)
    throw new AwsError("ValidationException", `Invalid MaxResults ${maxResults}.`);
  const start = token ? Number(Buffer.from(token, "base64").toString("utf8")) : 0;
  if (!Number.isInteger(start) || start < 0) throw new AwsError("ValidationException", "Invalid NextToken.");
  const page = all.slice(start, start + max);
  return { page, ...(start + max < all.length ? { next: Buffer.from(String(start + max)).toString("base64") } : {}) };
}

function uuid(cloud: Cloud): string {
  const h = cloud.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function schedulerDefinition(backend: SchedulerBackend): ServiceDefinition {
  const one = "(?<Name>[^/]+)";
  return {
    signingName: "scheduler",
    protocol: "rest-json",
    routes: [
      { method: "POST", pattern: new RegExp(`^/schedules/${one}$`), action: "CreateSchedule" },
      { method: "PUT", pattern: new RegExp(`^/schedules/${one}$`), action: "UpdateSchedule" },
      { method: "GET", pattern: new RegExp(`^/schedules/${one}$`), action: "GetSchedule" },
      { method: "DELETE", pattern: new RegExp(`^/schedules/${one}$`), action: "DeleteSchedule" },
      { method: "GET", pattern: /^\/schedules\/?$/, action: "ListSchedules" },
      { method: "POST", pattern: new RegExp(`^/schedule-groups/${one}$`), action: "CreateScheduleGroup" },
      { method: "GET", pattern: new RegExp(`^/schedule-groups/${one}$`), action: "GetScheduleGroup" },
      { method: "DELETE", pattern: new RegExp(`^/schedule-groups/${one}$`), action: "DeleteScheduleGroup" },
      { method: "GET", pattern: /^\/schedule-groups\/?$/, action: "ListScheduleGroups" },
    ],
    actions: backend.actions,
  };
}

/** Registers simulated EventBridge Scheduler as "scheduler" and returns its backend. */
export function registerScheduler(cloud: Cloud): SchedulerBackend {
  const backend = new SchedulerBackend(cloud);
  cloud.register("scheduler", backend);
  return backend;
}
