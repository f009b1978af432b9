/**
 * Behaviour over time of the simulated EC2 Auto Scaling service: one reconcile loop per group on the
 * cloud clock that converges to desired capacity, the instance lifecycle (hooks, target-group
 * registration, draining), health checks and replacement, scaling activities, and the `scale` fault.
 *
 * Timings come from `cloud.setting("autoscaling.<key>", default)`; see {@link DEFAULTS}.
 */
import type { TimerHandle } from "../../../../lib/clock.ts";
import type { Cloud } from "../../cloud.ts";
import type { Ec2Api, ElbApi, InstanceStateEvent } from "../../contracts.ts";
import type { FaultRule } from "../../faults.ts";
import { AwsError } from "../../protocol/errors.ts";
import {
  type Activity,
  type AsgInstance,
  type Attachment,
  type Group,
  isSuspended,
  LAUNCHING,
  LIVE_STATES,
  type LifecycleAction,
  type LifecycleResult,
  type ResolvedTemplate,
  TERMINATING,
  TERMINATING_STATES,
  type Transition,
  usesElbHealth,
} from "./model.ts";

/** Default settings (override with `cloud.setting("autoscaling.<key>")`). */
export const DEFAULTS = {
  /** Period of each group's reconcile loop (launch/terminate toward desired, health checks). */
  reconcileMs: 10_000,
  /** Safety poll while a flow waits on EC2 state (EC2 state events wake it sooner). */
  pollMs: 5_000,
  /** How long a `Terminated` instance stays listed in the group before it disappears. */
  terminatedVisibleMs: 0,
  /** Upper bound of the retry backoff after failed launches (doubles from `reconcileMs`). */
  launchBackoffMaxMs: 300_000,
  /** Activities kept per group name. */
  maxActivities: 1_000,
} as const;

/** AWS caps a lifecycle action at 48 h or 100 × the heartbeat timeout, whichever is smaller. */
const GLOBAL_TIMEOUT_CAP_S = 48 * 3600;

/** `2026-01-05T09:00:00Z`: activity causes quote times to the second. */
export function causeTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** Scale fault bookkeeping: when it is due, and whether it was applied. */
interface ScaleFault {
  dueAt: number;
  applied: boolean;
  timer?: TimerHandle;
}

export class AutoScalingBackend {
  readonly groups = new Map<string, Group>();
  /** Activities by group name, newest last (kept after deletion for IncludeDeletedGroups). */
  readonly activities = new Map<string, Activity[]>();
  private readonly byInstance = new Map<string, Group>();
  private readonly scaleFaults = new Map<number, ScaleFault>();
  private readonly unsubscribe: () => void;
  private readonly onInstanceState = (ev: InstanceStateEvent) => this.instanceChanged(ev);
  private stopped = false;

  constructor(readonly cloud: Cloud) {
    for (const r of cloud.faults.list()) this.armScaleFault(r, r.id);
    this.unsubscribe = cloud.faults.onAdd((rule, id) => this.armScaleFault(rule, id));
    cloud.bus.on("instance-state", this.onInstanceState);
  }

  setting(key: keyof typeof DEFAULTS): number {
    return Number(this.cloud.setting(`autoscaling.${key}`, DEFAULTS[key]));
  }

  /** A message whose exact AWS wording is unverified: overridable with `autoscaling.msg.<key>`, `{x}` placeholders. */
  message(key: string, dflt: string, vars: Record<string, string | number>): string {
    const tpl = String(this.cloud.setting(`autoscaling.msg.${key}`, dflt));
    return tpl.replace(/\{(\w+)\}/g, (m, k: string) => (vars[k] === undefined ? m : String(vars[k])));
  }

  ec2(): Ec2Api | undefined {
    return this.cloud.maybeBackend<Ec2Api>("ec2");
  }

  elb(): ElbApi | undefined {
    return this.cloud.maybeBackend<ElbApi>("elasticloadbalancing");
  }

  now(): number {
    return this.cloud.clock.now();
  }

  uuid(): string {
    const h = this.cloud.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }

  /** The group or AWS's ValidationError for an unknown name. */
  group(name: string): Group {
    const g = this.groups.get(name);
    if (!g) {
      throw new AwsError(
        "ValidationError",
        this.message("groupNotFound", "AutoScalingGroup name not found - AutoScalingGroup: {name} not found", { name }),
      );
    }
    return g;
  }

  groupOfInstance(id: string): Group | undefined {
    return this.byInstance.get(id);
  }

  // ---------------------------------------------------------------- group lifecycle

  /** Adds a freshly created group and starts its reconcile loop. */
  add(g: Group): void {
    this.groups.set(g.name, g);
    const loop = () => {
      if (this.groups.get(g.name) !== g) return;
      this.reconcile(g);
      if (this.groups.get(g.name) === g) g.timer = this.cloud.clock.setTimeout(loop, this.setting("reconcileMs"));
    };
    g.timer = this.cloud.clock.setTimeout(loop, this.setting("reconcileMs"));
    this.kick(g);
  }

