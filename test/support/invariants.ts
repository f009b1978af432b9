/**
 * The safety invariants of ARCHITECTURE.md §2, checked continuously against the simulated cloud.
 *
 * Every invariant holds per unit of deployment, the (service, environment) the monitor is started
 * for (`{service, environment?}`; default the service's default environment): its target groups,
 * its groups and instances (by `kiln:environment`, a builder by its execution's input), its
 * executions (an abort by its target's). Two environments deploying at once are two units, each
 * watched by its own monitor.
 *
 * `InvariantMonitor.start(cloud, {service})` arms a timer on the cloud's clock that samples the
 * world every simulated second (default) and records every violation it sees; `finish()` adds the
 * end-state checks of I5 (nothing kiln made is left behind) and stops the timer. It reads the
 * backends in process (no API calls while sampling), so sampling is cheap and never perturbs what
 * it measures: no request counts against throttling faults, no call observer sees it.
 *
 *   I1 every listener weight > 0 points to a target group with ≥ 1 healthy target;
 *   I2 healthy serving capacity (healthy targets of groups with weight > 0) ≥ the baseline × the
 *      service's minimum-healthy percentage (baseline: the serving healthy count when the monitor
 *      started, or `baseline`);
 *   I3 no instance takes traffic (healthy in a weighted target group) before a smoke test and a
 *      service-in succeeded on it through SSM, and its in-service marker is present;
 *   I4 a fleet is not scaled down or serviced out while its target group takes traffic, nor
 *      before another target group holds all the weight with healthy targets;
 *   I5 every instance and Auto Scaling group of the service carries `kiln:service`,
 *      `kiln:execution` and `kiln:role`; at the end every such group is serving, or retired within
 *      its window, no builder is left, every kiln AMI is tagged, every launch-template version kiln
 *      made is used by a group;
 *   I6 at most one execution (deploy, abort, rollback) of the unit changes the fleet at a time;
 *      a failed deployment keeps the fleet until an abort of it starts or it is redriven.
 *   I7 monotonic deploys, for the monitored (service, environment): a fleet that starts taking
 *      traffic serves the live commit, or was made by the newest started request (kiln's own queue
 *      number `seq` in the execution input, never clocks) and not by one older than the request now
 *      live, or an operator named its commit (`kiln deploy --commit`, a rollback), or it is the
 *      previous fleet a failing/aborted deployment hands traffic back to. A redrive, a late
 *      redelivery or a lost lock never puts an older commit on traffic.
 *
 * Used by the end-to-end tests and by the scenario runner (`test/scenarios/`).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import {
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import { defaultEnvironment, loadConfig, type ServiceConfig, serviceConfig } from "../../lib/config/index.ts";
import type { TimerHandle } from "../../lib/clock.ts";
import type { Backend, Cloud } from "../../local/cloud/cloud.ts";
import type { Ec2Api, SimInstance } from "../../local/cloud/contracts.ts";
import { parseInput } from "../../lib/ops/target.ts";
import { statesBackend } from "../../local/states/api.ts";

export type InvariantId = "I1" | "I2" | "I3" | "I4" | "I5" | "I6" | "I7";

export interface Violation {
  invariant: InvariantId;
  /** Simulated time of the sample, ISO. */
  at: string;
  message: string;
  detail?: Record<string, unknown>;
}

export interface InvariantOptions {
  service: string;
  /** Environment whose live commit I7 follows (default: the service's default environment). */
  environment?: string;
  /** Sampling period on the cloud clock (default 1000 ms: every simulated second). */
  everyMs?: number;
  /** Pre-deploy healthy serving count for I2 (default: what the first sample sees). */
  baseline?: number;
  /** Overrides the service's `minHealthyPercent` (kiln.config.yaml). */
  minHealthyPercent?: number;
  /** Target group names or ARNs of the service (default: the config's `targetGroups`). */
  targetGroups?: string[];
  /** Recognises a script that smoke-tests and services an instance in (default: from the config's scripts). */
  clearsForTraffic?: (script: string) => boolean;
  /** Path of kiln.config.yaml (default: the project's). */
  configFile?: string;
  /** Keep at most this many violations per invariant (default 50): a broken run stays readable. */
  maxPerInvariant?: number;
}

/** What one sample saw (the last one is kept for messages and tests). */
export interface Sample {
  at: number;
  weights: { targetGroup: string; weight: number; healthy: number }[];
  servingHealthy: number;
  activeExecutions: string[];
}

