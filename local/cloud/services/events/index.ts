/**
 * Simulated Amazon EventBridge (awsJson 1.1, `X-Amz-Target: AWSEvents.<Op>`): event buses, rules
 * with event patterns or schedule expressions, targets, and PutEvents.
 *
 * Every `cloud.emit({source, detailType, detail, resources})` from another simulated service
 * (EC2 AMI State Change, SSM command status, Step Functions Execution Status Change, CloudWatch
 * Alarm State Change, …) becomes an event on the default bus, exactly like PutEvents entries do.
 * Matching rules deliver to their targets on the cloud clock (`events.deliveryDelayMs`), retrying
 * throttled or failed deliveries with backoff within the target's RetryPolicy. Scheduled rules fire
 * on the cloud clock in UTC.
 */
import type { Backend, Cloud, CloudEvent } from "../../cloud.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { ServiceDefinition } from "../../protocol/types.ts";
import { type AwsCaller, createAwsCaller } from "../../sdk-call.ts";
import { type EventPattern, InvalidPatternError, matchesPattern, parsePattern } from "./pattern.ts";
import { InvalidScheduleError, nextFireTime, type ParsedSchedule, parseSchedule } from "./schedule.ts";
import {
  checkPath,
  deliverToTarget,
  type InputTransformerSpec,
  isRetryableDelivery,
  readPath,
  transformInput,
} from "./targets.ts";

/** An event as EventBridge delivers it to targets. */
export interface AwsEvent {
  version: "0";
  id: string;
  "detail-type": string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

export type RuleState = "ENABLED" | "DISABLED" | "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS";

export interface RuleTarget {
  Id: string;
  Arn: string;
  RoleArn?: string;
  Input?: string;
  InputPath?: string;
  InputTransformer?: InputTransformerSpec;
  RetryPolicy?: { MaximumRetryAttempts?: number; MaximumEventAgeInSeconds?: number };
  DeadLetterConfig?: { Arn?: string };
}

interface Rule {
  name: string;
  bus: string;
  arn: string;
  eventPattern?: string;
  pattern?: EventPattern;
  scheduleExpression?: string;
  schedule?: ParsedSchedule;
  state: RuleState;
  description?: string;
  roleArn?: string;
  targets: Map<string, RuleTarget>;
  createdAt: number;
  timer?: ReturnType<Cloud["clock"]["setTimeout"]>;
  /** Nominal time of the last scheduled firing. */
  lastFire?: number;
}

interface Bus {
  name: string;
  arn: string;
  description?: string;
  createdAt: number;
}

/** One event seen on a bus, with the rules it matched. */
export interface EventLogEntry {
  event: AwsEvent;
  bus: string;
  matchedRules: string[];
}

/** One delivery attempt to one target. */
export interface DeliveryLogEntry {
  eventId: string;
  rule: string;
  targetId: string;
  arn: string;
  attempt: number;
  at: string;
  status: "delivered" | "captured" | "retrying" | "failed";
  input: string;
  detail?: string;
  error?: string;
}

const NAME = /^[.\-_A-Za-z0-9]{1,64}$/;
const MAX_TARGETS_PER_RULE = 5;

export class EventsBackend implements Backend {
  readonly definition: ServiceDefinition;
  private readonly buses = new Map<string, Bus>();
  private readonly rules = new Map<string, Rule>(); // key `${bus}/${name}`
  private readonly eventLog: EventLogEntry[] = [];
  private readonly deliveryLog: DeliveryLogEntry[] = [];
  private readonly timers = new Set<ReturnType<Cloud["clock"]["setTimeout"]>>();
  private readonly onCloudEvent = (e: CloudEvent) => this.ingestCloudEvent(e);
  private caller?: AwsCaller;
  private stopped = false;

  constructor(private readonly cloud: Cloud) {
    this.buses.set("default", { name: "default", arn: this.busArn("default"), createdAt: cloud.clock.now() });
    this.definition = {
      signingName: "events",
      protocol: "json",
      jsonVersion: "1.1",
      targetPrefix: "AWSEvents",
      actions: this.actions(),
    };
    cloud.bus.on("event", this.onCloudEvent);
  }

