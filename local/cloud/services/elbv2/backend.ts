/**
 * State and behaviour of the simulated ELBv2: load balancers, target groups with their targets'
 * health state machine and draining, listeners and rules with weighted forwarding, and the
 * CloudWatch metrics an ALB publishes. The wire actions live in `actions.ts`; the real HTTP
 * listeners in `listener.ts`.
 *
 * Health (reference §4.2, all on the cloud clock):
 * - a target in a group that no listener or rule forwards to (even at weight 0 it counts as used,
 *   reference §8.3) is `unused/Target.NotInUse` and is not checked;
 * - in a used group it starts `initial/Elb.RegistrationInProgress`; the first check runs after
 *   `elbv2.firstCheckMs`, the reason turns `Elb.InitialHealthChecking`, and
 *   `elbv2.initialHealthyChecks` passes (AWS: one) make it `healthy`; `UnhealthyThresholdCount`
 *   failures make it `unhealthy` (from initial or healthy); `HealthyThresholdCount` passes bring
 *   an unhealthy target back;
 * - checks run every `HealthCheckIntervalSeconds`, time out after `HealthCheckTimeoutSeconds`;
 * - an instance that is not running fails with `Target.Timeout`; a stopped or terminated one that
 *   is still registered is `unused/Target.InvalidState`; an instance that starts shutting down is
 *   deregistered (it drains) as AWS does for terminated instance targets;
 * - the `health-flap` fault (`instanceId?`, `targetGroup?` name or ARN, `periodMs?`) makes checks
 *   fail in alternate periods of `periodMs` (or every other check without a period).
 */
import { poisson, seededRandom } from "../../random.ts";
import type { Cloud } from "../../cloud.ts";
import type { CloudWatchApi, Ec2Api, ElbApi, InstanceStateEvent, SimInstance, TargetHealthState } from "../../contracts.ts";
import type { ServiceDefinition } from "../../protocol/types.ts";
import { type CheckResult, probe } from "./health.ts";
import { targetResponseMs } from "./listener.ts";
import {
  describeReason,
  elbError,
  type ForwardAction,
  type Listener,
  type ListenerAction,
  type LoadBalancer,
  type Rule,
  TARGET_GROUP_ATTRIBUTE_DEFAULTS,
  type Target,
  type TargetGroup,
} from "./model.ts";

export const ELBV2_VERSION = "2015-12-01";
export const ELBV2_XMLNS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/** What the listener decided for one request. */
export type Routing =
  | { kind: "forward"; tg: TargetGroup; target: Target; instance: SimInstance | undefined }
  | { kind: "fixed"; status: number; body: string; contentType: string; headers?: Record<string, string> }
  | { kind: "error"; status: 503 | 500; body: string };

/** One request answered by the in-process path (`request()`). */
export interface AlbResponse {
  status: number;
  body: string;
  /** Set when a target answered. */
  targetId?: string;
  targetGroupArn?: string;
  /** Who produced an error status: the load balancer itself or the target. */
  source: "target" | "elb";
}

export class ElbBackend implements ElbApi {
  definition!: ServiceDefinition;
  readonly lbs = new Map<string, LoadBalancer>();
  readonly tgs = new Map<string, TargetGroup>();
  readonly listeners = new Map<string, Listener>();
  readonly rules = new Map<string, Rule>();
  /** Per-LB attributes (`idle_timeout.timeout_seconds`, `deletion_protection.enabled`, …). */
  readonly lbAttributes = new Map<string, Map<string, string>>();
  /** Opens and closes the real HTTP listeners (set by listener.ts). */
  servers?: { open(l: Listener): Promise<void>; close(l: Listener): Promise<void>; closeAll(): Promise<void> };
  private hostCountTimer?: ReturnType<Cloud["clock"]["setTimeout"]>;
  /** Background users per load balancer (see `startUsers`). */
  private readonly users = new Map<string, { timer?: ReturnType<Cloud["clock"]["setTimeout"]> }>();
  private readonly generations = new WeakMap<Target, number>();
  private readonly onInstanceState = (e: InstanceStateEvent) => this.instanceChanged(e);