  /** Reconciles the group soon (after the current API call has answered), coalescing repeated kicks. */
  kick(g: Group): void {
    if (g.kickTimer || this.stopped) return;
    g.kickTimer = this.cloud.clock.setTimeout(() => {
      g.kickTimer = undefined;
      if (this.groups.get(g.name) === g) this.reconcile(g);
    }, 0);
  }

  /** Starts a forced delete: every instance is taken out (draining, no hooks), then the group vanishes. */
  forceDelete(g: Group): void {
    g.deleting = true;
    const cause = `At ${causeTime(this.now())} an instance was taken out of service in response to a user request to delete the group.`;
    for (const inst of g.instances.values()) {
      if (TERMINATING_STATES.has(inst.state)) {
        // Outstanding terminate actions are dropped: the instance proceeds to termination.
        for (const a of [...inst.actions.values()]) a.settle("dropped");
        continue;
      }
      this.startTerminate(g, inst, cause, { skipHooks: true });
    }
    this.kick(g);
  }

  private remove(g: Group): void {
    this.cloud.clock.clearTimeout(g.timer);
    this.cloud.clock.clearTimeout(g.kickTimer);
    this.groups.delete(g.name);
    for (const id of g.instances.keys()) this.byInstance.delete(id);
  }

  // ---------------------------------------------------------------- reconcile

  /** One pass of the group's control loop. Synchronous: flows it starts continue on the clock. */
  reconcile(g: Group): void {
    if (this.stopped) return;
    if (g.deleting) {
      if (g.instances.size === 0) this.remove(g);
      return;
    }
    this.applyScaleFaults(g);
    this.updateAttachments(g);
    this.checkHealth(g);
    this.replaceUnhealthy(g);
    this.converge(g);
  }

  private live(g: Group): AsgInstance[] {
    return [...g.instances.values()].filter((i) => LIVE_STATES.has(i.state));
  }

  private converge(g: Group): void {
    const live = this.live(g);
    const holding = [...g.instances.values()].filter((i) => i.replacing && TERMINATING_STATES.has(i.state)).length;
    const t = causeTime(this.now());
    const prefix = g.lastCause ? `${g.lastCause}  ` : "";
    const missing = g.desired - live.length - holding;
    if (missing > 0 && !isSuspended(g, "Launch") && this.now() >= g.nextLaunchAt) {
      const from = live.length + holding;
      const cause = `${prefix}At ${t} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from ${from} to ${g.desired}.`;
      for (let i = 0; i < missing; i++) if (!this.launch(g, cause)) break;
      g.lastCause = undefined;
    }
    const excess = live.length - g.desired;
    if (excess > 0 && !isSuspended(g, "Terminate")) {
      for (const victim of this.chooseForTermination(g, live, excess)) {
        const cause = `${prefix}At ${t} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from ${live.length} to ${g.desired}.  At ${t} instance ${victim.id} was selected for termination.`;
        this.startTerminate(g, victim, cause);
      }
      g.lastCause = undefined;
    }
  }

  /**
   * Termination policy. `Default` (documented behaviour, simplified): balance AZs first (pick from
   * the AZ with the most instances), then prefer instances not on the group's current launch
   * template, then the oldest template version, then the oldest instance (standing in for "closest
   * to the next billing hour"). `OldestInstance`, `NewestInstance`, `OldestLaunchTemplate` and
   * `ClosestToNextInstanceHour` are honoured after the same AZ balancing. Protected instances are
   * never chosen.
   */
  chooseForTermination(g: Group, live: AsgInstance[], n: number): AsgInstance[] {
    const picked: AsgInstance[] = [];
    const currentId = g.launchTemplate?.LaunchTemplateId ?? this.mixedTemplateId(g);
    const policy = g.terminationPolicies[0] ?? "Default";
    const now = this.now();
    while (picked.length < n) {
      const remaining = live.filter((i) => !picked.includes(i));
      const pool = remaining.filter((i) => !i.protected);
      if (pool.length === 0) break;
      const perAz = new Map<string, number>();
      for (const i of remaining) perAz.set(i.az, (perAz.get(i.az) ?? 0) + 1);
      const busiest = Math.max(...pool.map((i) => perAz.get(i.az) ?? 0));
      const inAz = pool.filter((i) => (perAz.get(i.az) ?? 0) === busiest);
      const byAge = (a: AsgInstance, b: AsgInstance) => a.launchedAt - b.launchedAt || a.id.localeCompare(b.id);
      const byTemplate = (a: AsgInstance, b: AsgInstance) =>
        Number(b.template?.id !== currentId) - Number(a.template?.id !== currentId) ||
        (a.template?.version ?? 0) - (b.template?.version ?? 0);
      const hourLeft = (i: AsgInstance) => 3_600_000 - ((now - i.launchedAt) % 3_600_000);
      const order: Record<string, (a: AsgInstance, b: AsgInstance) => number> = {
        OldestInstance: byAge,
        NewestInstance: (a, b) => -byAge(a, b),
        OldestLaunchTemplate: (a, b) => byTemplate(a, b) || byAge(a, b),
        ClosestToNextInstanceHour: (a, b) => hourLeft(a) - hourLeft(b) || byAge(a, b),
        Default: (a, b) => byTemplate(a, b) || byAge(a, b),
      };
      inAz.sort(order[policy] ?? order.Default);
      picked.push(inAz[0]!);
    }
    return picked;
  }