// Structural views of backend internals this monitor reads (kept minimal on purpose).
interface ElbTarget {
  id: string;
  state: string;
}
interface ElbTargetGroup {
  arn: string;
  name: string;
  targets: Map<string, ElbTarget>;
}
interface ElbRule {
  actions: { Type: string; TargetGroups?: { TargetGroupArn: string; Weight: number }[] }[];
}
interface ElbListener {
  arn: string;
  defaultRule: ElbRule;
  rules: ElbRule[];
}
interface ElbView {
  tgs: Map<string, ElbTargetGroup>;
  listeners: Map<string, ElbListener>;
}
interface AsgInstanceView {
  id: string;
  state: string;
}
interface AsgGroupView {
  name: string;
  desired: number;
  minSize: number;
  maxSize: number;
  deleting?: boolean;
  tags: Map<string, { Value: string }>;
  attachments: Map<string, { identifier: string }>;
  instances: Map<string, AsgInstanceView>;
  launchTemplate?: { LaunchTemplateId: string; Version?: string };
  suspended: Map<string, string>;
}
interface AsgView {
  groups: Map<string, AsgGroupView>;
}
interface SsmCommandView {
  id: string;
  script: string;
  invocations: { instanceId: string; status: string }[];
}
interface SsmView {
  runCommand: { all(): SsmCommandView[] };
}

const KILN_REQUIRED_TAGS = ["kiln:service", "kiln:execution", "kiln:role"] as const;
const IN_SERVICE_MARKER = "var/lib/sample-app/in-service";
const TERMINAL_INVOCATION = new Set([
  "Success",
  "Failed",
  "TimedOut",
  "Cancelled",
  "DeliveryTimedOut",
  "Undeliverable",
  "Terminated",
  "InvalidPlatform",
  "AccessDenied",
]);

/** Last non-empty, non-`set` line of a script: what identifies it inside the command kiln sends. */
function signature(script: string): string {
  const lines = script
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#") && !l.startsWith("set "));
  return lines.at(-1) ?? script.trim();
}

export class InvariantMonitor {
  readonly violations: Violation[] = [];
  samples = 0;
  last?: Sample;
  baseline?: number;
  readonly minHealthyPercent: number;

  private timer?: TimerHandle;
  private stopped = false;
  private readonly cfg: ServiceConfig;
  private readonly tgRefs: string[];
  private readonly clears: (script: string) => boolean;
  /** Instances a successful smoke test + service-in cleared for traffic. */
  private readonly cleared = new Set<string>();
  private readonly scannedCommands = new Set<string>();
  private readonly pendingCommands = new Set<string>();
  /** Last seen desired capacity per group, and in-service marker per instance. */
  private readonly lastDesired = new Map<string, number>();
  private readonly lastMarker = new Map<string, boolean>();
  private readonly checkedTags = new Set<string>();
  private readonly reported = new Set<string>();
  /** Executions known to have reached a fleet-changing state. */
  private readonly fleetActive = new Set<string>();
  /** I7: the environment followed, its live commit and group, the request number that made it live, groups weighted at the last sample. */
  readonly environment: string;
  private readonly defaultEnv: string;
  live?: { commit: string; group: string; seq?: number };
  private previousLiveGroup?: string;
  private weightedGroups = new Set<string>();

  private constructor(
    readonly cloud: Cloud,
    readonly opts: InvariantOptions,
  ) {
    const config = loadConfig(opts.configFile);
    this.defaultEnv = defaultEnvironment(serviceConfig(config, opts.service), opts.service);
    this.environment = opts.environment ?? this.defaultEnv;
    this.cfg = serviceConfig(config, opts.service, this.environment);
    this.minHealthyPercent = opts.minHealthyPercent ?? this.cfg.minHealthyPercent;
    this.tgRefs = opts.targetGroups ?? [...this.cfg.targetGroups];
    this.baseline = opts.baseline;
    const smoke = signature(this.cfg.scripts.smokeTest);
    const serviceIn = signature(this.cfg.scripts.serviceIn);
    this.clears =
      opts.clearsForTraffic ?? ((s) => s.includes(smoke) && s.includes(serviceIn) && s.indexOf(smoke) < s.lastIndexOf(serviceIn));
  }