  constructor(readonly cloud: Cloud) {
    cloud.bus.on("instance-state", this.onInstanceState);
  }

  // ---- contract used by Auto Scaling ----

  hasTargetGroup(arn: string): boolean {
    return this.tgs.has(arn);
  }

  registerTargets(tgArn: string, targets: { id: string; port?: number }[]): void {
    const tg = this.tgs.get(tgArn);
    if (!tg) throw elbError.tgNotFound();
    for (const t of targets) this.register(tg, t.id, t.port ?? tg.port);
  }

  deregisterTargets(tgArn: string, targets: { id: string; port?: number }[]): Promise<void> {
    const tg = this.tgs.get(tgArn);
    if (!tg) return Promise.reject(elbError.tgNotFound());
    return Promise.all(targets.map((t) => this.deregister(tg, t.id))).then(() => undefined);
  }

  targetHealth(tgArn: string, instanceId: string): TargetHealthState | undefined {
    return this.tgs.get(tgArn)?.targets.get(instanceId)?.state;
  }

  // ---- lookups ----

  ec2(): Ec2Api | undefined {
    return this.cloud.maybeBackend<Ec2Api>("ec2");
  }

  /** Resolves a load balancer by ARN or name. */
  lb(arnOrName: string): LoadBalancer | undefined {
    return this.lbs.get(arnOrName) ?? [...this.lbs.values()].find((l) => l.name === arnOrName);
  }

  listenersOf(lbArn: string): Listener[] {
    return [...this.listeners.values()].filter((l) => l.lbArn === lbArn);
  }

  /** Every forward action of a listener (default rule and rules). */
  private forwardsOf(l: Listener): ForwardAction[] {
    return [l.defaultRule, ...l.rules].flatMap((r) => r.actions.filter((a): a is ForwardAction => a.Type === "forward"));
  }

  /** The load balancer a target group is associated with (a group serves at most one, reference §8.3). */
  lbOfTargetGroup(tgArn: string): string | undefined {
    for (const l of this.listeners.values()) {
      if (this.forwardsOf(l).some((f) => f.TargetGroups.some((t) => t.TargetGroupArn === tgArn))) return l.lbArn;
    }
    return undefined;
  }

  inUse(tg: TargetGroup): boolean {
    return this.lbOfTargetGroup(tg.arn) !== undefined;
  }

  attribute(tg: TargetGroup, key: string): string {
    return tg.attributes.get(key) ?? TARGET_GROUP_ATTRIBUTE_DEFAULTS[key] ?? "";
  }

  /** The CloudWatch `LoadBalancer` dimension: `app/<name>/<id>`. */
  lbDimension(lb: LoadBalancer): string {
    return `app/${lb.name}/${lb.id}`;
  }

  /** The CloudWatch `TargetGroup` dimension: `targetgroup/<name>/<id>`. */
  tgDimension(tg: TargetGroup): string {
    return `targetgroup/${tg.name}/${tg.id}`;
  }

  // ---- target lifecycle ----

  private setState(t: Target, state: TargetHealthState, reason?: string, arg?: string): void {
    t.state = state;
    t.reason = reason;
    t.description = reason ? describeReason(reason, arg) : undefined;
  }

  private bump(t: Target): number {
    const g = (this.generations.get(t) ?? 0) + 1;
    this.generations.set(t, g);
    this.cloud.clock.clearTimeout(t.checkTimer);
    t.checkTimer = undefined;
    return g;
  }

  register(tg: TargetGroup, id: string, port: number): void {
    const existing = tg.targets.get(id);
    if (existing && !existing.drain) return; // registering again is a no-op (reference §4.3)
    if (existing?.drain) {
      // Registering a draining target cancels the deregistration; whoever waited is released.
      this.cloud.clock.clearTimeout(existing.drain.timer);
      for (const w of existing.drain.waiters) w();
      tg.targets.delete(id);
    }
    const instance = this.ec2()?.instance(id);
    const t: Target = {
      id,
      port,
      az: instance?.az ?? `${this.cloud.region}a`,
      state: "initial",
      registeredAt: this.cloud.clock.now(),
      passes: 0,
      failures: 0,
      inFlight: 0,
    };
    tg.targets.set(id, t);
    this.startChecking(tg, t);
  }