  private mixedTemplateId(g: Group): string | undefined {
    const lt = (g.mixedInstancesPolicy?.LaunchTemplate as Record<string, unknown> | undefined)?.LaunchTemplateSpecification as
      Record<string, string> | undefined;
    return lt?.LaunchTemplateId;
  }

  // ---------------------------------------------------------------- health

  private checkHealth(g: Group): void {
    if (isSuspended(g, "HealthCheck")) return;
    const ec2 = this.ec2();
    const elb = this.elb();
    const now = this.now();
    for (const inst of g.instances.values()) {
      // Standby instances are not health-checked: their status stays frozen (reference §3.3).
      if (!LIVE_STATES.has(inst.state) || inst.health === "Unhealthy") continue;
      if (ec2) {
        const s = ec2.instance(inst.id)?.state;
        // EC2 status counts immediately, even inside the grace period.
        const ok = inst.state === "InService" ? s === "running" : s === "pending" || s === "running";
        if (!ok) {
          this.markUnhealthy(g, inst, "EC2");
          continue;
        }
      }
      if (inst.state !== "InService" || !usesElbHealth(g) || !elb) continue;
      if (now < (inst.inServiceAt ?? now) + g.healthCheckGracePeriodS * 1000) continue;
      for (const a of g.attachments.values()) {
        // ELB-based replacement only starts once the attachment is InService (reference §3.6).
        if (a.state !== "InService" || !inst.registeredWith.has(a.identifier)) continue;
        if (elb.targetHealth(a.identifier, inst.id) === "unhealthy") {
          this.markUnhealthy(g, inst, "ELB");
          break;
        }
      }
    }
  }

  private markUnhealthy(_g: Group, inst: AsgInstance, by: "EC2" | "ELB"): void {
    inst.health = "Unhealthy";
    inst.unhealthyBy = by;
  }

  /** ReplaceUnhealthy: terminate first, then launch (the slot is held until the old one is gone). */
  private replaceUnhealthy(g: Group): void {
    if (isSuspended(g, "ReplaceUnhealthy") || isSuspended(g, "Terminate")) return;
    for (const inst of this.live(g)) {
      if (inst.health !== "Unhealthy") continue;
      const why = {
        ELB: "an ELB system health check failure",
        EC2: "an EC2 instance status check failure",
        API: "a user health-check",
      }[inst.unhealthyBy ?? "EC2"];
      const cause = `At ${causeTime(this.now())} an instance was taken out of service in response to ${why}.`;
      this.startTerminate(g, inst, cause, { replacing: true });
    }
  }

  // ---------------------------------------------------------------- traffic sources

  private updateAttachments(g: Group): void {
    const elb = this.elb();
    if (!elb) return;
    for (const a of g.attachments.values()) {
      if (a.state !== "Added") continue;
      for (const inst of g.instances.values()) {
        if (inst.registeredWith.has(a.identifier) && elb.targetHealth(a.identifier, inst.id) === "healthy") {
          a.state = "InService";
          break;
        }
      }
    }
  }

  /** Attaches target groups and registers the instances already in service with them. */
  attach(g: Group, arns: string[], via: Attachment["via"]): void {
    for (const arn of arns) {
      if (g.attachments.get(arn)?.state === "Removing") g.attachments.delete(arn);
      if (g.attachments.has(arn)) continue;
      const a: Attachment = { identifier: arn, type: "elbv2", via, state: "Adding" };
      g.attachments.set(arn, a);
      for (const inst of g.instances.values()) if (inst.state === "InService") this.registerOne(g, inst, a);
      a.state = "Added";
    }
    this.kick(g);
  }

  /** Detaches: the source is `Removing` while its instances drain, then it disappears. */
  detach(g: Group, arns: string[]): void {
    const elb = this.elb();
    for (const arn of arns) {
      const a = g.attachments.get(arn);
      if (!a || a.state === "Removing") continue;
      a.state = "Removing";
      const drains: Promise<void>[] = [];
      for (const inst of g.instances.values()) {
        if (!inst.registeredWith.delete(arn) || !elb) continue;
        drains.push(elb.deregisterTargets(arn, [{ id: inst.id }]).catch(() => undefined));
      }
      void Promise.all(drains).then(() => {
        if (g.attachments.get(arn) === a) g.attachments.delete(arn);
      });
    }
  }