  /** Starts sampling now and then every `everyMs` of simulated time. */
  static start(cloud: Cloud, opts: InvariantOptions): InvariantMonitor {
    const m = new InvariantMonitor(cloud, opts);
    m.sample();
    m.arm();
    return m;
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.cloud.clock.setTimeout(() => {
      try {
        this.sample();
      } finally {
        this.arm();
      }
    }, this.opts.everyMs ?? 1000);
  }

  /** Stops sampling (idempotent). */
  stop(): void {
    this.stopped = true;
    this.cloud.clock.clearTimeout(this.timer);
  }

  /** Violations of one invariant (or all). */
  of(id?: InvariantId): Violation[] {
    return id ? this.violations.filter((v) => v.invariant === id) : [...this.violations];
  }

  /** A readable list of the violations (empty string when none). */
  report(): string {
    return this.violations
      .map((v) => `${v.at} ${v.invariant} ${v.message}${v.detail ? ` ${JSON.stringify(v.detail)}` : ""}`)
      .join("\n");
  }

  /** Throws with the list of violations, if any. */
  assertHolds(): void {
    if (this.violations.length > 0) throw new Error(`${this.violations.length} invariant violation(s):\n${this.report()}`);
  }

  private record(invariant: InvariantId, message: string, detail?: Record<string, unknown>, key?: string): void {
    // A standing condition is reported once (per key), not once per second.
    if (key) {
      if (this.reported.has(key)) return;
      this.reported.add(key);
    }
    const max = this.opts.maxPerInvariant ?? 50;
    if (this.violations.filter((v) => v.invariant === invariant).length >= max) return;
    this.violations.push({
      invariant,
      at: new Date(this.cloud.clock.now()).toISOString(),
      message,
      ...(detail ? { detail } : {}),
    });
  }

  private get elb(): ElbView {
    return this.cloud.backend<Backend>("elasticloadbalancing") as unknown as ElbView;
  }

  private get asg(): AsgView {
    // Registered as `{definition, state, snapshot, stop}`; the groups live on `state`.
    return (this.cloud.backend<Backend>("autoscaling") as unknown as { state: AsgView }).state;
  }

  private get ec2(): Ec2Api {
    return this.cloud.backend<Ec2Api>("ec2");
  }

  private serviceTargetGroups(): ElbTargetGroup[] {
    const out: ElbTargetGroup[] = [];
    for (const tg of this.elb.tgs.values()) if (this.tgRefs.includes(tg.name) || this.tgRefs.includes(tg.arn)) out.push(tg);
    return out;
  }

  /** Weight per target group arn over every forward action that mentions one of the service's groups (max over actions). */
  private weights(tgArns: Set<string>): Map<string, number> {
    const out = new Map<string, number>();
    for (const l of this.elb.listeners.values()) {
      for (const rule of [l.defaultRule, ...l.rules]) {
        for (const a of rule.actions) {
          if (a.Type !== "forward" || !a.TargetGroups?.some((t) => tgArns.has(t.TargetGroupArn))) continue;
          for (const t of a.TargetGroups) out.set(t.TargetGroupArn, Math.max(out.get(t.TargetGroupArn) ?? 0, t.Weight));
        }
      }
    }
    return out;
  }

  /** Every group of the service, whichever environment (for what is shared: launch templates, membership). */
  private allServiceGroups(): AsgGroupView[] {
    return [...this.asg.groups.values()].filter((g) => g.tags.get("kiln:service")?.Value === this.opts.service && !g.deleting);
  }

  /** The groups of the monitored (service, environment): each environment is its own unit (I1–I6 hold per unit). */
  private serviceGroups(): AsgGroupView[] {
    return this.allServiceGroups().filter((g) => this.envOf(g.tags) === this.environment);
  }

  /**
   * The environment an instance belongs to: its own tag, else its maker's (a builder is tagged
   * with its execution, whose input names the environment), else the service's default.
   */
  private envOfInstance(inst: { tags: Map<string, string> }): string {
    const own = inst.tags.get("kiln:environment");
    if (own) return own;
    const exec = inst.tags.get("kiln:execution");
    return (exec && this.executionEnvironment(exec)) || this.defaultEnv;
  }

  private readonly envByExecution = new Map<string, string>();