  stop(): void {
    this.stopped = true;
    this.cloud.bus.off("event", this.onCloudEvent);
    for (const r of this.rules.values()) this.cloud.clock.clearTimeout(r.timer);
    for (const t of this.timers) this.cloud.clock.clearTimeout(t);
    this.timers.clear();
  }

  snapshot(): unknown {
    return {
      buses: [...this.buses.values()].map((b) => ({ name: b.name, arn: b.arn })),
      rules: [...this.rules.values()].map((r) => ({
        name: r.name,
        bus: r.bus,
        arn: r.arn,
        state: r.state,
        eventPattern: r.eventPattern,
        scheduleExpression: r.scheduleExpression,
        targets: [...r.targets.values()].map((t) => ({ id: t.Id, arn: t.Arn })),
      })),
      events: this.eventLog.slice(-100),
      deliveries: this.deliveryLog.slice(-100),
    };
  }

  /** Events seen so far (bounded by `events.logSize`, default 500), oldest first. */
  events(): EventLogEntry[] {
    return [...this.eventLog];
  }

  /** Delivery attempts so far (bounded by `events.logSize`), oldest first. */
  deliveries(): DeliveryLogEntry[] {
    return [...this.deliveryLog];
  }

  /**
   * Puts an event on a bus (what PutEvents and `cloud.emit` do) and schedules deliveries to the
   * targets of every enabled rule whose pattern matches. Returns the event as delivered.
   */
  putEvent(entry: {
    source: string;
    detailType: string;
    detail: Record<string, unknown>;
    resources?: string[];
    time?: Date;
    bus?: string;
  }): AwsEvent {
    const event: AwsEvent = {
      version: "0",
      id: uuid(this.cloud),
      "detail-type": entry.detailType,
      source: entry.source,
      account: this.cloud.accountId,
      time: isoSeconds(entry.time ?? this.cloud.clock.date()),
      region: this.cloud.region,
      resources: entry.resources ?? [],
      detail: entry.detail,
    };
    const bus = entry.bus ?? "default";
    const matched: Rule[] = [];
    for (const r of this.rules.values()) {
      if (r.bus !== bus || r.state === "DISABLED" || !r.pattern) continue;
      if (matchesPattern(r.pattern, event)) matched.push(r);
    }
    this.log(this.eventLog, { event, bus, matchedRules: matched.map((r) => r.name) });
    for (const r of matched) this.dispatch(r, event);
    return event;
  }

  private ingestCloudEvent(e: CloudEvent): void {
    if (this.stopped) return;
    this.putEvent({ source: e.source, detailType: e.detailType, detail: e.detail, resources: e.resources ?? [] });
  }

  private dispatch(rule: Rule, event: AwsEvent): void {
    for (const target of rule.targets.values()) {
      let input: string;
      try {
        input = ruleInput(target, event, rule);
      } catch (err) {
        this.logDelivery(event, rule, target, 1, "failed", "", undefined, (err as Error).message);
        continue;
      }
      this.schedule(
        () => this.attempt(rule, target, event, input, 1, this.cloud.clock.now()),
        Number(this.cloud.setting("events.deliveryDelayMs", 0)),
      );
    }
  }