  /** AddToLoadBalancer resumed: register in-service instances that were not skipped while it was suspended. */
  registerMissing(g: Group): void {
    for (const inst of g.instances.values()) {
      if (inst.state !== "InService" || inst.neverRegister) continue;
      for (const a of g.attachments.values()) if (a.state !== "Removing") this.registerOne(g, inst, a);
    }
  }

  private registerOne(g: Group, inst: AsgInstance, a: Attachment, act?: Activity): void {
    if (inst.registeredWith.has(a.identifier) || isSuspended(g, "AddToLoadBalancer") || inst.neverRegister) return;
    const elb = this.elb();
    try {
      if (!elb) throw new Error("Elastic Load Balancing is not available in this simulated cloud");
      elb.registerTargets(a.identifier, [{ id: inst.id }]);
      inst.registeredWith.add(a.identifier);
    } catch (err) {
      if (act) act.StatusMessage = `Failed to register ${inst.id} with ${a.identifier}: ${(err as Error).message}`;
    }
  }

  /** Registers with every attached target group before InService, unless AddToLoadBalancer is suspended. */
  private registerAll(g: Group, inst: AsgInstance, act: Activity): void {
    if (isSuspended(g, "AddToLoadBalancer")) {
      // Instances that come into service while AddToLoadBalancer is suspended are never registered
      // automatically, even after it is resumed (reference §3.7).
      inst.neverRegister = true;
      return;
    }
    for (const a of g.attachments.values()) if (a.state !== "Removing") this.registerOne(g, inst, a, act);
  }

  private async deregisterAll(inst: AsgInstance): Promise<void> {
    const elb = this.elb();
    const tgs = [...inst.registeredWith];
    inst.registeredWith.clear();
    if (!elb || tgs.length === 0) return;
    await Promise.all(tgs.map((tg) => elb.deregisterTargets(tg, [{ id: inst.id }]).catch(() => undefined)));
  }

  // ---------------------------------------------------------------- launch

  /** Resolves the group's launch template (LaunchTemplate or MixedInstancesPolicy) through EC2. */
  resolveTemplate(g: Group): ResolvedTemplate & { instanceType?: string } {
    const ec2 = this.ec2();
    if (!ec2) throw new AwsError("InternalFailure", "EC2 is not available in this simulated cloud", 500);
    let spec: { LaunchTemplateId?: string; LaunchTemplateName?: string; Version?: string } | undefined = g.launchTemplate;
    let instanceType: string | undefined;
    if (!spec && g.mixedInstancesPolicy) {
      const lt = g.mixedInstancesPolicy.LaunchTemplate as Record<string, unknown> | undefined;
      spec = lt?.LaunchTemplateSpecification as typeof spec;
      const overrides = (lt?.Overrides as { InstanceType?: string }[] | undefined) ?? [];
      // Allocation strategy "prioritized": the first override wins.
      instanceType = overrides.find((o) => o?.InstanceType)?.InstanceType;
    }
    if (!spec) throw new AwsError("ValidationError", "The group has no launch template");
    // The stored spec carries both id and name (Describe echoes both); EC2 takes exactly one.
    const r = ec2.resolveLaunchTemplate(
      spec.LaunchTemplateId
        ? { id: spec.LaunchTemplateId, version: spec.Version ?? "$Default" }
        : { name: spec.LaunchTemplateName, version: spec.Version ?? "$Default" },
    );
    return { id: r.id, name: r.name, version: r.version, instanceType: instanceType ?? r.instanceType };
  }

  /** The subnet of the AZ with the fewest live instances (AZ balance), first listed on ties. */
  private pickSubnet(g: Group): { id: string; az: string } | undefined {
    const counts = new Map<string, number>();
    for (const i of g.instances.values()) if (LIVE_STATES.has(i.state)) counts.set(i.az, (counts.get(i.az) ?? 0) + 1);
    let best: { id: string; az: string } | undefined;
    for (const s of g.subnets) if (!best || (counts.get(s.az) ?? 0) < (counts.get(best.az) ?? 0)) best = s;
    return best;
  }