  /** The environment of an execution, by name or ARN: its input's, or for an abort, its target's. */
  private executionEnvironment(nameOrArn: string): string | undefined {
    const known = this.envByExecution.get(nameOrArn);
    if (known) return known;
    let states: ReturnType<typeof statesBackend>;
    try {
      states = statesBackend(this.cloud);
    } catch {
      return undefined;
    }
    const e = states.listAll().find((x) => x.executionArn === nameOrArn || x.name === nameOrArn);
    if (!e) return undefined;
    const v = parseInput(e.input) ?? {};
    let env = typeof v.environment === "string" ? v.environment : undefined;
    if (!env) {
      const target = typeof v.executionArn === "string" ? v.executionArn : this.abortTarget(e.executionArn, states);
      if (target && target !== e.executionArn) env = this.executionEnvironment(target);
    }
    const out = env ?? this.defaultEnv;
    this.envByExecution.set(e.executionArn, out);
    this.envByExecution.set(e.name, out);
    return out;
  }

  private hasMarker(i: SimInstance | undefined): boolean {
    return i?.rootDir ? existsSync(path.join(i.rootDir, IN_SERVICE_MARKER)) : false;
  }

  private scanCommands(): void {
    const ssm = this.cloud.backend<Backend>("ssm") as unknown as SsmView;
    for (const c of ssm.runCommand.all()) {
      if (this.scannedCommands.has(c.id)) continue;
      if (!this.clears(c.script)) {
        this.scannedCommands.add(c.id);
        continue;
      }
      let open = false;
      for (const inv of c.invocations) {
        if (inv.status === "Success") this.cleared.add(inv.instanceId);
        else if (!TERMINAL_INVOCATION.has(inv.status)) open = true;
      }
      if (!open) this.scannedCommands.add(c.id);
    }
  }