  /** (Re)starts the health state machine of a target according to whether its group is in use. */
  private startChecking(tg: TargetGroup, t: Target): void {
    const gen = this.bump(t);
    t.passes = 0;
    t.failures = 0;
    if (!this.inUse(tg)) {
      this.setState(t, "unused", "Target.NotInUse");
      return;
    }
    if (!tg.healthCheck.enabled) {
      this.setState(t, "unavailable", "Target.HealthCheckDisabled");
      return;
    }
    const inst = this.ec2()?.instance(t.id);
    if (inst && (inst.state === "stopped" || inst.state === "terminated")) {
      this.setState(t, "unused", "Target.InvalidState", inst.state);
    } else {
      this.setState(t, "initial", "Elb.RegistrationInProgress");
    }
    const first = this.cloud.jitter(
      this.cloud.setting("elbv2.firstCheckMs", 10_000),
      this.cloud.setting("elbv2.firstCheckJitter", 0),
    );
    t.checkTimer = this.cloud.clock.setTimeout(() => this.tick(tg, t, gen), first);
  }

  /** One health-check round: schedule the next one an interval later, then run this one. */
  private tick(tg: TargetGroup, t: Target, gen: number): void {
    if (this.generations.get(t) !== gen || t.drain || tg.targets.get(t.id) !== t) return;
    t.checkTimer = this.cloud.clock.setTimeout(() => this.tick(tg, t, gen), tg.healthCheck.intervalSeconds * 1000);
    const inst = this.ec2()?.instance(t.id);
    if (inst && (inst.state === "stopped" || inst.state === "terminated")) {
      this.setState(t, "unused", "Target.InvalidState", inst.state);
      t.passes = 0;
      t.failures = 0;
      return;
    }
    if (t.state === "unused") this.setState(t, "initial", "Elb.InitialHealthChecking");
    if (t.reason === "Elb.RegistrationInProgress") this.setState(t, "initial", "Elb.InitialHealthChecking");
    this.check(tg, t, inst).then(
      (r) => {
        if (this.generations.get(t) === gen && !t.drain && tg.targets.get(t.id) === t) this.apply(tg, t, r);
      },
      () => undefined,
    );
  }

  private async check(tg: TargetGroup, t: Target, inst: SimInstance | undefined): Promise<CheckResult> {
    const flap =
      this.cloud.faults.active("health-flap", { instanceId: t.id, targetGroup: tg.name }) ??
      this.cloud.faults.active("health-flap", { instanceId: t.id, targetGroup: tg.arn });
    if (flap) {
      const period = Number(flap.periodMs ?? 0);
      if (period <= 0) t.flap = !t.flap;
      const failing = period > 0 ? Math.floor(this.cloud.clock.now() / period) % 2 === 1 : t.flap;
      if (failing) return { ok: false, reason: "Target.ResponseCodeMismatch", code: 502 };
    }
    // Without EC2 in the cloud (unit setups) every target counts as answering.
    if (!this.ec2()) return { ok: true };
    const real = this.cloud.setting("elbv2.realHealthChecks", this.cloud.clock.kind !== "virtual");
    return probe(this.cloud.clock, tg.healthCheck, inst, real);
  }

  /** Thresholds (reference §4.2). */
  private apply(tg: TargetGroup, t: Target, r: CheckResult): void {
    const hc = tg.healthCheck;
    if (r.ok) {
      t.failures = 0;
      t.passes++;
      if (t.state === "initial" && t.passes >= this.cloud.setting("elbv2.initialHealthyChecks", 1)) this.healthy(t);
      else if (t.state === "unhealthy" && t.passes >= hc.healthyThreshold) this.healthy(t);
      return;
    }
    t.passes = 0;
    t.failures++;
    const reason = r.reason ?? "Target.FailedHealthChecks";
    const arg = r.code !== undefined ? String(r.code) : "";
    if (t.state === "unhealthy") this.setState(t, "unhealthy", reason, arg);
    else if (t.failures >= hc.unhealthyThreshold && (t.state === "healthy" || t.state === "initial")) {
      this.setState(t, "unhealthy", reason, arg);
      t.failures = 0;
    }
  }