  /** Launches one instance toward desired capacity. False when the launch failed (an activity says why). */
  private launch(g: Group, cause: string): boolean {
    const subnet = this.pickSubnet(g);
    let inst: AsgInstance;
    try {
      const ec2 = this.ec2();
      if (!ec2) throw new AwsError("InternalFailure", "EC2 is not available in this simulated cloud", 500);
      const tpl = this.resolveTemplate(g);
      const tags: Record<string, string> = {};
      for (const [k, t] of g.tags) if (t.PropagateAtLaunch) tags[k] = t.Value;
      Object.assign(tags, {
        "aws:autoscaling:groupName": g.name,
        "aws:ec2launchtemplate:id": tpl.id,
        "aws:ec2launchtemplate:version": String(tpl.version),
      });
      const [si] = ec2.launch({
        launchTemplate: { id: tpl.id, version: tpl.version },
        ...(tpl.instanceType && g.mixedInstancesPolicy ? { instanceType: tpl.instanceType } : {}),
        ...(subnet ? { subnetId: subnet.id } : {}),
        tags,
        count: 1,
      });
      if (!si) throw new AwsError("InternalFailure", "EC2 launched no instance", 500);
      inst = {
        id: si.id,
        az: si.az,
        subnetId: si.subnetId,
        instanceType: si.instanceType,
        imageId: si.imageId,
        template: { id: tpl.id, name: tpl.name, version: tpl.version },
        state: "Pending",
        health: "Healthy",
        protected: g.newInstancesProtectedFromScaleIn,
        launchedAt: this.now(),
        registeredWith: new Set(),
        neverRegister: false,
        replacing: false,
        actions: new Map(),
        wakers: new Set(),
      };
    } catch (err) {
      const reason = (err as Error).message.replace(/\.+$/, "");
      const a = this.startActivity(
        g,
        `Launching a new EC2 instance.  Status Reason: ${reason}. Launching EC2 instance failed.`,
        cause,
        {
          ...(subnet ? { Details: JSON.stringify({ "Subnet ID": subnet.id, "Availability Zone": subnet.az }) } : {}),
        },
      );
      this.endActivity(g, a, "Failed", `${reason}. Launching EC2 instance failed.`);
      g.launchFailures++;
      g.nextLaunchAt =
        this.now() + Math.min(this.setting("reconcileMs") * 2 ** (g.launchFailures - 1), this.setting("launchBackoffMaxMs"));
      this.cloud.emit({
        source: "aws.autoscaling",
        detailType: "EC2 Instance Launch Unsuccessful",
        detail: this.activityDetail(g, a),
        resources: [g.arn],
      });
      return false;
    }
    g.launchFailures = 0;
    g.nextLaunchAt = 0;
    g.instances.set(inst.id, inst);
    this.byInstance.set(inst.id, g);
    const act = this.startActivity(g, `Launching a new EC2 instance: ${inst.id}`, cause, {
      Details: JSON.stringify({ "Subnet ID": inst.subnetId, "Availability Zone": inst.az }),
    });
    this.flow(g, act, this.bringIntoService(g, inst, act, "EC2", "AutoScalingGroup"));
    return true;
  }

  /**
   * Pending → (Pending:Wait → Pending:Proceed with launch hooks) → EC2 running → registered with
   * the target groups → InService. Also the path back from Standby.
   */
  private async bringIntoService(g: Group, inst: AsgInstance, act: Activity, origin: string, destination: string): Promise<void> {
    if (g.hooks.size > 0 && [...g.hooks.values()].some((h) => h.transition === LAUNCHING)) {
      inst.state = "Pending:Wait";
      act.StatusCode = "MidLifecycleAction";
      act.Progress = 30;
      const result = await this.runHooks(g, inst, LAUNCHING, origin, destination);
      if (inst.state !== "Pending:Wait") return this.interrupted(g, inst, act);
      if (result === "ABANDON") {
        // ABANDON on launch: the instance is terminated and replaced.
        this.endActivity(
          g,
          act,
          "Cancelled",
          `Instance failed to complete user's Lifecycle Action: Lifecycle Action with token for ${inst.id} was abandoned: Lifecycle Action Completed with ABANDON Result`,
        );
        const cause = `At ${causeTime(this.now())} an instance was taken out of service in response to a launch lifecycle action that was abandoned.`;
        this.startTerminate(g, inst, cause, { skipHooks: true });
        return;
      }
      inst.state = "Pending:Proceed";
      act.Progress = 50;
    }
    act.StatusCode = "PreInService";
    const expected = inst.state;
    const ec2 = this.ec2();
    const running = await this.waitFor(inst, () => {
      if (inst.state !== expected) return false;
      const s = ec2?.instance(inst.id)?.state;
      if (s === "running") return true;
      if (s !== "pending") return false;
      return undefined;
    });
    if (inst.state !== expected) return this.interrupted(g, inst, act);
    if (!running) {
      // EC2 gave up on it (boot failure, stopped, terminated): the health check replaces it.
      this.endActivity(g, act, "Failed", "Instance became unhealthy while waiting for instance to be in InService state.");
      this.markUnhealthy(g, inst, "EC2");
      this.kick(g);
      return;
    }
    this.registerAll(g, inst, act);
    inst.state = "InService";
    inst.inServiceAt = this.now();
    this.endActivity(g, act, "Successful");
    this.cloud.emit({
      source: "aws.autoscaling",
      detailType: "EC2 Instance Launch Successful",
      detail: this.activityDetail(g, act, inst.id),
      resources: [g.arn, inst.id],
    });
    this.kick(g);
  }

