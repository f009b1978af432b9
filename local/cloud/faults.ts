import { AwsError } from "./protocol/errors.ts";
import type { FaultGate } from "./protocol/router.ts";

/**
 * Faults injected from a scenario file or the admin API. Every fault is a rule with a `kind`;
 * `api` rules are applied by the router before an action runs, the others are asked for by the
 * service that owns the behaviour (`cloud.faults.match("boot", {...})`).
 *
 * Kinds and the attributes their owners match on:
 * - `api`            service, action, code, status?, message?, rate? | nth? , times?
 * - `boot`           mode "slow" | "fail", delayMs?, imageId?  (EC2)
 * - `ami`            mode "fail"                               (EC2 CreateImage)
 * - `ssm-agent`      instanceId? / tag?  → agent offline        (SSM)
 * - `command`        match (regex on the script), mode "fail" | "timeout", exitCode?   (SSM)
 * - `health-flap`    instanceId? / targetGroup?, periodMs        (ELBv2)
 * - `bad-commit`     commit, mode "500" | "slow", latencyMs?     (sample app)
 * - `scale`          group, desired, atMs                         (Auto Scaling)
 * - `lambda`         function (name), mode "crash-before" (alias "crash") | "crash-after" | "timeout", times?  (Lambda)
 */
export interface FaultRule {
  kind: string;
  /** Probability per matching event, 0..1 (default 1). */
  rate?: number;
  /** Fire only on the Nth matching event (1-based). */
  nth?: number;
  /** Fire at most this many times. */
  times?: number;
  // `any`: attributes depend on the kind
  [attr: string]: any;
}

interface Armed {
  id: number;
  rule: FaultRule;
  seen: number;
  fired: number;
}

/** Attribute keys that configure a rule rather than select what it applies to. */
const CONTROL_KEYS = new Set([
  "kind",
  "rate",
  "nth",
  "times",
  "mode",
  "code",
  "status",
  "message",
  "delayMs",
  "latencyMs",
  "exitCode",
  "periodMs",
  "desired",
  "atMs",
  "id",
]);

export class Faults implements FaultGate {
  private rules: Armed[] = [];
  private seq = 0;
  private readonly listeners = new Set<(rule: FaultRule, id: number) => void>();
  /** How many times each rule fired, for assertions. */
  readonly log: { id: number; kind: string; at: number; attrs: Record<string, unknown> }[] = [];

  constructor(
    private readonly random: () => number,
    private readonly now: () => number,
  ) {}

  add(rule: FaultRule): number {
    if (!rule || typeof rule.kind !== "string") throw new Error("a fault rule needs a kind");
    const id = ++this.seq;
    this.rules.push({ id, rule, seen: 0, fired: 0 });
    for (const fn of this.listeners) fn(rule, id);
    return id;
  }

  /**
   * Calls `fn` for every rule added from now on, so an owner of time-based faults (`scale` at
   * `atMs`) can arm a timer instead of polling. Returns the unsubscribe function.
   */
  onAdd(fn: (rule: FaultRule, id: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  remove(id: number): boolean {
    const n = this.rules.length;
    this.rules = this.rules.filter((r) => r.id !== id);
    return this.rules.length !== n;
  }

  /** Removes every rule of a kind, or all rules. */
  clear(kind?: string): void {
    this.rules = kind ? this.rules.filter((r) => r.rule.kind !== kind) : [];
  }

  list(): (FaultRule & { id: number; fired: number })[] {
    return this.rules.map((r) => ({ ...r.rule, id: r.id, fired: r.fired }));
  }

  /**
   * Returns the first rule of `kind` whose selecting attributes all equal (or, for RegExp-like
   * `match` strings, match) the event's attributes, honouring rate/nth/times. Counts as fired.
   */
  match(kind: string, attrs: Record<string, unknown> = {}): FaultRule | undefined {
    for (const a of this.rules) {
      if (a.rule.kind !== kind) continue;
      if (!selects(a.rule, attrs)) continue;
      a.seen++;
      if (a.rule.times !== undefined && a.fired >= a.rule.times) continue;
      if (a.rule.nth !== undefined && a.seen !== a.rule.nth) continue;
      if (a.rule.rate !== undefined && this.random() >= a.rule.rate) continue;
      a.fired++;
      this.log.push({ id: a.id, kind, at: this.now(), attrs });
      return a.rule;
    }
    return undefined;
  }

  /** Non-consuming check (for standing conditions such as "agent offline"). */
  active(kind: string, attrs: Record<string, unknown> = {}): FaultRule | undefined {
    return this.rules.find((a) => a.rule.kind === kind && selects(a.rule, attrs))?.rule;
  }

  beforeAction(service: string, action: string): void {
    const rule = this.match("api", { service, action });
    if (!rule) return;
    const code = rule.code ?? defaultThrottleCode(service);
    const status =
      rule.status ??
      (code === "RequestLimitExceeded" ? 503 : /^(InternalError|InternalFailure|ServiceUnavailable)$/.test(code) ? 500 : 400);
    throw new AwsError(code, rule.message ?? (status >= 500 ? "An internal error has occurred" : "Rate exceeded"), status);
  }
}

function selects(rule: FaultRule, attrs: Record<string, unknown>): boolean {
  for (const [k, v] of Object.entries(rule)) {
    if (CONTROL_KEYS.has(k) || v === undefined) continue;
    const actual = attrs[k];
    if (k === "match") {
      if (typeof actual !== "string" || !new RegExp(String(v)).test(actual)) return false;
      continue;
    }
    if (actual === undefined) continue; // the event does not carry it: the rule is not narrowed by it
    if (Array.isArray(v) ? !v.includes(actual) : v !== actual) return false;
  }
  return true;
}

/** The throttling code each service returns (reference §1.6). */
export function defaultThrottleCode(service: string): string {
  switch (service) {
    case "ec2":
      return "RequestLimitExceeded";
    case "autoscaling":
    case "elasticloadbalancing":
      return "Throttling";
    default:
      return "ThrottlingException";
  }
}