  private healthy(t: Target): void {
    this.setState(t, "healthy");
    t.passes = 0;
  }

  /** Starts draining; resolves when the deregistration delay has passed and the target is gone. */
  deregister(tg: TargetGroup, id: string): Promise<void> {
    const t = tg.targets.get(id);
    if (!t) return Promise.resolve();
    if (t.drain) return new Promise((resolve) => t.drain!.waiters.push(resolve));
    this.bump(t);
    const delayMs = Number(this.attribute(tg, "deregistration_delay.timeout_seconds")) * 1000;
    // A group that takes no traffic has nothing to drain: the target leaves at once.
    if (delayMs <= 0 || !this.inUse(tg)) {
      tg.targets.delete(id);
      return Promise.resolve();
    }
    this.setState(t, "draining", "Target.DeregistrationInProgress");
    return new Promise((resolve) => {
      const timer = this.cloud.clock.setTimeout(() => {
        if (tg.targets.get(id) === t) tg.targets.delete(id);
        const waiters = t.drain?.waiters ?? [];
        t.drain = undefined;
        for (const w of waiters) w();
      }, delayMs);
      t.drain = { until: this.cloud.clock.now() + delayMs, timer, waiters: [resolve] };
    });
  }

  /** Called whenever listeners or rules change: groups that became used or unused restart their checks. */
  refreshUse(): void {
    for (const tg of this.tgs.values()) {
      const used = this.inUse(tg);
      for (const t of tg.targets.values()) {
        if (t.drain) continue;
        const isUnused = t.state === "unused" && t.reason === "Target.NotInUse";
        if (used === isUnused) this.startChecking(tg, t);
      }
    }
    this.scheduleHostCounts();
  }

  /** Health settings changed (ModifyTargetGroup): reschedule checks with the new interval. */
  healthSettingsChanged(tg: TargetGroup): void {
    for (const t of tg.targets.values()) {
      if (t.drain || !t.checkTimer) continue;
      const gen = this.bump(t);
      t.checkTimer = this.cloud.clock.setTimeout(() => this.tick(tg, t, gen), tg.healthCheck.intervalSeconds * 1000);
    }
  }

  /** Drops a target group's timers (DeleteTargetGroup). */
  dropTargetGroup(tg: TargetGroup): void {
    for (const t of tg.targets.values()) {
      this.bump(t);
      if (t.drain) {
        this.cloud.clock.clearTimeout(t.drain.timer);
        for (const w of t.drain.waiters) w();
      }
    }
    tg.targets.clear();
    this.tgs.delete(tg.arn);
  }

  private instanceChanged(e: InstanceStateEvent): void {
    for (const tg of this.tgs.values()) {
      const t = tg.targets.get(e.instance.id);
      if (!t || t.drain) continue;
      if (e.to === "shutting-down" || e.to === "terminated") {
        // AWS deregisters terminated instance targets; the group's delay still applies.
        void this.deregister(tg, t.id);
      } else if (e.to === "stopping" || e.to === "stopped") {
        if (this.inUse(tg)) {
          this.setState(t, "unused", "Target.InvalidState", "stopped");
          t.passes = 0;
          t.failures = 0;
        }
      }
    }
  }

  // ---- routing ----