  /** The instance left the flow's path (terminated, replaced) before reaching its goal. */
  private interrupted(g: Group, inst: AsgInstance, act: Activity): void {
    if (act.EndTime) return;
    if (inst.health === "Unhealthy")
      this.endActivity(g, act, "Failed", "Instance became unhealthy while waiting for instance to be in InService state.");
    else this.endActivity(g, act, "Cancelled", "The instance was taken out of service before it reached InService.");
  }

  // ---------------------------------------------------------------- terminate

  /**
   * Terminating → deregistered from every target group and drained (the ELB deregistration delay)
   * → Terminating:Wait/Proceed with terminate hooks → EC2 terminate → Terminated → gone.
   * (AWS deregisters and drains before the terminate hook runs.)
   */
  startTerminate(g: Group, inst: AsgInstance, cause: string, opts: { replacing?: boolean; skipHooks?: boolean } = {}): Activity {
    inst.state = "Terminating";
    inst.replacing = !!opts.replacing;
    for (const a of [...inst.actions.values()]) a.settle("dropped");
    this.wake(inst);
    const act = this.startActivity(g, `Terminating EC2 instance: ${inst.id}`, cause, {
      Details: JSON.stringify({ "Subnet ID": inst.subnetId, "Availability Zone": inst.az }),
    });
    this.flow(g, act, this.terminateFlow(g, inst, act, !!opts.skipHooks));
    return act;
  }

  private async terminateFlow(g: Group, inst: AsgInstance, act: Activity, skipHooks: boolean): Promise<void> {
    if (inst.registeredWith.size > 0) {
      act.StatusCode = "WaitingForELBConnectionDraining";
      await this.deregisterAll(inst);
    }
    act.Progress = 50;
    if (!skipHooks && !g.deleting && [...g.hooks.values()].some((h) => h.transition === TERMINATING)) {
      inst.state = "Terminating:Wait";
      act.StatusCode = "MidLifecycleAction";
      await this.runHooks(g, inst, TERMINATING, "AutoScalingGroup", "EC2");
      inst.state = "Terminating:Proceed";
    }
    act.StatusCode = "InProgress";
    act.Progress = 75;
    const ec2 = this.ec2();
    try {
      ec2?.terminate([inst.id], "Client.UserInitiatedShutdown: User initiated shutdown");
    } catch {
      // Already gone: nothing to terminate.
    }
    await this.waitFor(inst, () => {
      const s = ec2?.instance(inst.id)?.state;
      return s === undefined || s === "terminated" ? true : undefined;
    });
    inst.state = "Terminated";
    this.endActivity(g, act, "Successful");
    this.cloud.emit({
      source: "aws.autoscaling",
      detailType: "EC2 Instance Terminate Successful",
      detail: this.activityDetail(g, act, inst.id),
      resources: [g.arn, inst.id],
    });
    const linger = this.setting("terminatedVisibleMs");
    if (linger > 0) await this.cloud.clock.sleep(linger);
    g.instances.delete(inst.id);
    if (this.byInstance.get(inst.id) === g) this.byInstance.delete(inst.id);
    this.kick(g);
  }

  // ---------------------------------------------------------------- standby

  enterStandby(g: Group, inst: AsgInstance, cause: string): Activity {
    inst.state = "EnteringStandby";
    const act = this.startActivity(g, `Moving EC2 instance to Standby: ${inst.id}`, cause, {
      StatusCode: "InProgress",
      Progress: 50,
    });
    const flow = (async () => {
      await this.deregisterAll(inst);
      if (inst.state !== "EnteringStandby") return this.interrupted(g, inst, act);
      inst.state = "Standby";
      this.endActivity(g, act, "Successful");
    })();
    this.flow(g, act, flow);
    this.kick(g);
    return act;
  }

  exitStandby(g: Group, inst: AsgInstance, cause: string): Activity {
    inst.state = "Pending";
    const act = this.startActivity(g, `Moving EC2 instance out of Standby: ${inst.id}`, cause, {
      StatusCode: "PreInService",
      Progress: 30,
    });
    this.flow(g, act, this.bringIntoService(g, inst, act, "EC2", "AutoScalingGroup"));
    return act;
  }

  // ---------------------------------------------------------------- lifecycle hooks