  /** One sample of every continuous invariant (I1–I4, I5 tags, I6). Synchronous. */
  sample(): void {
    this.samples++;
    const now = this.cloud.clock.now();
    const tgs = this.serviceTargetGroups();
    const tgByArn = new Map(tgs.map((t) => [t.arn, t]));
    const weights = this.weights(new Set(tgByArn.keys()));
    const healthyOf = (arn: string) => [...(this.elb.tgs.get(arn)?.targets.values() ?? [])].filter((t) => t.state === "healthy");
    this.scanCommands();

    // I1 and I3: every weighted group has healthy targets, each of them cleared and in service.
    let servingHealthy = 0;
    const sampleWeights: Sample["weights"] = [];
    for (const [arn, weight] of weights) {
      const healthy = healthyOf(arn);
      const name = this.elb.tgs.get(arn)?.name ?? arn;
      sampleWeights.push({ targetGroup: name, weight, healthy: healthy.length });
      if (weight <= 0) continue;
      servingHealthy += healthy.length;
      if (healthy.length === 0)
        this.record("I1", `target group ${name} has weight ${weight} and no healthy target`, {
          weights: Object.fromEntries(weights),
        });
      for (const t of healthy) {
        const inst = this.ec2.instance(t.id);
        if (!this.cleared.has(t.id)) {
          this.record(
            "I3",
            `instance ${t.id} takes traffic in ${name} (weight ${weight}) without a successful smoke test + service-in`,
            { instance: t.id, tags: inst ? Object.fromEntries(inst.tags) : undefined },
            `I3:clear:${t.id}`,
          );
        } else if (!this.hasMarker(inst)) {
          this.record(
            "I3",
            `instance ${t.id} takes traffic in ${name} without its in-service marker`,
            { instance: t.id },
            `I3:marker:${t.id}`,
          );
        }
      }
    }

    // I2: healthy serving capacity never below the floor.
    if (this.baseline === undefined) this.baseline = servingHealthy;
    const floor = Math.ceil((this.baseline * this.minHealthyPercent) / 100);
    if (servingHealthy < floor) {
      this.record(
        "I2",
        `healthy serving capacity ${servingHealthy} below ${floor} (${this.minHealthyPercent}% of ${this.baseline})`,
        { weights: sampleWeights },
      );
    }

    // I4: a fleet taking traffic is not scaled down or serviced out, and never before another group holds it all, healthy.
    const weighted = (g: AsgGroupView) => [...g.attachments.values()].some((a) => (weights.get(a.identifier) ?? 0) > 0);
    const othersHoldAll = (g: AsgGroupView) => {
      const mine = new Set([...g.attachments.values()].map((a) => a.identifier));
      const carrying = [...weights].filter(([, w]) => w > 0);
      return (
        carrying.length > 0 && carrying.every(([arn]) => !mine.has(arn)) && carrying.every(([arn]) => healthyOf(arn).length > 0)
      );
    };
    const groups = this.serviceGroups();
    const seen = new Set<string>();
    for (const g of groups) {
      seen.add(g.name);
      const before = this.lastDesired.get(g.name);
      if (before !== undefined && g.desired < before && (weighted(g) || !othersHoldAll(g))) {
        this.record(
          "I4",
          `group ${g.name} scaled down ${before} → ${g.desired} while it ${weighted(g) ? "takes traffic" : "is the only healthy fleet"}`,
          { weights: sampleWeights },
        );
      }
      this.lastDesired.set(g.name, g.desired);
      for (const i of g.instances.values()) {
        const inst = this.ec2.instance(i.id);
        if (!inst || inst.state !== "running") continue;
        const marker = this.hasMarker(inst);
        const was = this.lastMarker.get(i.id);
        this.lastMarker.set(i.id, marker);
        if (was === true && !marker && (weighted(g) || !othersHoldAll(g))) {
          this.record(
            "I4",
            `instance ${i.id} of ${g.name} serviced out while ${weighted(g) ? "its target group takes traffic" : "no other fleet holds all traffic healthy"}`,
            { weights: sampleWeights },
          );
        }
      }
    }
    for (const [name, before] of this.lastDesired) {
      if (seen.has(name)) continue;
      this.lastDesired.delete(name);
      const g = this.asg.groups.get(name);
      if (before > 0 && g && weighted(g))
        this.record("I4", `group ${name} deleted while it takes traffic`, { weights: sampleWeights });
    }

    // I5 (continuous part): tags on every group and instance of the service.
    for (const g of groups) {
      if (this.checkedTags.has(g.name)) continue;
      this.checkedTags.add(g.name);
      const missing = KILN_REQUIRED_TAGS.filter((k) => !g.tags.has(k));
      if (missing.length > 0) this.record("I5", `group ${g.name} lacks ${missing.join(", ")}`);
    }
    for (const inst of this.ec2.instances()) {
      if (this.checkedTags.has(inst.id) || inst.state === "terminated") continue;
      const inGroup = groups.some((g) => g.instances.has(inst.id));
      if (!inGroup && (inst.tags.get("kiln:service") !== this.opts.service || this.envOfInstance(inst) !== this.environment))
        continue;
      this.checkedTags.add(inst.id);
      const missing = KILN_REQUIRED_TAGS.filter((k) => !inst.tags.has(k));
      if (missing.length > 0)
        this.record("I5", `instance ${inst.id} lacks ${missing.join(", ")}`, { tags: Object.fromEntries(inst.tags) });
    }

    // I6: one execution changes the fleet at a time.
    const active = this.activeExecutions();
    if (active.length > 1)
      this.record(
        "I6",
        `${active.length} executions change ${this.opts.service}/${this.environment}'s fleet at once: ${active.join(", ")}`,
        undefined,
        `I6:${active.join(",")}`,
      );

    // I7: a fleet that starts taking traffic is the newest request's, or one an operator named.
    this.checkMonotonic(groups, weights);

    this.last = { at: now, weights: sampleWeights, servingHealthy, activeExecutions: active };
  }

  private envOf(tags: Map<string, { Value: string }>): string {
    return tags.get("kiln:environment")?.Value ?? this.defaultEnv;
  }

  /** An execution input's fields I7 reads (its environment defaults as kiln's do). */
  private requestOf(input: string): { service?: string; environment: string; trigger?: string; seq?: number } {
    const v = parseInput(input) ?? {};
    return {
      ...(typeof v.service === "string" ? { service: v.service } : {}),
      environment: typeof v.environment === "string" ? v.environment : this.defaultEnv,
      ...(typeof v.trigger === "string" ? { trigger: v.trigger } : {}),
      ...(typeof v.seq === "number" ? { seq: v.seq } : {}),
    };
  }

