/**
 * Records, on the cloud's own clock, the AWS-side moments a deployment waits for: instance launch,
 * SSM agent registration, Run Command requests and completions, AMI state changes, Auto Scaling
 * launches and terminations, Auto Scaling and traffic API calls, and target-group health. The
 * critical path of a deployment (see {@link criticalPath} and docs/benchmarks.md) is computed from
 * these observations, not from default settings.
 */
import type { Cloud, CloudEvent } from "../local/cloud/cloud.ts";
import type { InstanceStateEvent } from "../local/cloud/contracts.ts";
import type { ElbBackend } from "../local/cloud/services/elbv2/backend.ts";
import type { SsmBackend } from "../local/cloud/services/ssm/index.ts";
import type { TimerHandle } from "../lib/clock.ts";

/** One Run Command command as seen through its status-change events. */
export interface CommandSeen {
  id: string;
  requestedAt: number;
  /** First terminal status (Success, Failed, TimedOut, Cancelled) and when it was emitted. */
  status?: string;
  doneAt?: number;
  /** Instances the command targets (from the event's resources). */
  instances: string[];
}

/** The raw observations. Times are epoch milliseconds of the cloud clock. */
export interface Timeline {
  /** Instance id → its launch time (RunInstances or an Auto Scaling launch). */
  launched: Map<string, number>;
  /** Instance id → when its SSM agent registered (first sample that saw it registered). */
  agentOnline: Map<string, number>;
  commands: Map<string, CommandSeen>;
  /** AMI id → state → first time. */
  images: Map<string, Map<string, number>>;
  /** Auto Scaling group name → instance id → InService time. */
  inService: Map<string, Map<string, number>>;
  /** Auto Scaling group name → instance id → Terminate Successful time. */
  terminated: Map<string, Map<string, number>>;
  /** API calls that start a wait: `service:Action` → times of successful calls. */
  calls: Map<string, number[]>;
  /** Target group ARN → first time its healthy count reached n, by n. */
  healthyReached: Map<string, Map<number, number>>;
}

export interface Recorder {
  timeline: Timeline;
  /** Stops sampling and detaches every listener. */
  stop(): void;
}

const TERMINAL = new Set(["Success", "Failed", "TimedOut", "Cancelled", "DeliveryTimedOut", "ExecutionTimedOut"]);
const WATCHED_CALLS = new Set([
  "ec2:CreateImage",
  "ec2:RunInstances",
  "autoscaling:CreateAutoScalingGroup",
  "autoscaling:UpdateAutoScalingGroup",
]);

/**
 * Starts recording. Target-group health and agent registration have no AWS event, so they are
 * sampled every `sampleMs` of cloud time (1 s by default: the figures are exact to that resolution).
 */