  private async attempt(
    rule: Rule,
    target: RuleTarget,
    event: AwsEvent,
    input: string,
    attempt: number,
    firstAt: number,
  ): Promise<void> {
    if (this.stopped) return;
    try {
      const r = await deliverToTarget(this.cloud, target.Arn, input, this.awsCaller());
      this.logDelivery(event, rule, target, attempt, r.status, input, r.detail);
    } catch (err) {
      const message = err instanceof AwsError ? `${err.code}: ${err.message}` : String(err);
      // Defaults of a target's RetryPolicy: 185 attempts within 24 hours.
      const maxRetries = target.RetryPolicy?.MaximumRetryAttempts ?? 185;
      const maxAgeMs = (target.RetryPolicy?.MaximumEventAgeInSeconds ?? 86_400) * 1000;
      const delay = Math.min(
        Number(this.cloud.setting("events.retryMaxDelayMs", 60_000)),
        Number(this.cloud.setting("events.retryBaseMs", 1_000)) * 2 ** (attempt - 1),
      );
      const retry = isRetryableDelivery(err) && attempt <= maxRetries && this.cloud.clock.now() + delay - firstAt <= maxAgeMs;
      this.logDelivery(event, rule, target, attempt, retry ? "retrying" : "failed", input, undefined, message);
      if (retry)
        this.schedule(() => this.attempt(rule, target, event, input, attempt + 1, firstAt), this.cloud.jitter(delay, 0.2));
    }
  }

  private logDelivery(
    event: AwsEvent,
    rule: Rule,
    target: RuleTarget,
    attempt: number,
    status: DeliveryLogEntry["status"],
    input: string,
    detail?: string,
    error?: string,
  ): void {
    const entry: DeliveryLogEntry = {
      eventId: event.id,
      rule: rule.name,
      targetId: target.Id,
      arn: target.Arn,
      attempt,
      at: this.cloud.clock.date().toISOString(),
      status,
      input,
      ...(detail ? { detail } : {}),
      ...(error ? { error } : {}),
    };
    this.log(this.deliveryLog, entry);
    this.cloud.bus.emit("events-delivery", entry);
  }

  private log<T>(list: T[], entry: T): void {
    list.push(entry);
    const max = Number(this.cloud.setting("events.logSize", 500));
    if (list.length > max) list.splice(0, list.length - max);
  }