  private checkMonotonic(groups: AsgGroupView[], weights: Map<string, number>): void {
    const mine = groups.filter((g) => this.envOf(g.tags) === this.environment);
    const weightOf = (g: AsgGroupView) => Math.max(0, ...[...g.attachments.values()].map((a) => weights.get(a.identifier) ?? 0));
    const weighted = mine.filter((g) => weightOf(g) > 0);
    const total = [...weights.values()].reduce((a, b) => a + b, 0);
    // The executions are read only when a fleet starts taking traffic or becomes the live one, not
    // every sampled second.
    const fresh = weighted.filter((g) => !this.weightedGroups.has(g.name));
    const sole = weighted.length === 1 && total > 0 && weightOf(weighted[0]!) >= total ? weighted[0] : undefined;
    this.weightedGroups = new Set(weighted.map((g) => g.name));
    if ((fresh.length === 0 || !this.live) && (!sole || sole.name === this.live?.group)) return;
    let states: ReturnType<typeof statesBackend> | undefined;
    try {
      states = statesBackend(this.cloud);
    } catch {
      states = undefined;
    }
    const all = (states?.listAll() ?? [])
      .map((e) => ({ e, input: this.requestOf(e.input) }))
      .filter((x) => x.input.service === this.opts.service && x.input.environment === this.environment);
    const deploys = all.filter((x) => /-deploy(?::|$)/.test(x.e.stateMachineArn));
    const newestStarted = Math.max(0, ...deploys.map((x) => x.input.seq ?? 0));
    const operatorFixing = all.some((x) => /-(?:rollback|abort)(?::|$)/.test(x.e.stateMachineArn) && x.e.status === "RUNNING");
    for (const g of fresh) {
      if (!this.live) break;
      const commit = g.tags.get("kiln:commit")?.Value;
      const execName = g.tags.get("kiln:execution")?.Value;
      if (!commit || commit === this.live.commit || execName === "seed") continue;
      if (operatorFixing) continue; // an abort or rollback puts back a fleet the operator asked for
      const made = deploys.find((x) => x.e.name === execName);
      // Handing traffic back to the fleet that served before a deployment that did not succeed.
      const liveMaker = deploys.find(
        (x) => x.e.name === this.asg.groups.get(this.live!.group)?.tags.get("kiln:execution")?.Value,
      );
      if (g.name === this.previousLiveGroup && liveMaker && liveMaker.e.status !== "SUCCEEDED") continue;
      if (made?.input.trigger === "operator") continue; // kiln deploy --commit: the operator named it
      const seq = made?.input.seq;
      const why = !made
        ? `no deploy execution of ${this.opts.service}/${this.environment} named ${execName} made it`
        : seq === undefined
          ? `${execName} carries no queue number (started around kiln's queue)`
          : seq < newestStarted
            ? `${execName} is request #${seq}, older than request #${newestStarted} which already started`
            : this.live.seq !== undefined && seq < this.live.seq
              ? `${execName} is request #${seq}, older than request #${this.live.seq} whose commit is live`
              : undefined;
      if (why) {
        this.record(
          "I7",
          `${this.opts.service}/${this.environment}: group ${g.name} (commit ${commit.slice(0, 12)}) takes traffic (weight ${weightOf(g)}) over live commit ${this.live.commit.slice(0, 12)}: ${why}`,
          { group: g.name, commit, live: this.live.commit, execution: execName, seq, newestStarted },
          `I7:${g.name}:${this.live.commit}`,
        );
      }
    }
    // The live fleet: the one group holding all the weight.
    if (sole) {
      const g = sole;
      const commit = g.tags.get("kiln:commit")?.Value;
      if (commit && g.name !== this.live?.group) {
        const made = deploys.find((x) => x.e.name === g.tags.get("kiln:execution")?.Value);
        if (this.live) this.previousLiveGroup = this.live.group;
        this.live = { commit, group: g.name, ...(made?.input.seq !== undefined ? { seq: made.input.seq } : {}) };
      }
    }
  }