export function record(cloud: Cloud, opts: { targetGroups: string[]; sampleMs?: number }): Recorder {
  const t: Timeline = {
    launched: new Map(),
    agentOnline: new Map(),
    commands: new Map(),
    images: new Map(),
    inService: new Map(),
    terminated: new Map(),
    calls: new Map(),
    healthyReached: new Map(opts.targetGroups.map((arn) => [arn, new Map()])),
  };
  const now = () => cloud.clock.now();
  const awaitingAgent = new Set<string>();
  const startedAt = now();

  const onState = (ev: InstanceStateEvent) => {
    // Instances are created `pending` (no transition event): the first event is pending → running.
    if (!t.launched.has(ev.instance.id) && ev.instance.launchTime.getTime() >= startedAt) {
      t.launched.set(ev.instance.id, ev.instance.launchTime.getTime());
      awaitingAgent.add(ev.instance.id);
    }
  };
  const onEvent = (ev: CloudEvent) => {
    if (ev.source === "aws.ssm" && ev.detailType === "EC2 Command Status-change Notification") {
      const id = String(ev.detail["command-id"]);
      let c = t.commands.get(id);
      if (!c) {
        c = {
          id,
          requestedAt: Date.parse(String(ev.detail["requested-date-time"])),
          instances: (ev.resources ?? []).map((r) => r.split("/").pop() ?? r),
        };
        t.commands.set(id, c);
      }
      const status = String(ev.detail.status);
      if (!c.doneAt && TERMINAL.has(status)) {
        c.status = status;
        c.doneAt = now();
      }
    } else if (ev.source === "aws.ec2" && ev.detailType === "EC2 AMI State Change") {
      const id = String(ev.detail.ImageId);
      const states = t.images.get(id) ?? new Map<string, number>();
      t.images.set(id, states);
      const state = String(ev.detail.State);
      if (!states.has(state)) states.set(state, now());
    } else if (
      ev.source === "aws.autoscaling" &&
      (ev.detailType === "EC2 Instance Launch Successful" || ev.detailType === "EC2 Instance Terminate Successful")
    ) {
      const group = groupName(ev.resources?.[0]);
      const inst = ev.resources?.[1];
      if (!group || !inst) return;
      const into = ev.detailType === "EC2 Instance Launch Successful" ? t.inService : t.terminated;
      const m = into.get(group) ?? new Map<string, number>();
      into.set(group, m);
      if (!m.has(inst)) m.set(inst, now());
    }
  };
  const unobserve = cloud.router.observe((call) => {
    const key = `${call.service}:${call.action}`;
    if (call.error || !WATCHED_CALLS.has(key)) return;
    const list = t.calls.get(key) ?? [];
    list.push(now());
    t.calls.set(key, list);
  });
  cloud.bus.on("instance-state", onState);
  cloud.bus.on("event", onEvent);

  const ssm = cloud.backend<SsmBackend & { definition: never }>("ssm");
  const elb = cloud.backend<ElbBackend & { definition: never }>("elasticloadbalancing");
  const every = opts.sampleMs ?? 1_000;
  let timer: TimerHandle | undefined;
  let stopped = false;
  const sample = () => {
    if (stopped) return;
    const at = now();
    for (const id of awaitingAgent) {
      if (ssm.agents.isRegistered(id)) {
        t.agentOnline.set(id, at);
        awaitingAgent.delete(id);
      }
    }
    for (const [arn, reached] of t.healthyReached) {
      const tg = elb.tgs.get(arn);
      if (!tg) continue;
      let healthy = 0;
      for (const target of tg.targets.values()) if (target.state === "healthy") healthy++;
      for (let n = 1; n <= healthy; n++) if (!reached.has(n)) reached.set(n, at);
    }
    timer = cloud.clock.setTimeout(sample, every);
  };
  sample();
  return {
    timeline: t,
    stop() {
      stopped = true;
      cloud.clock.clearTimeout(timer);
      unobserve();
      cloud.bus.off("instance-state", onState);
      cloud.bus.off("event", onEvent);
    },
  };
}

/** Commands requested at the same instant, merged: earliest request, last completion, all instances. */
export function batchCommands(commands: CommandSeen[]): CommandSeen[] {
  const sorted = [...commands].sort((a, b) => a.requestedAt - b.requestedAt);
  const out: CommandSeen[] = [];
  for (const c of sorted) {
    const last = out.at(-1);
    if (last && last.requestedAt === c.requestedAt) {
      last.id += `,${c.id}`;
      last.instances.push(...c.instances);
      if (c.status && c.status !== "Success") last.status = c.status;
      last.doneAt = last.doneAt === undefined || c.doneAt === undefined ? undefined : Math.max(last.doneAt, c.doneAt);
    } else out.push({ ...c, instances: [...c.instances] });
  }
  return out;
}

function groupName(arn: string | undefined): string | undefined {
  const m = /autoScalingGroupName\/(.+)$/.exec(arn ?? "");
  return m?.[1];
}

/** A state of the execution as the history shows it: entered and exited times. */
export interface StateVisit {
  name: string;
  enteredAt: number;
  exitedAt?: number;
}

/** One segment of the critical path: an AWS-side wait kiln cannot avoid, from → to. */
export interface Segment {
  name: string;
  /** What the segment measures, for the report. */
  what: string;
  ms: number;
}

export interface CriticalPath {
  bake: Segment[];
  roll: Segment[];
  bakeMs: number;
  rollMs: number;
  totalMs: number;
}

export interface PathContext {
  timeline: Timeline;
  visits: StateVisit[];
  /** The pre-deployment (blue) Auto Scaling group and the target group green registers in. */
  blueGroup: string;
  greenTargetGroup: string;
  /** When the roll phase started (RollPhase entered). */
  rollStartedAt: number;
  /** Green's desired capacity. */
  greenDesired: number;
}

/**
 * The critical path of one deployment, from observations (see docs/benchmarks.md for the
 * definition). Throws when an expected observation is missing, rather than guessing a default.
 */