  /** Chooses what a listener does with a request: rules by priority, then the default rule. */
  route(l: Listener, req: { path: string; host?: string; method?: string }): Routing {
    const lb = this.lbs.get(l.lbArn);
    if (lb?.state !== "active") return { kind: "error", status: 503, body: "503 Service Temporarily Unavailable" };
    const rule =
      [...l.rules].sort((a, b) => (a.priority as number) - (b.priority as number)).find((r) => ruleMatches(r, req)) ??
      l.defaultRule;
    const action = [...rule.actions].sort((a, b) => (a.Order ?? 0) - (b.Order ?? 0))[0];
    if (!action) return { kind: "error", status: 503, body: "503 Service Temporarily Unavailable" };
    if (action.Type === "fixed-response") {
      const c = action.FixedResponseConfig!;
      return {
        kind: "fixed",
        status: Number(c.StatusCode),
        body: c.MessageBody ?? "",
        contentType: c.ContentType ?? "text/plain",
      };
    }
    if (action.Type === "redirect") {
      const c = action.RedirectConfig!;
      const location = `${(c.Protocol ?? "#{protocol}").replace("#{protocol}", "http").toLowerCase()}://${(c.Host ?? "#{host}").replace("#{host}", req.host ?? "localhost")}${(c.Path ?? "/#{path}").replace("/#{path}", req.path.split("?")[0] ?? "/")}`;
      return {
        kind: "fixed",
        status: c.StatusCode === "HTTP_301" ? 301 : 302,
        body: "",
        contentType: "text/html",
        headers: { location },
      };
    }
    return this.forward(action as ForwardAction);
  }

  /**
   * Weighted choice of a target group (seeded random), then a target in it: healthy targets if any,
   * else — fail-open, as AWS does when every target is unhealthy — the unhealthy ones. Targets that
   * are initial, unused or draining never receive new requests. 503 when the chosen group has none.
   */
  private forward(action: ForwardAction): Routing {
    const groups = action.TargetGroups.filter((g) => g.Weight > 0);
    const total = groups.reduce((s, g) => s + g.Weight, 0);
    const unavailable = { kind: "error" as const, status: 503 as const, body: "503 Service Temporarily Unavailable" };
    if (total === 0) return unavailable;
    let pick = this.cloud.random() * total;
    let chosen = groups[groups.length - 1]!;
    for (const g of groups) {
      pick -= g.Weight;
      if (pick < 0) {
        chosen = g;
        break;
      }
    }
    const tg = this.tgs.get(chosen.TargetGroupArn);
    if (!tg) return unavailable;
    const all = [...tg.targets.values()].filter((t) => !t.drain);
    let candidates = all.filter((t) => t.state === "healthy" || t.state === "unavailable");
    if (candidates.length === 0) candidates = all.filter((t) => t.state === "unhealthy");
    if (candidates.length === 0) return unavailable;
    let target: Target;
    const algorithm = this.attribute(tg, "load_balancing.algorithm.type");
    if (algorithm === "least_outstanding_requests") target = candidates.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    else if (algorithm === "weighted_random") target = candidates[Math.floor(this.cloud.random() * candidates.length)]!;
    else target = candidates[tg.rr++ % candidates.length]!;
    return { kind: "forward", tg, target, instance: this.ec2()?.instance(target.id) };
  }

  /**
   * Sends one request through a load balancer in process (no socket), on the cloud clock: the same
   * routing, draining, metrics and latency as the real listener. `lb` is an ARN or a name; `port`
   * picks the listener (default: the first one).
   */
  async request(lb: string, path: string, opts: { port?: number; host?: string; method?: string } = {}): Promise<AlbResponse> {
    const found = this.lb(lb);
    if (!found) throw elbError.lbNotFound();
    const l = this.listenersOf(found.arn).find((x) => opts.port === undefined || x.port === opts.port);
    if (!l) throw elbError.listenerNotFound();
    const start = this.cloud.clock.now();
    const r = this.route(l, { path, host: opts.host, method: opts.method ?? "GET" });
    if (r.kind === "error") {
      this.elbError(found, r.status);
      return { status: r.status, body: r.body, source: "elb" };
    }
    if (r.kind === "fixed") return { status: r.status, body: r.body, source: "elb" };
    const { tg, target, instance } = r;
    target.inFlight++;
    try {
      const app = instance?.state === "running" ? instance.app : undefined;
      if (!app && this.ec2()) {
        // Nothing listens on the instance: the ALB answers 502 Bad Gateway.
        this.elbError(found, 502);
        return { status: 502, body: "502 Bad Gateway", source: "elb", targetId: target.id, targetGroupArn: tg.arn };
      }
      const res = app ? await app.request(path) : { status: 200, body: "", latencyMs: 0 };
      if (res.latencyMs > 0) await this.cloud.clock.sleep(res.latencyMs);
      this.targetAnswered(found, tg, res.status, targetResponseMs(this.cloud.clock, start, String(res.latencyMs)));
      return { status: res.status, body: res.body, source: "target", targetId: target.id, targetGroupArn: tg.arn };
    } catch {
      this.elbError(found, 502);
      return { status: 502, body: "502 Bad Gateway", source: "elb", targetId: target.id, targetGroupArn: tg.arn };
    } finally {
      target.inFlight--;
    }
  }