  /**
   * Executions of the service that hold the fleet now: a deployment from CreateGreenFleet on until
   * it succeeds (a failed one keeps it until an abort of it starts or it is redriven), an abort or
   * rollback once it took the lock, until it ends (a failed one until a later one succeeds).
   */
  private activeExecutions(): string[] {
    let states;
    try {
      states = statesBackend(this.cloud);
    } catch {
      return [];
    }
    const all = states
      .listAll()
      .filter(
        (e) =>
          parseInput(e.input)?.service === this.opts.service && this.executionEnvironment(e.executionArn) === this.environment,
      );
    const kind = (arn: string) =>
      /-abort(?::|$)/.test(arn)
        ? "abort"
        : /-rollback(?::|$)/.test(arn)
          ? "rollback"
          : /-deploy(?::|$)/.test(arn)
            ? "deploy"
            : "other";
    const abortedBy = new Map<string, number>();
    for (const e of all) {
      if (kind(e.stateMachineArn) !== "abort") continue;
      const target = (JSON.parse(e.input) as { executionArn?: string }).executionArn ?? this.abortTarget(e.executionArn, states);
      if (target) abortedBy.set(target, Math.min(abortedBy.get(target) ?? Infinity, e.startDate.getTime()));
    }
    const out: string[] = [];
    for (const e of all) {
      const k = kind(e.stateMachineArn);
      if (k === "other") continue;
      if (!this.fleetActive.has(e.executionArn)) {
        const events = states.history(e.executionArn);
        const touched =
          k === "deploy"
            ? events.some(
                (h) =>
                  h.type.endsWith("StateEntered") &&
                  (h.stateEnteredEventDetails as { name?: string } | undefined)?.name === "CreateGreenFleet",
              )
            : events.some(
                (h) =>
                  h.type.endsWith("StateExited") &&
                  (h.stateExitedEventDetails as { name?: string } | undefined)?.name === "AcquireLock",
              );
        if (!touched) continue;
        this.fleetActive.add(e.executionArn);
      }
      if (e.status === "SUCCEEDED") continue;
      if (e.status === "RUNNING") {
        if (k === "deploy" && abortedBy.has(e.executionArn)) continue; // being stopped and compensated by its abort
        out.push(e.executionArn);
        continue;
      }
      // Closed without success.
      if (k === "deploy") {
        if (!abortedBy.has(e.executionArn)) out.push(e.executionArn);
      } else {
        const later = all.some(
          (o) => o.stateMachineArn === e.stateMachineArn && o.status === "SUCCEEDED" && o.startDate > e.startDate,
        );
        if (!later) out.push(e.executionArn);
      }
    }
    return out;
  }

  private readonly abortTargets = new Map<string, string>();

  /** The deployment an abort started without `executionArn` found (PrepareAbort's output names it). */
  private abortTarget(abortArn: string, states: ReturnType<typeof statesBackend>): string | undefined {
    const known = this.abortTargets.get(abortArn);
    if (known) return known;
    for (const h of states.history(abortArn)) {
      // The output is a JSON string inside the event: its quotes come escaped.
      const m = /\\*"target\\*":\{\\*"executionArn\\*":\\*"([^"\\]+)/.exec(JSON.stringify(h));
      if (m?.[1]) {
        this.abortTargets.set(abortArn, m[1]);
        return m[1];
      }
    }
    return undefined;
  }

  /**
   * Stops sampling and checks the end state (I5): every group of the service serves or is retired
   * within its window; no builder is left; every kiln AMI carries the tags; every launch-template
   * version kiln made is used by a group. Returns all violations.
   */
  async finish(): Promise<Violation[]> {
    this.sample();
    this.stop();
    const now = this.cloud.clock.now();
    const tgs = this.serviceTargetGroups();
    const weights = this.weights(new Set(tgs.map((t) => t.arn)));
    for (const g of this.serviceGroups()) {
      const role = g.tags.get("kiln:role")?.Value;
      const serving = [...g.attachments.values()].some((a) => (weights.get(a.identifier) ?? 0) > 0);
      if (role === "retired") {
        const until = Date.parse(g.tags.get("kiln:delete-after")?.Value ?? "");
        if (!Number.isFinite(until)) this.record("I5", `retired group ${g.name} has no kiln:delete-after`);
        else if (until < now && g.instances.size > 0)
          this.record("I5", `retired group ${g.name} outlived its window (${new Date(until).toISOString()}) with instances`);
        if (serving) this.record("I5", `retired group ${g.name} still takes traffic`);
      } else if (!serving) {
        this.record("I5", `group ${g.name} (role ${role}) neither serves nor is retired: a stray fleet`, {
          desired: g.desired,
          instances: g.instances.size,
        });
      }
      if (g.suspended.size > 0)
        this.record("I5", `group ${g.name} still has suspended processes: ${[...g.suspended.keys()].join(", ")}`);
    }
    for (const inst of this.ec2.instances()) {
      if (inst.state === "terminated" || inst.state === "shutting-down") continue;
      if (inst.tags.get("kiln:service") !== this.opts.service || this.envOfInstance(inst) !== this.environment) continue;
      if (inst.tags.get("kiln:role") === "builder") this.record("I5", `builder ${inst.id} left ${inst.state}`);
      else if (!this.allServiceGroups().some((g) => g.instances.has(inst.id)))
        this.record("I5", `instance ${inst.id} (${inst.tags.get("kiln:role")}) belongs to no group`);
    }
    const ec2 = new EC2Client(this.cloud.clientConfig());
    const images = await ec2.send(
      new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "tag:kiln:service", Values: [this.opts.service] }] }),
    );
    for (const img of images.Images ?? []) {
      const keys = new Set((img.Tags ?? []).map((t) => t.Key));
      const missing = KILN_REQUIRED_TAGS.filter((k) => !keys.has(k));
      if (missing.length > 0) this.record("I5", `AMI ${img.ImageId} lacks ${missing.join(", ")}`);
      if (img.State === "failed") this.record("I5", `AMI ${img.ImageId} left in state failed`);
    }
    const lts = await ec2.send(
      new DescribeLaunchTemplatesCommand({ Filters: [{ Name: "tag:kiln:service", Values: [this.opts.service] }] }),
    );
    const used = new Set(
      this.allServiceGroups().map((g) => `${g.launchTemplate?.LaunchTemplateId}:${g.launchTemplate?.Version}`),
    );
    for (const lt of lts.LaunchTemplates ?? []) {
      const versions = await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lt.LaunchTemplateId }));
      for (const v of versions.LaunchTemplateVersions ?? []) {
        if (!v.VersionDescription?.startsWith("kiln ")) continue; // versions kiln made say which execution made them
        if (!used.has(`${lt.LaunchTemplateId}:${v.VersionNumber}`)) {
          this.record(
            "I5",
            `launch template ${lt.LaunchTemplateName} version ${v.VersionNumber} (${v.VersionDescription}) is used by no group`,
          );
        }
      }
    }
    return this.of();
  }
}