  /** Waits in `*:Wait` for every hook of the transition; ABANDON (or a drop) ends the wait at once. */
  private runHooks(
    g: Group,
    inst: AsgInstance,
    transition: Transition,
    origin: string,
    destination: string,
  ): Promise<LifecycleResult | "dropped"> {
    const hooks = [...g.hooks.values()].filter((h) => h.transition === transition);
    if (hooks.length === 0) return Promise.resolve("CONTINUE");
    return new Promise((resolve) => {
      let remaining = hooks.length;
      let finished = false;
      const finish = (r: LifecycleResult | "dropped") => {
        if (finished) return;
        finished = true;
        for (const a of inst.actions.values()) this.cloud.clock.clearTimeout(a.timer);
        inst.actions.clear();
        resolve(r);
      };
      const now = this.now();
      for (const hook of hooks) {
        const action: LifecycleAction = {
          token: this.uuid(),
          hook,
          startedAt: now,
          globalDeadline: now + Math.min(GLOBAL_TIMEOUT_CAP_S, 100 * hook.heartbeatTimeoutS) * 1000,
          settle: (r) => {
            if (finished || inst.actions.get(hook.name) !== action) return;
            this.cloud.clock.clearTimeout(action.timer);
            inst.actions.delete(hook.name);
            if (r !== "CONTINUE") finish(r);
            else if (--remaining === 0) finish("CONTINUE");
          },
        };
        inst.actions.set(hook.name, action);
        this.heartbeat(action);
        this.cloud.emit({
          source: "aws.autoscaling",
          detailType:
            transition === LAUNCHING ? "EC2 Instance-launch Lifecycle Action" : "EC2 Instance-terminate Lifecycle Action",
          detail: {
            LifecycleActionToken: action.token,
            AutoScalingGroupName: g.name,
            LifecycleHookName: hook.name,
            EC2InstanceId: inst.id,
            LifecycleTransition: transition,
            ...(hook.notificationMetadata !== undefined ? { NotificationMetadata: hook.notificationMetadata } : {}),
            Origin: origin,
            Destination: destination,
          },
          resources: [g.arn],
        });
      }
    });
  }

  /** (Re)starts an action's heartbeat timeout, capped by its global timeout; on expiry the hook's DefaultResult applies. */
  heartbeat(a: LifecycleAction): void {
    this.cloud.clock.clearTimeout(a.timer);
    const now = this.now();
    const at = Math.min(now + a.hook.heartbeatTimeoutS * 1000, a.globalDeadline);
    a.timer = this.cloud.clock.setTimeout(() => a.settle(a.hook.defaultResult), at - now);
  }

  // ---------------------------------------------------------------- activities

  startActivity(g: Group, description: string, cause: string, extra: Partial<Activity> = {}): Activity {
    const a: Activity = {
      ActivityId: this.uuid(),
      AutoScalingGroupName: g.name,
      AutoScalingGroupARN: g.arn,
      Description: description,
      Cause: cause,
      StartTime: this.cloud.clock.date(),
      StatusCode: "InProgress",
      Progress: 0,
      Details: "{}",
      ...extra,
    };
    const list = this.activities.get(g.name) ?? [];
    this.activities.set(g.name, list);
    list.push(a);
    const max = this.setting("maxActivities");
    if (list.length > max) list.splice(0, list.length - max);
    return a;
  }

  endActivity(g: Group, a: Activity, status: "Successful" | "Failed" | "Cancelled", message?: string): void {
    a.StatusCode = status;
    a.Progress = 100;
    a.EndTime = this.cloud.clock.date();
    if (message !== undefined) a.StatusMessage = message;
    g.lastActivityEnd = this.now();
  }

  inProgress(g: Group): boolean {
    return (this.activities.get(g.name) ?? []).some((a) => a.AutoScalingGroupARN === g.arn && !a.EndTime);
  }

  private activityDetail(g: Group, a: Activity, instanceId?: string): Record<string, unknown> {
    return {
      StatusCode: a.StatusCode,
      AutoScalingGroupName: g.name,
      ActivityId: a.ActivityId,
      Details: JSON.parse(a.Details) as unknown,
      RequestId: a.ActivityId,
      StatusMessage: a.StatusMessage ?? "",
      EndTime: a.EndTime?.toISOString(),
      ...(instanceId ? { EC2InstanceId: instanceId } : {}),
      StartTime: a.StartTime.toISOString(),
      Cause: a.Cause,
      Description: a.Description,
    };
  }

  /** Runs a flow in the background; a bug fails its activity instead of vanishing. */
  private flow(g: Group, act: Activity, p: Promise<void>): void {
    p.catch((err: unknown) => {
      if (!act.EndTime)
        this.endActivity(g, act, "Failed", `The simulated service failed: ${(err as Error)?.message ?? String(err)}`);
    });
  }

  // ---------------------------------------------------------------- waiting on EC2