  /**
   * Background users of a load balancer: about `rps` requests a second (a Poisson count drawn
   * per tick, from a generator of its own so the cloud's seeded sequence stays
   * the scenario's) sent in process through `request()` — the same routing and metrics as real
   * clients, cheap enough for virtual time. Only this traffic gives the canary judge evidence in
   * tests that send none themselves. Returns a function that stops them.
   */
  startUsers(lb: string, rps: number, path = "/"): () => void {
    const found = this.lb(lb);
    if (!found) throw elbError.lbNotFound();
    this.stopUsers(found.arn);
    const state: { timer?: ReturnType<Cloud["clock"]["setTimeout"]> } = {};
    this.users.set(found.arn, state);
    const rand = seededRandom(0x9e3779b9 ^ Math.round(rps * 1000));
    // Batched every `elbv2.usersTickMs` (5 s): fewer clock wake-ups in virtual time, the same requests per metric period.
    const every = this.cloud.setting("elbv2.usersTickMs", 5_000);
    const tick = () => {
      const n = poisson((rps * every) / 1000, rand);
      for (let i = 0; i < n; i++) this.request(found.arn, path).catch(() => undefined);
      state.timer = this.cloud.clock.setTimeout(tick, every);
    };
    state.timer = this.cloud.clock.setTimeout(tick, every);
    return () => this.stopUsers(found.arn);
  }

  stopUsers(lbArn: string): void {
    const u = this.users.get(lbArn);
    if (u) this.cloud.clock.clearTimeout(u.timer);
    this.users.delete(lbArn);
  }

  // ---- metrics (namespace AWS/ApplicationELB) ----

  private cw(): CloudWatchApi | undefined {
    return this.cloud.maybeBackend<CloudWatchApi>("monitoring");
  }

  private put(metricName: string, dimensions: Record<string, string>, value: number, unit: string): void {
    this.cw()?.putDatapoint({ namespace: "AWS/ApplicationELB", metricName, dimensions, value, unit });
  }

  /** A target answered: RequestCount, HTTPCode_Target_nXX_Count and TargetResponseTime. */
  targetAnswered(lb: LoadBalancer, tg: TargetGroup, status: number, latencyMs: number): void {
    const dimSets: Record<string, string>[] = [
      { LoadBalancer: this.lbDimension(lb) },
      { LoadBalancer: this.lbDimension(lb), TargetGroup: this.tgDimension(tg) },
      { TargetGroup: this.tgDimension(tg) },
    ];
    const klass = Math.floor(status / 100);
    for (const d of dimSets) {
      this.put("RequestCount", d, 1, "Count");
      if (klass >= 2 && klass <= 5) this.put(`HTTPCode_Target_${klass}XX_Count`, d, 1, "Count");
      this.put("TargetResponseTime", d, latencyMs / 1000, "Seconds");
    }
  }

  /** The load balancer answered by itself (no target, or the target failed): HTTPCode_ELB_5XX_Count. */
  elbError(lb: LoadBalancer, status: number): void {
    const d = { LoadBalancer: this.lbDimension(lb) };
    if (status >= 500) {
      this.put("HTTPCode_ELB_5XX_Count", d, 1, "Count");
      if ([500, 502, 503, 504].includes(status)) this.put(`HTTPCode_ELB_${status}_Count`, d, 1, "Count");
    }
  }