  private schedule(fn: () => void, ms: number): void {
    if (this.stopped) return;
    const t = this.cloud.clock.setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private awsCaller(): AwsCaller {
    this.caller ??= createAwsCaller(this.cloud);
    return this.caller;
  }

  /** (Re)arms a scheduled rule's timer for its next firing. */
  private arm(rule: Rule): void {
    this.cloud.clock.clearTimeout(rule.timer);
    rule.timer = undefined;
    if (this.stopped || !rule.schedule || rule.state === "DISABLED") return;
    const now = this.cloud.clock.now();
    // A rate rule counts from its creation: first firing one period later. Whether AWS also fires
    // right at creation is not documented; `events.rateFiresAtCreation` makes it do so.
    let anchorMs = rule.createdAt;
    let after = now;
    if (rule.schedule.kind === "rate" && rule.lastFire === undefined && this.cloud.setting("events.rateFiresAtCreation", false)) {
      anchorMs -= rule.schedule.everyMs;
      after = Math.min(now, rule.createdAt) - 1;
    }
    const next = nextFireTime(rule.schedule, after, { anchorMs });
    if (next === undefined) return;
    rule.timer = this.cloud.clock.setTimeout(() => {
      rule.timer = undefined;
      rule.lastFire = next;
      if (this.rules.get(`${rule.bus}/${rule.name}`) !== rule || rule.state === "DISABLED") return;
      const event: AwsEvent = {
        version: "0",
        id: uuid(this.cloud),
        "detail-type": "Scheduled Event",
        source: "aws.events",
        account: this.cloud.accountId,
        time: isoSeconds(new Date(next)),
        region: this.cloud.region,
        resources: [rule.arn],
        detail: {},
      };
      this.log(this.eventLog, { event, bus: rule.bus, matchedRules: [rule.name] });
      this.dispatch(rule, event);
      this.arm(rule);
    }, next - now);
  }

  private busArn(name: string): string {
    return `arn:aws:events:${this.cloud.region}:${this.cloud.accountId}:event-bus/${name}`;
  }

  private ruleArn(bus: string, name: string): string {
    const prefix = `arn:aws:events:${this.cloud.region}:${this.cloud.accountId}:rule/`;
    return bus === "default" ? `${prefix}${name}` : `${prefix}${bus}/${name}`;
  }

  /** Accepts a bus name or ARN; undefined means the default bus. */
  private busName(p: Params, key = "EventBusName"): string {
    const v = p.str(key);
    if (!v) return "default";
    const m = /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/(.+)$/.exec(v);
    const name = m ? m[1]! : v;
    if (!this.buses.has(name)) throw new AwsError("ResourceNotFoundException", `Event bus ${name} does not exist.`);
    return name;
  }

  private rule(p: Params, key = "Name"): Rule {
    const bus = this.busName(p);
    const name = p.str(key, { required: true });
    const r = this.rules.get(`${bus}/${name}`);
    if (!r) throw new AwsError("ResourceNotFoundException", `Rule ${name} does not exist on EventBus ${bus}.`);
    return r;
  }

  private describe(r: Rule): Record<string, unknown> {
    return {
      Name: r.name,
      Arn: r.arn,
      ...(r.eventPattern !== undefined ? { EventPattern: r.eventPattern } : {}),
      ...(r.scheduleExpression !== undefined ? { ScheduleExpression: r.scheduleExpression } : {}),
      State: r.state,
      ...(r.description !== undefined ? { Description: r.description } : {}),
      ...(r.roleArn !== undefined ? { RoleArn: r.roleArn } : {}),
      EventBusName: r.bus,
    };
  }

  private actions(): ServiceDefinition["actions"] {
    return {
      CreateEventBus: (input, ctx) => {
        const p = new Params(input, ctx);
        const name = p.str("Name", { required: true, pattern: /^[/.\-_A-Za-z0-9]{1,256}$/ });
        if (name === "default" || name.startsWith("aws."))
          throw new AwsError("ValidationException", `Event bus name ${name} is reserved.`);
        if (this.buses.has(name)) throw new AwsError("ResourceAlreadyExistsException", `Event bus ${name} already exists.`);
        const bus: Bus = { name, arn: this.busArn(name), description: p.str("Description"), createdAt: this.cloud.clock.now() };
        this.buses.set(name, bus);
        return { EventBusArn: bus.arn };
      },
      DescribeEventBus: (input, ctx) => {
        const p = new Params(input, ctx);
        const name = this.busName(p, "Name");
        const b = this.buses.get(name)!;
        return {
          Name: b.name,
          Arn: b.arn,
          ...(b.description ? { Description: b.description } : {}),
          CreationTime: new Date(b.createdAt),
        };
      },
      DeleteEventBus: (input, ctx) => {
        const p = new Params(input, ctx);
        const name = p.str("Name", { required: true });
        if (name === "default") throw new AwsError("ValidationException", "Cannot delete event bus default.");
        // Deleting a missing bus succeeds, as in AWS.
        for (const r of this.rules.values())
          if (r.bus === name)
            throw new AwsError("ValidationException", `Cannot delete event bus ${name} because it has rules (${r.name}).`);
        this.buses.delete(name);
        return {};
      },
      ListEventBuses: (input, ctx) => {
        const p = new Params(input, ctx);
        const prefix = p.str("NamePrefix") ?? "";
        return {
          EventBuses: [...this.buses.values()]
            .filter((b) => b.name.startsWith(prefix))
            .map((b) => ({ Name: b.name, Arn: b.arn, CreationTime: new Date(b.createdAt) })),
        };
      },

      PutRule: (input, ctx) => {
        const p = new Params(input, ctx);
        const name = p.str("Name", { required: true, pattern: NAME });
        const bus = this.busName(p);
        const eventPattern = p.str("EventPattern");
        const scheduleExpression = p.str("ScheduleExpression");
        if (!eventPattern && !scheduleExpression)
          throw new AwsError("ValidationException", "Parameter(s) EventPattern or ScheduleExpression must be specified.");
        if (scheduleExpression && bus !== "default")
          throw new AwsError("ValidationException", "ScheduleExpression is supported only on the default event bus.");
        const state = (p.str("State") ?? "ENABLED") as RuleState;
        if (!["ENABLED", "DISABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"].includes(state))
          throw p.invalid("State", state, "must be ENABLED or DISABLED");
        let pattern: EventPattern | undefined;
        if (eventPattern) {
          try {
            pattern = parsePattern(eventPattern);
          } catch (err) {
            if (err instanceof InvalidPatternError) throw new AwsError("InvalidEventPatternException", err.message);
            throw err;
          }
        }
        let schedule: ParsedSchedule | undefined;
        if (scheduleExpression) {
          try {
            schedule = parseSchedule(scheduleExpression);
          } catch (err) {
            if (err instanceof InvalidScheduleError)
              throw new AwsError("ValidationException", "Parameter ScheduleExpression is not valid.");
            throw err;
          }
        }
        const key = `${bus}/${name}`;
        const existing = this.rules.get(key);
        // PutRule on an existing rule replaces its definition; targets stay.
        const rule: Rule = {
          name,
          bus,
          arn: this.ruleArn(bus, name),
          eventPattern,
          pattern,
          scheduleExpression,
          schedule,
          state,
          description: p.str("Description"),
          roleArn: p.str("RoleArn"),
          targets: existing?.targets ?? new Map(),
          createdAt: existing && existing.scheduleExpression === scheduleExpression ? existing.createdAt : this.cloud.clock.now(),
        };
        if (existing) this.cloud.clock.clearTimeout(existing.timer);
        this.rules.set(key, rule);
        this.arm(rule);
        return { RuleArn: rule.arn };
      },
      DescribeRule: (input, ctx) => {
        const r = this.rule(new Params(input, ctx));
        return { ...this.describe(r), CreatedBy: this.cloud.accountId };
      },
      ListRules: (input, ctx) => {
        const p = new Params(input, ctx);
        const bus = this.busName(p);
        const prefix = p.str("NamePrefix") ?? "";
        const all = [...this.rules.values()]
          .filter((r) => r.bus === bus && r.name.startsWith(prefix))
          .sort((a, b) => a.name.localeCompare(b.name));
        return paginate(all, p, "Rules", (r) => this.describe(r));
      },
      DeleteRule: (input, ctx) => {
        const p = new Params(input, ctx);
        const bus = this.busName(p);
        const name = p.str("Name", { required: true });
        const r = this.rules.get(`${bus}/${name}`);
        if (!r) return {}; // deleting a missing rule succeeds
        if (r.targets.size > 0 && !p.bool("Force", false))
          throw new AwsError("ValidationException", "Rule can't be deleted since it has targets.");
        this.cloud.clock.clearTimeout(r.timer);
        this.rules.delete(`${bus}/${name}`);
        return {};
      },
      EnableRule: (input, ctx) => {
        const r = this.rule(new Params(input, ctx));
        r.state = "ENABLED";
        if (!r.timer) this.arm(r);
        return {};
      },
      DisableRule: (input, ctx) => {
        const r = this.rule(new Params(input, ctx));
        r.state = "DISABLED";
        this.arm(r);
        return {};
      },

      PutTargets: (input, ctx) => {
        const p = new Params(input, ctx);
        const r = this.rule(p, "Rule");
        const targets = p.list<Record<string, unknown>>("Targets", { required: true });
        if (targets.length === 0 || targets.length > 10)
          throw p.invalid("Targets", targets.length, "must contain 1 to 10 targets");
        const parsed = targets.map((t) => parseTarget(new Params(t, ctx)));
        const ids = new Set([...r.targets.keys(), ...parsed.map((t) => t.Id)]);
        if (ids.size > MAX_TARGETS_PER_RULE)
          throw new AwsError("LimitExceededException", "The requested resource exceeds the maximum number allowed.");
        for (const t of parsed) r.targets.set(t.Id, t);
        return { FailedEntryCount: 0, FailedEntries: [] };
      },
      ListTargetsByRule: (input, ctx) => {
        const p = new Params(input, ctx);
        const r = this.rule(p, "Rule");
        return paginate([...r.targets.values()], p, "Targets", (t) => ({ ...t }));
      },
      RemoveTargets: (input, ctx) => {
        const p = new Params(input, ctx);
        const r = this.rule(p, "Rule");
        const ids = p.list<string>("Ids", { required: true });
        const failed: { TargetId: string; ErrorCode: string; ErrorMessage: string }[] = [];
        for (const id of ids)
          if (!r.targets.delete(id))
            failed.push({ TargetId: id, ErrorCode: "ResourceNotFoundException", ErrorMessage: `Target ${id} does not exist.` });
        return { FailedEntryCount: failed.length, FailedEntries: failed };
      },

      PutEvents: (input, ctx) => {
        const p = new Params(input, ctx);
        const entries = p.list<Record<string, unknown>>("Entries", { required: true });
        if (entries.length < 1 || entries.length > 10) {
          throw new AwsError(
            "ValidationException",
            `1 validation error detected: Value '[${entries.length} entries]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10`,
          );
        }
        const results = entries.map((raw) => this.putEntry(raw));
        return { FailedEntryCount: results.filter((r) => r.ErrorCode).length, Entries: results };
      },
      TestEventPattern: (input, ctx) => {
        const p = new Params(input, ctx);
        let pattern: EventPattern;
        try {
          pattern = parsePattern(p.str("EventPattern", { required: true }));
        } catch (err) {
          if (err instanceof InvalidPatternError) throw new AwsError("InvalidEventPatternException", err.message);
          throw err;
        }
        let event: unknown;
        try {
          event = JSON.parse(p.str("Event", { required: true }));
        } catch {
          throw new AwsError("InvalidEventPatternException", "Event is not valid JSON.");
        }
        if (!event || typeof event !== "object" || Array.isArray(event))
          throw new AwsError("ValidationException", "Parameter Event is not valid.");
        for (const k of ["id", "account", "source", "time", "region", "detail-type"]) {
          if (!(k in (event as Record<string, unknown>)))
            throw new AwsError(
              "ValidationException",
              `Parameter Event is not valid. Reason: Provided Event is missing required field ${k}.`,
            );
        }
        return { Result: matchesPattern(pattern, event) };
      },
    };
  }

  private putEntry(raw: Record<string, unknown>): { EventId?: string; ErrorCode?: string; ErrorMessage?: string } {
    const bad = (code: string, message: string) => ({ ErrorCode: code, ErrorMessage: message });
    const source = raw.Source;
    const detailType = raw.DetailType;
    const detailText = raw.Detail;
    if (typeof source !== "string" || source === "")
      return bad("InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument.");
    if (typeof detailType !== "string" || detailType === "")
      return bad("InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required argument.");
    if (typeof detailText !== "string" || detailText === "")
      return bad("InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument.");
    // Sources starting with "aws." belong to AWS services.
    if (source.startsWith("aws.")) return bad("NotAuthorizedForSourceException", "Not authorized for the source.");
    let detail: unknown;
    try {
      detail = JSON.parse(detailText);
    } catch {
      return bad("MalformedDetail", "Detail is malformed.");
    }
    if (!detail || typeof detail !== "object" || Array.isArray(detail)) return bad("MalformedDetail", "Detail is malformed.");
    const size = Buffer.byteLength(source) + Buffer.byteLength(detailType) + Buffer.byteLength(detailText);
    if (size > 256 * 1024) return bad("EntrySizeLimitExceeded", "Entry size exceeds the maximum of 256 KB.");
    let bus: string;
    try {
      bus = this.busName(new Params(raw, "json"));
    } catch (err) {
      return bad("InvalidArgument", (err as Error).message);
    }
    let time: Date | undefined;
    if (typeof raw.Time === "number") time = new Date(raw.Time * 1000);
    else if (typeof raw.Time === "string" && raw.Time) time = new Date(raw.Time);
    const resources = Array.isArray(raw.Resources) ? raw.Resources.map(String) : [];
    const event = this.putEvent({
      source,
      detailType,
      detail: detail as Record<string, unknown>,
      resources,
      bus,
      ...(time && !Number.isNaN(time.getTime()) ? { time } : {}),
    });
    return { EventId: event.id };
  }
}

function parseTarget(t: Params): RuleTarget {
  const Id = t.str("Id", { required: true, pattern: NAME });
  const Arn = t.str("Arn", { required: true });
  const Input = t.str("Input");
  const InputPath = t.str("InputPath");
  const transformer = t.obj("InputTransformer");
  if ([Input, InputPath, transformer].filter((x) => x !== undefined).length > 1) {
    throw new AwsError("ValidationException", "Only one of Input, InputPath, or InputTransformer must be provided.");
  }
  if (Input !== undefined) {
    try {
      JSON.parse(Input);
    } catch {
      throw new AwsError("ValidationException", `Input for target ${Id} is not valid JSON.`);
    }
  }
  if (InputPath !== undefined) checkPath(InputPath);
  let InputTransformer: InputTransformerSpec | undefined;
  if (transformer) {
    const template = transformer.str("InputTemplate", { required: true });
    const map = (transformer.raw.InputPathsMap ?? {}) as Record<string, string>;
    for (const [k, v] of Object.entries(map)) {
      if (k.startsWith("aws.")) throw new AwsError("ValidationException", `InputPathsMap key ${k} is reserved.`);
      checkPath(String(v));
    }
    InputTransformer = { InputPathsMap: map, InputTemplate: template };
  }
  const retry = t.obj("RetryPolicy");
  const dlq = t.obj("DeadLetterConfig");
  return {
    Id,
    Arn,
    ...(t.str("RoleArn") ? { RoleArn: t.str("RoleArn") } : {}),
    ...(Input !== undefined ? { Input } : {}),
    ...(InputPath !== undefined ? { InputPath } : {}),
    ...(InputTransformer ? { InputTransformer } : {}),
    ...(retry
      ? {
          RetryPolicy: {
            MaximumRetryAttempts: retry.int("MaximumRetryAttempts", { min: 0, max: 185 }),
            MaximumEventAgeInSeconds: retry.int("MaximumEventAgeInSeconds", { min: 60, max: 86_400 }),
          },
        }
      : {}),
    ...(dlq ? { DeadLetterConfig: { Arn: dlq.str("Arn") } } : {}),
  };
}

/** What a target receives: the whole event, a constant, a path into it, or a transformed template. */
function ruleInput(target: RuleTarget, event: AwsEvent, rule: Rule): string {
  if (target.Input !== undefined) return target.Input;
  if (target.InputPath !== undefined) {
    const v = readPath(event, target.InputPath);
    return v === undefined ? "null" : JSON.stringify(v);
  }
  if (target.InputTransformer) {
    return transformInput(target.InputTransformer, event, {
      "aws.events.rule-arn": rule.arn,
      "aws.events.rule-name": rule.name,
      "aws.events.event.ingestion-time": event.time,
      "aws.events.event": event,
      "aws.events.event.json": event,
    });
  }
  return JSON.stringify(event);
}

function paginate<T>(all: T[], p: Params, key: string, render: (x: T) => unknown): Record<string, unknown> {
  const limit = p.int("Limit", { min: 1, max: 100, default: 100 })!;
  const token = p.str("NextToken");
  const start = token ? Number(Buffer.from(token, "base64").toString("utf8")) : 0;
  if (!Number.isInteger(start) || start < 0) throw new AwsError("ValidationException", "Invalid NextToken.");
  const page = all.slice(start, start + limit);
  const next = start + limit < all.length ? Buffer.from(String(start + limit)).toString("base64") : undefined;
  return { [key]: page.map(render), ...(next ? { NextToken: next } : {}) };
}

/** EventBridge event times have second precision: `2026-01-05T09:00:00Z`. */
function isoSeconds(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

function uuid(cloud: Cloud): string {
  const h = cloud.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Registers simulated EventBridge as "events" and returns its backend. */
export function registerEvents(cloud: Cloud): EventsBackend {
  const backend = new EventsBackend(cloud);
  cloud.register("events", backend);
  cloud.admin("events", () => backend.snapshot());
  return backend;
}