  /**
   * Resolves with the first defined value of `check`, re-evaluated on EC2 state events for the
   * instance, on {@link wake}, and on a safety poll.
   */
  private waitFor<T>(inst: AsgInstance, check: () => T | undefined): Promise<T> {
    return new Promise((resolve) => {
      let poll: TimerHandle | undefined;
      const wake = () => {
        const v = check();
        if (v === undefined) return;
        inst.wakers.delete(wake);
        this.cloud.clock.clearTimeout(poll);
        resolve(v);
      };
      const arm = () => {
        poll = this.cloud.clock.setTimeout(() => {
          wake();
          if (inst.wakers.has(wake) && !this.stopped) arm();
        }, this.setting("pollMs"));
      };
      inst.wakers.add(wake);
      wake();
      if (inst.wakers.has(wake)) arm();
    });
  }

  wake(inst: AsgInstance): void {
    for (const w of [...inst.wakers]) w();
  }

  private instanceChanged(ev: InstanceStateEvent): void {
    const g = this.byInstance.get(ev.instance.id);
    const inst = g?.instances.get(ev.instance.id);
    if (!g || !inst) return;
    this.wake(inst);
    if (ev.to !== "pending" && ev.to !== "running") this.kick(g);
  }

  // ---------------------------------------------------------------- scale fault

  /**
   * `{kind:"scale", group, desired, atMs}` forces a desired-capacity change, as a scaling policy
   * would. `atMs` ≥ 1e12 is an absolute cloud-clock instant (epoch ms); a smaller value is a delay
   * after the rule was added (or after the service started, for rules given to the cloud up front).
   * If the group does not exist yet, the change applies when it is created. While AlarmNotification
   * is suspended the policy cannot fire; it applies on resume, like an alarm still in ALARM.
   */
  private armScaleFault(rule: FaultRule, id: number): void {
    if (rule.kind !== "scale" || typeof rule.group !== "string") return;
    const at = Number(rule.atMs ?? 0);
    const now = this.now();
    const dueAt = at >= 1e12 ? at : now + Math.max(0, at);
    const entry: ScaleFault = { dueAt, applied: false };
    this.scaleFaults.set(id, entry);
    entry.timer = this.cloud.clock.setTimeout(() => {
      const g = this.groups.get(rule.group);
      if (g) this.reconcile(g);
    }, dueAt - now);
  }

  private applyScaleFaults(g: Group): void {
    if (this.scaleFaults.size === 0 || isSuspended(g, "AlarmNotification")) return;
    const now = this.now();
    const due: { r: FaultRule; e: ScaleFault }[] = [];
    for (const r of this.cloud.faults.list()) {
      const e = this.scaleFaults.get(r.id);
      if (r.kind === "scale" && r.group === g.name && e && !e.applied && e.dueAt <= now) due.push({ r, e });
    }
    due.sort((a, b) => a.e.dueAt - b.e.dueAt);
    for (const { r, e } of due) {
      e.applied = true;
      const wanted = Math.trunc(Number(r.desired));
      if (!Number.isFinite(wanted)) continue;
      const to = Math.min(g.maxSize, Math.max(g.minSize, wanted));
      this.cloud.faults.log.push({ id: Number(r.id), kind: "scale", at: now, attrs: { group: g.name, desired: to } });
      if (to === g.desired) continue;
      g.lastCause = `At ${causeTime(now)} a monitor alarm kiln-scale-fault-${r.id} in state ALARM triggered policy kiln-scale-fault-${r.id} changing the desired capacity from ${g.desired} to ${to}.`;
      g.desired = to;
    }
  }

  // ---------------------------------------------------------------- inspection and shutdown

  snapshot(): unknown {
    return {
      groups: [...this.groups.values()].map((g) => ({
        name: g.name,
        status: g.deleting ? "Delete in progress" : "Active",
        minSize: g.minSize,
        maxSize: g.maxSize,
        desiredCapacity: g.desired,
        healthCheckType: g.healthCheckType,
        healthCheckGracePeriod: g.healthCheckGracePeriodS,
        launchTemplate: g.launchTemplate,
        suspendedProcesses: [...g.suspended.keys()],
        trafficSources: [...g.attachments.values()].map((a) => ({ identifier: a.identifier, state: a.state })),
        lifecycleHooks: [...g.hooks.values()].map((h) => ({ name: h.name, transition: h.transition })),
        instances: [...g.instances.values()].map((i) => ({
          id: i.id,
          az: i.az,
          lifecycleState: i.state,
          health: i.health,
          protectedFromScaleIn: i.protected,
          launchTemplateVersion: i.template?.version,
          targetGroups: [...i.registeredWith],
          waitingOn: [...i.actions.keys()],
        })),
      })),
    };
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    this.cloud.bus.off("instance-state", this.onInstanceState);
    for (const g of this.groups.values()) {
      this.cloud.clock.clearTimeout(g.timer);
      this.cloud.clock.clearTimeout(g.kickTimer);
      for (const i of g.instances.values()) for (const a of i.actions.values()) this.cloud.clock.clearTimeout(a.timer);
    }
    for (const f of this.scaleFaults.values()) this.cloud.clock.clearTimeout(f.timer);
  }
}