  /** HealthyHostCount / UnHealthyHostCount per used target group, every minute while any group is used. */
  private scheduleHostCounts(): void {
    if (this.hostCountTimer || ![...this.tgs.values()].some((tg) => this.inUse(tg))) return;
    const period = this.cloud.setting("elbv2.hostCountPeriodMs", 60_000);
    const now = this.cloud.clock.now();
    this.hostCountTimer = this.cloud.clock.setTimeout(
      () => {
        this.hostCountTimer = undefined;
        for (const tg of this.tgs.values()) {
          const lbArn = this.lbOfTargetGroup(tg.arn);
          const lb = lbArn ? this.lbs.get(lbArn) : undefined;
          if (!lb) continue;
          const targets = [...tg.targets.values()];
          const d = { LoadBalancer: this.lbDimension(lb), TargetGroup: this.tgDimension(tg) };
          this.put("HealthyHostCount", d, targets.filter((t) => t.state === "healthy").length, "Count");
          this.put("UnHealthyHostCount", d, targets.filter((t) => t.state === "unhealthy").length, "Count");
        }
        this.scheduleHostCounts();
      },
      period - (now % period),
    );
  }

  // ---- lifecycle ----

  async stop(): Promise<void> {
    this.cloud.bus.off("instance-state", this.onInstanceState);
    this.cloud.clock.clearTimeout(this.hostCountTimer);
    for (const arn of [...this.users.keys()]) this.stopUsers(arn);
    for (const tg of this.tgs.values()) for (const t of tg.targets.values()) this.bump(t);
    for (const lb of this.lbs.values()) this.cloud.clock.clearTimeout(lb.timer);
    await this.servers?.closeAll();
  }

  snapshot(): unknown {
    return {
      loadBalancers: [...this.lbs.values()].map((lb) => ({
        arn: lb.arn,
        name: lb.name,
        state: lb.state,
        dnsName: lb.dnsName,
        listeners: this.listenersOf(lb.arn).map((l) => ({
          arn: l.arn,
          port: l.port,
          url: l.url,
          defaultActions: l.defaultRule.actions.map(summarizeAction(this)),
          rules: l.rules.map((r) => ({
            priority: r.priority,
            conditions: r.conditions,
            actions: r.actions.map(summarizeAction(this)),
          })),
        })),
      })),
      targetGroups: [...this.tgs.values()].map((tg) => ({
        arn: tg.arn,
        name: tg.name,
        loadBalancer: this.lbOfTargetGroup(tg.arn),
        deregistrationDelaySeconds: Number(this.attribute(tg, "deregistration_delay.timeout_seconds")),
        targets: [...tg.targets.values()].map((t) => ({
          id: t.id,
          port: t.port,
          state: t.state,
          reason: t.reason,
          inFlight: t.inFlight,
          ...(t.drain ? { drainingUntil: new Date(t.drain.until).toISOString() } : {}),
        })),
      })),
    };
  }
}

function summarizeAction(b: ElbBackend): (a: ListenerAction) => unknown {
  return (a) =>
    a.Type === "forward"
      ? {
          type: "forward",
          targetGroups: a.TargetGroups.map((g) => ({
            name: b.tgs.get(g.TargetGroupArn)?.name,
            arn: g.TargetGroupArn,
            weight: g.Weight,
          })),
        }
      : { type: a.Type };
}

/** ALB wildcard match: `*` any run of characters, `?` exactly one. */
export function wildcard(pattern: string, value: string, caseInsensitive = false): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
    caseInsensitive ? "i" : "",
  );
  return re.test(value);
}

/** All conditions must hold; any value of a condition may match (ALB semantics). */
export function ruleMatches(r: Rule, req: { path: string; host?: string; method?: string }): boolean {
  const path = req.path.split("?")[0] ?? "/";
  const host = (req.host ?? "").replace(/:\d+$/, "");
  return r.conditions.every((c) => {
    if (c.Field === "path-pattern") return c.Values.some((v) => wildcard(v, path));
    if (c.Field === "host-header") return c.Values.some((v) => wildcard(v, host, true));
    if (c.Field === "http-request-method") return c.Values.includes((req.method ?? "GET").toUpperCase());
    return false;
  });
}