export function criticalPath(ctx: PathContext): CriticalPath {
  const t = ctx.timeline;
  const inRoll = (at: number) => at >= ctx.rollStartedAt;
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`critical path: no observation of ${what}`);
    return v;
  };
  // One step may send several commands at once (SendCommand takes ≤ 50 instance ids): commands
  // requested at the same instant are one batch, done when its last command is.
  const batches = batchCommands([...t.commands.values()]);
  const bakeCommands = batches.filter((c) => !inRoll(c.requestedAt));
  const rollCommands = batches.filter((c) => inRoll(c.requestedAt));
  const span = (c: CommandSeen | undefined, what: string) => {
    const cmd = need(c, what);
    return need(cmd.doneAt, `${what} completion`) - cmd.requestedAt;
  };

  const bake: Segment[] = [];
  const reused = !ctx.visits.some((v) => v.name === "LaunchBuilder");
  if (!reused) {
    const builders = [...t.launched.entries()].filter(([, at]) => !inRoll(at));
    const [builder, launchedAt] = need(builders.at(-1), "the builder launch");
    bake.push({
      name: "builder",
      what: "RunInstances → builder's SSM agent Online (boot + agent)",
      ms: need(t.agentOnline.get(builder), "builder agent") - launchedAt,
    });
    bake.push({ name: "install", what: "install command sent → Success", ms: span(bakeCommands[0], "install command") });
    bake.push({ name: "imageTest", what: "image-test command sent → Success", ms: span(bakeCommands[1], "image-test command") });
    const createdAt = need(t.calls.get("ec2:CreateImage")?.at(-1), "CreateImage");
    const available = [...t.images.values()]
      .map((s) => s.get("available"))
      .filter((x): x is number => x !== undefined && x >= createdAt);
    bake.push({ name: "image", what: "CreateImage → AMI available", ms: need(available[0], "AMI available") - createdAt });
  }

  const roll: Segment[] = [];
  const createdGroupAt = need(t.calls.get("autoscaling:CreateAutoScalingGroup")?.find(inRoll), "green CreateAutoScalingGroup");
  const greenGroups = [...t.inService.keys()].filter((g) => g !== ctx.blueGroup);
  const greenInService = new Map<string, number>();
  for (const g of greenGroups) for (const [id, at] of t.inService.get(g) ?? []) if (inRoll(at)) greenInService.set(id, at);
  if (greenInService.size < ctx.greenDesired)
    throw new Error(`critical path: ${greenInService.size}/${ctx.greenDesired} green instances seen InService`);
  let readyAt = 0;
  for (const [id, at] of greenInService) readyAt = Math.max(readyAt, at, need(t.agentOnline.get(id), `agent of ${id}`));
  roll.push({
    name: "greenReady",
    what: "CreateAutoScalingGroup → every green instance InService with SSM Online",
    ms: readyAt - createdGroupAt,
  });
  const serviceIn = rollCommands[0];
  roll.push({
    name: "serviceIn",
    what: "smoke test + service-in command sent → Success",
    ms: span(serviceIn, "service-in command"),
  });
  const healthyAt = need(t.healthyReached.get(ctx.greenTargetGroup)?.get(ctx.greenDesired), "green targets all healthy");
  roll.push({
    name: "healthy",
    what: "service-in done → all green targets healthy (health-check interval × threshold)",
    ms: Math.max(0, healthyAt - need(serviceIn?.doneAt, "service-in done")),
  });
  const bakes = ctx.visits.filter((v) => v.name === "BakeCanary");
  roll.push({
    name: "canaryBake",
    what: `Σ canary bake waits (${bakes.length} steps, from history)`,
    ms: bakes.reduce((s, v) => s + (need(v.exitedAt, "BakeCanary exit") - v.enteredAt), 0),
  });
  const serviceOut = rollCommands.find((c) => c.instances.every((id) => !greenInService.has(id)) && c !== serviceIn);
  roll.push({
    name: "serviceOut",
    what: "service-out command on blue sent → Success",
    ms: span(serviceOut, "service-out command"),
  });
  const scaledAt = need(
    t.calls.get("autoscaling:UpdateAutoScalingGroup")?.find((at) => at >= need(serviceOut?.doneAt, "service-out done")),
    "blue scale-in",
  );
  const gone = [...(t.terminated.get(ctx.blueGroup)?.values() ?? [])].filter((at) => at >= scaledAt);
  roll.push({
    name: "retire",
    what: "blue scaled to 0 → last blue instance drained and terminated",
    ms: Math.max(...need(gone.length ? gone : undefined, "blue terminations")) - scaledAt,
  });

  const bakeMs = bake.reduce((s, x) => s + x.ms, 0);
  const rollMs = roll.reduce((s, x) => s + x.ms, 0);
  return { bake, roll, bakeMs, rollMs, totalMs: bakeMs + rollMs };
}