/**
 * The end state after every retention window (issue 15): advances the cloud's clock past the
 * latest `kiln:delete-after` of `service`'s groups plus `extraMs` (the janitor's age limit), runs
 * `runJanitor`, and returns what is still left behind — retired groups, groups that are neither
 * serving nor retired, and launch-template versions kiln made that no group uses. Additive: the
 * monitor's `finish()` keeps accepting retired fleets inside their window.
 */
export async function leftAfterWindows(
  cloud: Cloud,
  service: string,
  runJanitor: () => Promise<unknown>,
  extraMs: number,
): Promise<string[]> {
  const { AutoScalingClient, DescribeAutoScalingGroupsCommand } = await import("@aws-sdk/client-auto-scaling");
  const autoscaling = new AutoScalingClient(cloud.clientConfig());
  const ec2 = new EC2Client(cloud.clientConfig());
  const groups = async () =>
    (await autoscaling.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: "tag:kiln:service", Values: [service] }] })))
      .AutoScalingGroups ?? [];
  const tag = (g: { Tags?: { Key?: string; Value?: string }[] }, k: string) => g.Tags?.find((t) => t.Key === k)?.Value;
  const latest = Math.max(cloud.clock.now(), ...(await groups()).map((g) => Date.parse(tag(g, "kiln:delete-after") ?? "") || 0));
  await cloud.clock.sleep(latest - cloud.clock.now() + extraMs + 1_000);
  await runJanitor();
  const left: string[] = [];
  const live = (await groups()).filter((g) => g.Status !== "Delete in progress");
  const used = new Set<string>();
  for (const g of live) {
    const lt = g.LaunchTemplate;
    used.add(`${lt?.LaunchTemplateId}:${lt?.Version}`);
    if (tag(g, "kiln:role") === "retired") left.push(`retired group ${g.AutoScalingGroupName} outlived its window`);
    else if ((g.DesiredCapacity ?? 0) === 0)
      left.push(`group ${g.AutoScalingGroupName} (role ${tag(g, "kiln:role")}) serves nothing`);
  }
  const lts = await ec2.send(new DescribeLaunchTemplatesCommand({ Filters: [{ Name: "tag:kiln:service", Values: [service] }] }));
  for (const lt of lts.LaunchTemplates ?? []) {
    const versions = await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lt.LaunchTemplateId }));
    for (const v of versions.LaunchTemplateVersions ?? [])
      if (v.VersionDescription?.startsWith("kiln ") && !used.has(`${lt.LaunchTemplateId}:${v.VersionNumber}`))
        left.push(
          `launch template ${lt.LaunchTemplateName} version ${v.VersionNumber} (${v.VersionDescription}) is used by no group`,
        );
  }
  return left;
}
