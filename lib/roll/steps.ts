/**
 * The roll phase: green fleet → readiness → service-in → canary shift → retire blue.
 * Each exported function is one state of `state-machines/deploy.asl.json` and one handler in
 * `functions/` of the same (kebab-case) name. Every step is a reconciler: it reads the actual state
 * and converges, so a retry, a crash or a redrive gives the same result as one clean run.
 */
import {
  type AutoScalingClient,
  type AutoScalingGroup,
  CreateOrUpdateTagsCommand,
  ResumeProcessesCommand,
  UpdateAutoScalingGroupCommand,
} from "@aws-sdk/client-auto-scaling";
import { type CloudWatchClient, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import {
  CreateTagsCommand,
  DeleteLaunchTemplateVersionsCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  type EC2Client,
} from "@aws-sdk/client-ec2";
import {
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  DescribeTargetGroupsCommand,
  type ElasticLoadBalancingV2Client,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { ListCommandsCommand, type SSMClient } from "@aws-sdk/client-ssm";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { Attempt } from "../bake/types.ts";
import { checkDeadline, waitStart } from "../bake/waits.ts";
import type { Clock } from "../clock.ts";
import { assertHolder, type HolderCheck } from "../lock/holder.ts";
import { StepFailedError, VerificationFailedError } from "../errors.ts";
import { unitKey } from "../names.ts";
import {
  type Capacity,
  ensureGreenGroup,
  deleteGroup,
  describeGroup,
  fleetReadiness,
  KILN_TAGS,
  serviceGroups,
  setCapacity,
  tagValue,
} from "./fleet.ts";
import type { JudgeSettings } from "./judge.ts";
import { runScriptStep } from "./run.ts";
import { readWeights, setWeights, type TrafficRef, targetGroupHealth, type WeightedTargetGroup } from "./traffic.ts";

export interface RollDeps {
  ec2: EC2Client;
  autoscaling: AutoScalingClient;
  elbv2: ElasticLoadBalancingV2Client;
  ssm: SSMClient;
  cloudwatch: CloudWatchClient;
  dynamodb?: DynamoDBDocumentClient;
  clock: Clock;
  /**
   * The service lock (`KILN_LOCK_TABLE`). When given, every step that changes traffic or the fleet
   * first checks that this execution still holds it: a redrive of a deployment that a newer one or
   * an abort superseded must not touch what that one now owns (I6, and I1 through it).
   */
  lock?: HolderCheck;
}

/** Fails the step with `kiln.Superseded` unless this execution holds its environment's lock (I6, I7). */
export function assertHoldsLock(
  plan: Pick<RollPlan, "service" | "environment" | "executionName">,
  deps: Pick<RollDeps, "lock">,
): Promise<void> {
  return assertHolder(
    { service: plan.service, environment: plan.environment ?? "", executionName: plan.executionName },
    deps.lock,
  );
}

export interface CanaryStep {
  weight: number;
  bakeSeconds: number;
}

/** The roll settings of a service (from kiln.config.yaml). */
export interface RollSettings {
  listener: { arn?: string; loadBalancerName?: string; port?: number };
  ruleArn?: string;
  /** The service's two target groups (names or ARNs); blue is whichever carries traffic. */
  targetGroups: [string, string];
  minHealthyPercent: number;
  canary: CanaryStep[];
  alarms: string[];
  /** The canary judge (absent in plans made before it: the defaults apply). */
  judge?: JudgeSettings;
  scripts: { smokeTest: string; serviceIn: string; serviceOut: string };
  rollbackWindowSeconds: number;
  approval: { required: boolean; timeoutSeconds: number };
  /** Deadlines of green's waits (absent in plans made before them: the defaults apply). */
  timeouts?: { greenReadySeconds: number; greenHealthySeconds: number };
}

const DEFAULT_GREEN_TIMEOUTS = { greenReadySeconds: 1_800, greenHealthySeconds: 900 };

/**
 * Fails the wait with `kiln.Timeout` once green has had longer than `seconds` since it was created
 * (or since this attempt began: a redrive gets a fresh deadline). Without it a green that never
 * gets ready or healthy was polled until the execution's history was full.
 */
function checkGreenDeadline(
  plan: RollPlan,
  g: AutoScalingGroup | undefined,
  attempt: Attempt | undefined,
  seconds: number,
  what: string,
  deps: Pick<RollDeps, "clock">,
): void {
  const start = waitStart(g?.CreatedTime ? new Date(g.CreatedTime).getTime() : undefined, attempt);
  if (start > 0) checkDeadline(deps.clock.now(), start, seconds, `${what}; green ${greenName(plan)} is kept for inspection`);
}

/** What the roll phase carries from state to state (`$.roll`). */
export interface RollPlan {
  service: string;
  environment?: string;
  executionName: string;
  commit: string;
  imageId: string;
  traffic: TrafficRef;
  blue: {
    asgName: string;
    targetGroupArn: string;
    capacity: Capacity;
    launchTemplateId: string;
    launchTemplateVersion: string;
    commit?: string;
  };
  green: { targetGroupArn: string; asgName?: string; launchTemplateVersion?: number };
  /** Healthy blue targets before the deployment touched anything (I2 baseline). */
  healthyBefore: number;
  /** Healthy blue+green capacity must never drop below this (I2). */
  floor: number;
  minHealthyPercent: number;
  steps: CanaryStep[];
  alarms: string[];
  judge?: JudgeSettings;
  scripts: RollSettings["scripts"];
  rollbackWindowSeconds: number;
  approval: { required: boolean; timeoutSeconds: number };
  /** Deadlines of green's waits (absent in plans made before them: the defaults apply). */
  timeouts?: { greenReadySeconds: number; greenHealthySeconds: number };
  env: Record<string, string>;
}

// ───────────────────────────── PlanRoll ─────────────────────────────

export interface PlanRollInput {
  service: string;
  environment?: string;
  executionName: string;
  commit: string;
  imageId: string;
  settings: RollSettings;
  env?: Record<string, string>;
}

/**
 * Resolves the service's listener and target groups, finds the live (blue) fleet and its healthy
 * count, and fixes the capacity floor. Changes nothing.
 */
export async function planRoll(input: PlanRollInput, deps: RollDeps): Promise<RollPlan> {
  const s = input.settings;
  const { traffic, weightOf, live: blueTg, idle: greenTg } = await liveTargetGroups(s, deps.elbv2);
  const listenerArn = traffic.listenerArn;
  if (weightOf(blueTg) === 0) {
    throw new StepFailedError(
      `neither target group of ${input.service} (${s.targetGroups.join(", ")}) takes traffic on ${listenerArn}; point the listener's forward action at one of them`,
    );
  }
  const groups = await serviceGroups(deps.autoscaling, input.service, input.environment);
  const blue = groups.find(
    (g) =>
      (g.TargetGroupARNs ?? []).includes(blueTg) &&
      (g.DesiredCapacity ?? 0) > 0 &&
      tagValue(g.Tags, KILN_TAGS.role) !== "retired",
  );
  if (!blue) {
    throw new StepFailedError(
      `no Auto Scaling group tagged ${KILN_TAGS.service}=${input.service} serves target group ${blueTg}; kiln rolls an existing fleet (see docs/deploy-to-aws.md, "first deployment")`,
    );
  }
  const lt = blue.LaunchTemplate ?? blue.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
  if (!lt?.LaunchTemplateId && !lt?.LaunchTemplateName) {
    throw new StepFailedError(
      `blue group ${blue.AutoScalingGroupName} has no launch template; kiln needs one to make the green version from`,
    );
  }
  const alarms = await alarmStates(deps.cloudwatch, s.alarms);
  const missing = Object.keys(alarms).filter((n) => alarms[n] === "MISSING");
  if (missing.length > 0) {
    throw new StepFailedError(
      `alarm ${missing.join(", ")} of ${input.service} does not exist: create it or remove it from the service's alarms in kiln.config.yaml`,
    );
  }
  const inst = blue.Instances?.[0];
  const health = await targetGroupHealth(deps.elbv2, blueTg);
  const healthyBefore = health.healthy.length;
  return {
    service: input.service,
    environment: input.environment,
    executionName: input.executionName,
    commit: input.commit,
    imageId: input.imageId,
    traffic,
    blue: {
      asgName: blue.AutoScalingGroupName!,
      targetGroupArn: blueTg,
      capacity: { min: blue.MinSize ?? 0, max: blue.MaxSize ?? 0, desired: blue.DesiredCapacity ?? 0 },
      launchTemplateId: lt.LaunchTemplateId ?? (await launchTemplateIdByName(deps.ec2, lt.LaunchTemplateName!)),
      launchTemplateVersion: inst?.LaunchTemplate?.Version ?? lt.Version ?? "$Default",
      commit: tagValue(blue.Tags, KILN_TAGS.commit),
    },
    green: { targetGroupArn: greenTg },
    healthyBefore,
    floor: Math.ceil((healthyBefore * s.minHealthyPercent) / 100),
    minHealthyPercent: s.minHealthyPercent,
    steps: s.canary,
    alarms: s.alarms,
    ...(s.judge ? { judge: s.judge } : {}),
    scripts: s.scripts,
    rollbackWindowSeconds: s.rollbackWindowSeconds,
    approval: s.approval,
    ...(s.timeouts ? { timeouts: s.timeouts } : {}),
    env: input.env ?? {},
  };
}

/**
 * The service's listener (or rule) and its two target groups as they stand: the live one carries the
 * most traffic, the idle one is the other.
 */
export async function liveTargetGroups(
  s: Pick<RollSettings, "listener" | "ruleArn" | "targetGroups">,
  elbv2: ElasticLoadBalancingV2Client,
): Promise<{
  traffic: TrafficRef;
  tgArns: string[];
  weights: WeightedTargetGroup[];
  weightOf: (arn: string) => number;
  live: string;
  idle: string;
}> {
  const listenerArn = await resolveListener(elbv2, s.listener);
  const traffic: TrafficRef = { listenerArn, ...(s.ruleArn ? { ruleArn: s.ruleArn } : {}) };
  const tgArns = await resolveTargetGroups(elbv2, s.targetGroups);
  const weights = await readWeights(elbv2, traffic);
  const weightOf = (arn: string) => weights.find((w) => w.arn === arn)?.weight ?? 0;
  const [a, b] = tgArns as [string, string];
  const live = weightOf(b) > weightOf(a) ? b : a;
  return { traffic, tgArns, weights, weightOf, live, idle: live === a ? b : a };
}

async function launchTemplateIdByName(ec2: EC2Client, name: string): Promise<string> {
  const r = await ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [name] }));
  const id = r.LaunchTemplates?.[0]?.LaunchTemplateId;
  if (!id) throw new StepFailedError(`launch template ${name} not found`);
  return id;
}

/** The listener ARN of the roll settings (given, or found by load balancer name and port). */
export async function resolveListener(elbv2: ElasticLoadBalancingV2Client, l: RollSettings["listener"]): Promise<string> {
  if (l.arn) return l.arn;
  if (!l.loadBalancerName) throw new StepFailedError("roll settings need listener.arn or listener.loadBalancerName");
  const lb = await elbv2.send(new DescribeLoadBalancersCommand({ Names: [l.loadBalancerName] }));
  const lbArn = lb.LoadBalancers?.[0]?.LoadBalancerArn;
  if (!lbArn) throw new StepFailedError(`load balancer ${l.loadBalancerName} not found`);
  const ls = await elbv2.send(new DescribeListenersCommand({ LoadBalancerArn: lbArn }));
  const listener = (ls.Listeners ?? []).find((x) => l.port === undefined || x.Port === l.port);
  if (!listener?.ListenerArn)
    throw new StepFailedError(`load balancer ${l.loadBalancerName} has no listener on port ${l.port ?? "(any)"}`);
  return listener.ListenerArn;
}

/** The ARNs of the service's two target groups, given by name or ARN, in the given order. */
export async function resolveTargetGroups(elbv2: ElasticLoadBalancingV2Client, tgs: [string, string]): Promise<string[]> {
  const arns = tgs.filter((t) => t.startsWith("arn:"));
  const names = tgs.filter((t) => !t.startsWith("arn:"));
  if (names.length === 0) return arns;
  const r = await elbv2.send(new DescribeTargetGroupsCommand({ Names: names }));
  const byName = new Map((r.TargetGroups ?? []).map((t) => [t.TargetGroupName!, t.TargetGroupArn!]));
  return tgs.map((t) => (t.startsWith("arn:") ? t : (byName.get(t) ?? "")));
}

// ───────────────────────────── CreateGreenFleet ─────────────────────────────

/**
 * New launch-template version + green group in the idle target group; the idle group is put in the
 * listener's forward action at weight 0 (traffic unchanged). A retired fleet left in the idle
 * target group by an earlier deployment is superseded: it is deleted first.
 */
export async function createGreenFleet(plan: RollPlan, deps: RollDeps): Promise<RollPlan> {
  await assertHoldsLock(plan, deps);
  const groups = await serviceGroups(deps.autoscaling, plan.service, plan.environment);
  const result = await ensureGreenGroup(
    {
      service: plan.service,
      ...(plan.environment ? { environment: plan.environment } : {}),
      executionName: plan.executionName,
      commit: plan.commit,
      imageId: plan.imageId,
      blue: {
        asgName: plan.blue.asgName,
        capacity: plan.blue.capacity,
        launchTemplateId: plan.blue.launchTemplateId,
        launchTemplateVersion: plan.blue.launchTemplateVersion,
      },
      greenTargetGroupArn: plan.green.targetGroupArn,
    },
    deps,
  );
  const kept: typeof groups = [];
  for (const g of groups) {
    const stale =
      g.AutoScalingGroupName !== result.asgName &&
      g.AutoScalingGroupName !== plan.blue.asgName &&
      (g.TargetGroupARNs ?? []).includes(plan.green.targetGroupArn);
    if (stale) await deleteGroup(deps.autoscaling, g.AutoScalingGroupName!);
    else kept.push(g);
  }
  await pruneLaunchTemplateVersions(plan, kept, result.launchTemplateVersion, deps);
  const weights = await readWeights(deps.elbv2, plan.traffic);
  if (!weights.some((w) => w.arn === plan.green.targetGroupArn)) {
    await setWeights(deps.elbv2, plan.traffic, blueOnly(plan));
  }
  return { ...plan, green: { ...plan.green, asgName: result.asgName, launchTemplateVersion: result.launchTemplateVersion } };
}

/**
 * Deletes the launch-template versions kiln made (description `kiln <execution>`) that no group of
 * the service uses any more — those of superseded retired fleets (I5: nothing kiln made is left
 * behind). A sweep rather than "the version of the group just deleted", so a crash in between
 * leaks nothing: the next attempt finds the orphan.
 */
async function pruneLaunchTemplateVersions(
  plan: RollPlan,
  groups: { LaunchTemplate?: { LaunchTemplateId?: string; Version?: string } }[],
  greenVersion: number,
  deps: RollDeps,
): Promise<void> {
  const used = new Set(
    groups.filter((g) => g.LaunchTemplate?.LaunchTemplateId === plan.blue.launchTemplateId).map((g) => g.LaunchTemplate?.Version),
  );
  used.add(String(greenVersion));
  const orphans: string[] = [];
  let NextToken: string | undefined;
  do {
    const r = await deps.ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: plan.blue.launchTemplateId, NextToken }),
    );
    for (const v of r.LaunchTemplateVersions ?? []) {
      if (v.VersionDescription?.startsWith("kiln ") && !v.DefaultVersion && !used.has(String(v.VersionNumber)))
        orphans.push(String(v.VersionNumber));
    }
    NextToken = r.NextToken;
  } while (NextToken);
  if (orphans.length > 0) {
    await deps.ec2.send(
      new DeleteLaunchTemplateVersionsCommand({ LaunchTemplateId: plan.blue.launchTemplateId, Versions: orphans }),
    );
  }
}

/** All traffic on blue, green kept in the forward action at weight 0. */
export function blueOnly(plan: RollPlan): WeightedTargetGroup[] {
  return [
    { arn: plan.blue.targetGroupArn, weight: 100 },
    { arn: plan.green.targetGroupArn, weight: 0 },
  ];
}

function greenName(plan: RollPlan): string {
  if (!plan.green.asgName) throw new StepFailedError("the roll plan has no green group yet: CreateGreenFleet must run first");
  return plan.green.asgName;
}

// ───────────────────────────── WaitGreenReady ─────────────────────────────

export interface StatusResult {
  ready: boolean;
  seen: Record<string, unknown>;
}

/** Green is ready when its desired instances are InService with SSM online. Blue's capacity changes are carried over. */
export async function waitGreenReady(plan: RollPlan, deps: RollDeps, attempt?: Attempt): Promise<StatusResult> {
  await assertHoldsLock(plan, deps);
  const carried = await carryCapacity(plan, deps);
  const r = await fleetReadiness(greenName(plan), deps);
  if (!r.ready) {
    const t = plan.timeouts ?? DEFAULT_GREEN_TIMEOUTS;
    checkGreenDeadline(
      plan,
      await describeGroup(deps.autoscaling, greenName(plan)),
      attempt,
      t.greenReadySeconds,
      `WaitGreenReady: ${r.inService.length}/${r.desired} green instances InService, ${r.online.length} with SSM online`,
      deps,
    );
  }
  return {
    ready: r.ready,
    seen: {
      desired: r.desired,
      inService: r.inService.length,
      ssmOnline: r.online.length,
      pending: r.pending,
      carriedCapacity: carried,
    },
  };
}

/**
 * Carries blue's capacity increases to green while blue still serves (I2 under autoscaling).
 * Decreases are not carried: green never shrinks while it may take traffic (I4); the group's own
 * scaling policies take over once the deployment is done.
 */
async function carryCapacity(plan: RollPlan, deps: RollDeps): Promise<Capacity | undefined> {
  const blue = await describeGroup(deps.autoscaling, plan.blue.asgName);
  const green = await describeGroup(deps.autoscaling, greenName(plan));
  if (!blue || !green) return undefined;
  if ((blue.DesiredCapacity ?? 0) === 0) return undefined; // blue is being retired
  const want: Capacity = {
    min: Math.max(blue.MinSize ?? 0, green.MinSize ?? 0),
    max: Math.max(blue.MaxSize ?? 0, green.MaxSize ?? 0),
    desired: Math.max(blue.DesiredCapacity ?? 0, green.DesiredCapacity ?? 0),
  };
  if (green.DesiredCapacity === want.desired && green.MinSize === want.min && green.MaxSize === want.max) return undefined;
  await setCapacity(deps.autoscaling, greenName(plan), want);
  return want;
}

// ───────────────────────────── ServiceInGreen ─────────────────────────────

export interface CommandStepInput {
  plan: RollPlan;
  commandId?: string;
  instanceIds?: string[];
}

export interface CommandStepResult {
  status: "pending" | "succeeded";
  commandId?: string;
  instanceIds: string[];
  seen: Record<string, unknown>;
}

/**
 * Smoke test, then service-in, on every InService green instance not yet marked ready for this
 * execution. Instances that join green later (scale-out) go through the same path in VerifyCanary,
 * so no instance takes traffic unchecked (I3): the app's health check fails until service-in.
 */
export async function serviceInGreen(input: CommandStepInput, deps: RollDeps): Promise<CommandStepResult> {
  const { plan } = input;
  await assertHoldsLock(plan, deps);
  let ids = input.instanceIds;
  if (!input.commandId) ids = await unreadyGreen(plan, deps);
  ids ??= [];
  const r = await runScriptStep(
    {
      instanceIds: ids,
      script: `${plan.scripts.smokeTest}\n${plan.scripts.serviceIn}`,
      env: { ...plan.env, KILN_SERVICE: plan.service, KILN_COMMIT: plan.commit, KILN_EXECUTION: plan.executionName },
      comment: `kiln ${plan.executionName} ServiceInGreen`,
      commandId: input.commandId,
    },
    deps,
  );
  if (r.status === "succeeded" && ids.length > 0) {
    await deps.ec2.send(new CreateTagsCommand({ Resources: ids, Tags: [{ Key: KILN_TAGS.ready, Value: plan.executionName }] }));
  }
  return { status: r.status, commandId: r.commandId || undefined, instanceIds: ids, seen: { instances: r.instances } };
}

async function unreadyGreen(plan: RollPlan, deps: RollDeps): Promise<string[]> {
  const g = await describeGroup(deps.autoscaling, greenName(plan));
  const inService = (g?.Instances ?? []).filter((i) => i.LifecycleState === "InService").map((i) => i.InstanceId!);
  if (inService.length === 0) return [];
  const r = await deps.ec2.send(new DescribeInstancesCommand({ InstanceIds: inService }));
  const ready = new Set<string>();
  for (const res of r.Reservations ?? [])
    for (const i of res.Instances ?? []) if (tagValue(i.Tags, KILN_TAGS.ready) === plan.executionName) ready.add(i.InstanceId!);
  return inService.filter((id) => !ready.has(id));
}

// ───────────────────────────── WaitGreenHealthy ─────────────────────────────

/** Every green instance that is InService is a healthy target, and there are at least `desired`. */
export async function waitGreenHealthy(plan: RollPlan, deps: RollDeps, attempt?: Attempt): Promise<StatusResult> {
  // Polled until green is healthy: a superseded execution redriven here would otherwise wait forever on a deleted green.
  await assertHoldsLock(plan, deps);
  const g = await describeGroup(deps.autoscaling, greenName(plan));
  const health = await targetGroupHealth(deps.elbv2, plan.green.targetGroupArn);
  const desired = g?.DesiredCapacity ?? 0;
  const ready = health.healthy.length >= desired && desired > 0;
  if (!ready) {
    const t = plan.timeouts ?? DEFAULT_GREEN_TIMEOUTS;
    checkGreenDeadline(
      plan,
      g,
      attempt,
      t.greenReadySeconds + t.greenHealthySeconds,
      `WaitGreenHealthy: ${health.healthy.length}/${desired} green targets healthy (unhealthy ${health.unhealthy.length}): check the target group's health check and the service-in script`,
      deps,
    );
  }
  return {
    ready,
    seen: { desired, healthy: health.healthy.length, unhealthy: health.unhealthy.length, other: health.other },
  };
}

// ───────────────────────────── ShiftTraffic / VerifyCanary ─────────────────────────────

export interface CanaryInput {
  plan: RollPlan;
  index: number;
  /** A scale-out reconcile in flight (see VerifyCanary). */
  commandId?: string;
  instanceIds?: string[];
}

/** The listener weights of canary step `index`. */
export function stepWeights(plan: RollPlan, index: number): WeightedTargetGroup[] {
  const step = plan.steps[index];
  if (!step) throw new StepFailedError(`canary step ${index} does not exist (the service has ${plan.steps.length})`);
  return [
    { arn: plan.blue.targetGroupArn, weight: 100 - step.weight },
    { arn: plan.green.targetGroupArn, weight: step.weight },
  ];
}

/** Sets the listener weights of canary step `index` (green gets step.weight %). */
export async function shiftTraffic(
  input: CanaryInput,
  deps: RollDeps,
): Promise<{ index: number; weights: WeightedTargetGroup[]; bakeSeconds: number; changed: boolean }> {
  await assertHoldsLock(input.plan, deps);
  const weights = stepWeights(input.plan, input.index);
  // I1: never send traffic to a group without healthy targets (either side).
  const [blue, green] = await Promise.all([
    targetGroupHealth(deps.elbv2, input.plan.blue.targetGroupArn),
    targetGroupHealth(deps.elbv2, input.plan.green.targetGroupArn),
  ]);
  for (const [side, health, w] of [
    ["blue", blue, weights[0]],
    ["green", green, weights[1]],
  ] as const) {
    if (health.healthy.length === 0 && (w?.weight ?? 0) > 0) {
      throw new StepFailedError(`${side} target group has no healthy targets; refusing to send it ${w?.weight}% of the traffic`);
    }
  }
  const r = await setWeights(deps.elbv2, input.plan.traffic, weights);
  return { index: input.index, weights, bakeSeconds: input.plan.steps[input.index]!.bakeSeconds, changed: r.changed };
}

export interface VerifyResult {
  /** "passed": go on; "restarted": weights were re-applied (redrive), bake again; "reconciling": new green instances being serviced in. */
  status: "passed" | "restarted" | "reconciling";
  index: number;
  last: boolean;
  commandId?: string;
  instanceIds?: string[];
  seen: Record<string, unknown>;
}

/**
 * Verifies a canary step after its bake time: alarms OK, green healthy ≥ its floor, blue+green
 * healthy ≥ the minimum-healthy capacity. On failure the weights go back to blue 100 % first, then
 * it throws `kiln.VerificationFailed` with what it saw — so the execution fails at this step.
 * Redriving it finds the weights rolled back, re-applies the step's weights and asks for the bake
 * time again ("restarted").
 */
export async function verifyCanary(input: CanaryInput, deps: RollDeps): Promise<VerifyResult> {
  const { plan, index } = input;
  await assertHoldsLock(plan, deps);
  const step = plan.steps[index]!;
  const base = { index, last: index === plan.steps.length - 1 };
  const current = await readWeights(deps.elbv2, plan.traffic);
  const want = stepWeights(plan, index);
  const inPlace = want.every((w) => current.some((c) => c.arn === w.arn && c.weight === w.weight));
  if (!inPlace) {
    await shiftTraffic(input, deps);
    return { ...base, status: "restarted", seen: { weightsFound: current, weightsApplied: want } };
  }
  // Instances that joined green after readiness (scale-out) are serviced in before they count:
  // wait for them to be InService with SSM online, service them in, then give them their health
  // checks (bounded) — judging the canary meanwhile would fail it for capacity still on its way.
  const carried = await carryCapacity(plan, deps);
  if (input.commandId) {
    const r = await serviceInGreen({ plan, commandId: input.commandId, instanceIds: input.instanceIds }, deps);
    if (r.status === "pending")
      return { ...base, status: "reconciling", commandId: r.commandId, instanceIds: r.instanceIds, seen: r.seen };
    const settling = await settlingTargets(plan, input.commandId, input.instanceIds ?? [], deps);
    if (settling.length > 0) {
      return {
        ...base,
        status: "reconciling",
        commandId: input.commandId,
        instanceIds: input.instanceIds,
        seen: { awaitingHealthChecks: settling },
      };
    }
  } else {
    const readiness = await fleetReadiness(greenName(plan), deps);
    if (!readiness.ready) {
      return {
        ...base,
        status: "reconciling",
        seen: {
          carriedCapacity: carried,
          desired: readiness.desired,
          inService: readiness.inService.length,
          ssmOnline: readiness.online.length,
          pending: readiness.pending,
        },
      };
    }
    const unready = await unreadyGreen(plan, deps);
    if (unready.length > 0) {
      const r = await serviceInGreen({ plan }, deps);
      return {
        ...base,
        status: "reconciling",
        commandId: r.commandId,
        instanceIds: r.instanceIds,
        seen: { newGreenInstances: unready },
      };
    }
  }
  const [alarms, green, blue, greenGroup] = await Promise.all([
    alarmStates(deps.cloudwatch, plan.alarms),
    targetGroupHealth(deps.elbv2, plan.green.targetGroupArn),
    targetGroupHealth(deps.elbv2, plan.blue.targetGroupArn),
    describeGroup(deps.autoscaling, greenName(plan)),
  ]);
  const greenDesired = greenGroup?.DesiredCapacity ?? 0;
  const greenFloor = Math.ceil((greenDesired * plan.minHealthyPercent) / 100);
  const seen = {
    weights: want,
    alarms,
    green: { healthy: green.healthy.length, unhealthy: green.unhealthy.length, desired: greenDesired, floor: greenFloor },
    blue: { healthy: blue.healthy.length, unhealthy: blue.unhealthy.length },
    capacity: { healthy: green.healthy.length + blue.healthy.length, floor: plan.floor, before: plan.healthyBefore },
  };
  const problems: string[] = [];
  const firing = Object.entries(alarms).filter(([, s]) => s === "ALARM");
  if (firing.length > 0) problems.push(`alarm ${firing.map(([n]) => n).join(", ")} in ALARM`);
  // A configured alarm that does not exist protects nothing: treat it as a failed check, not a pass.
  const missing = Object.entries(alarms).filter(([, s]) => s === "MISSING");
  if (missing.length > 0)
    problems.push(`alarm ${missing.map(([n]) => n).join(", ")} does not exist (check the service's alarms in kiln.config.yaml)`);
  if (green.healthy.length < greenFloor)
    problems.push(`green healthy ${green.healthy.length}/${greenDesired} below floor ${greenFloor}`);
  if (green.healthy.length + blue.healthy.length < plan.floor)
    problems.push(
      `healthy capacity ${green.healthy.length + blue.healthy.length} below minimum ${plan.floor} (${plan.minHealthyPercent}% of ${plan.healthyBefore})`,
    );
  if (problems.length > 0) {
    await setWeights(deps.elbv2, plan.traffic, blueOnly(plan));
    throw new VerificationFailedError(
      `canary step ${index + 1}/${plan.steps.length} (${step.weight}% to ${plan.commit.slice(0, 12)}) failed: ${problems.join("; ")}. ` +
        `Traffic is back on blue (${plan.blue.asgName}). Seen: ${JSON.stringify(seen)}`,
    );
  }
  return { ...base, status: "passed", seen };
}

/** How long instances serviced in during a canary step get to pass their health checks before the step is judged. */
const SETTLE_MS = 10 * 60_000;

/** Instances serviced in by `commandId` that are not healthy targets yet, while within SETTLE_MS of the command. */
async function settlingTargets(plan: RollPlan, commandId: string, ids: string[], deps: RollDeps): Promise<string[]> {
  if (ids.length === 0) return [];
  const health = await targetGroupHealth(deps.elbv2, plan.green.targetGroupArn);
  const healthy = new Set(health.healthy);
  const waiting = ids.filter((id) => !healthy.has(id));
  if (waiting.length === 0) return [];
  const c = await deps.ssm.send(new ListCommandsCommand({ CommandId: commandId }));
  const requested = c.Commands?.[0]?.RequestedDateTime;
  if (requested && deps.clock.now() - new Date(requested).getTime() > SETTLE_MS) return [];
  return waiting;
}

/** State of each alarm by name (`MISSING` for one that does not exist). */
export async function alarmStates(cloudwatch: CloudWatchClient, names: string[]): Promise<Record<string, string>> {
  if (names.length === 0) return {};
  const out: Record<string, string> = {};
  for (let i = 0; i < names.length; i += 100) {
    const r = await cloudwatch.send(new DescribeAlarmsCommand({ AlarmNames: names.slice(i, i + 100) }));
    for (const a of r.MetricAlarms ?? []) out[a.AlarmName!] = a.StateValue ?? "INSUFFICIENT_DATA";
  }
  for (const n of names) out[n] ??= "MISSING";
  return out;
}

// ───────────────────────────── ServiceOutBlue / RetireBlue ─────────────────────────────

/** Service-out on every InService blue instance (I4: only once green holds 100 % and is healthy). */
export async function serviceOutBlue(input: CommandStepInput, deps: RollDeps): Promise<CommandStepResult> {
  const { plan } = input;
  await assertHoldsLock(plan, deps);
  if (!input.commandId) await assertGreenHoldsAll(plan, deps);
  let ids = input.instanceIds;
  if (!input.commandId) {
    const g = await describeGroup(deps.autoscaling, plan.blue.asgName);
    ids = (g?.Instances ?? []).filter((i) => i.LifecycleState === "InService").map((i) => i.InstanceId!);
  }
  ids ??= [];
  const r = await runScriptStep(
    {
      instanceIds: ids,
      script: plan.scripts.serviceOut,
      env: { ...plan.env, KILN_SERVICE: plan.service, KILN_COMMIT: plan.blue.commit ?? "", KILN_EXECUTION: plan.executionName },
      comment: `kiln ${plan.executionName} ServiceOutBlue`,
      commandId: input.commandId,
    },
    deps,
  );
  return { status: r.status, commandId: r.commandId || undefined, instanceIds: ids, seen: { instances: r.instances } };
}

async function assertGreenHoldsAll(plan: RollPlan, deps: RollDeps): Promise<void> {
  const weights = await readWeights(deps.elbv2, plan.traffic);
  const blueWeight = weights.find((w) => w.arn === plan.blue.targetGroupArn)?.weight ?? 0;
  const greenWeight = weights.find((w) => w.arn === plan.green.targetGroupArn)?.weight ?? 0;
  const green = await targetGroupHealth(deps.elbv2, plan.green.targetGroupArn);
  if (blueWeight !== 0 || greenWeight === 0 || green.healthy.length === 0) {
    throw new StepFailedError(
      `refusing to retire blue: green must hold 100% and be healthy (blue weight ${blueWeight}, green weight ${greenWeight}, green healthy ${green.healthy.length})`,
    );
  }
}

/**
 * Scales blue to 0 (Auto Scaling deregisters and drains each target before terminating it) and
 * marks it retired with the end of its fast-rollback window; its launch-template version stays.
 * Returns ready when blue has no instances left.
 */
export async function retireBlue(plan: RollPlan, deps: RollDeps): Promise<StatusResult> {
  await assertHoldsLock(plan, deps);
  const g = await describeGroup(deps.autoscaling, plan.blue.asgName);
  if (!g) return { ready: true, seen: { blue: "already deleted" } };
  if (tagValue(g.Tags, KILN_TAGS.role) !== "retired") {
    await assertGreenHoldsAll(plan, deps);
    const until = new Date(deps.clock.now() + plan.rollbackWindowSeconds * 1000).toISOString();
    const tag = (Key: string, Value: string) => ({
      ResourceId: plan.blue.asgName,
      ResourceType: "auto-scaling-group",
      Key,
      Value,
      // Propagated like the fleet tag it replaces: an instance launched in a retired group (health
      // replacement while it drains, or an abort scaling it back) still carries its kiln:role.
      PropagateAtLaunch: Key === KILN_TAGS.role,
    });
    await deps.autoscaling.send(
      new CreateOrUpdateTagsCommand({
        Tags: [
          tag(KILN_TAGS.role, "retired"),
          tag("kiln:retired-by", plan.executionName),
          tag("kiln:delete-after", until),
          // Blue's live capacity (autoscaling may have changed it since PlanRoll): what abort and rollback restore.
          tag(
            "kiln:capacity",
            JSON.stringify(
              (g.DesiredCapacity ?? 0) > 0
                ? { min: g.MinSize ?? 0, max: g.MaxSize ?? 0, desired: g.DesiredCapacity ?? 0 }
                : plan.blue.capacity,
            ),
          ),
        ],
      }),
    );
  }
  if ((g.DesiredCapacity ?? 0) !== 0 || (g.MinSize ?? 0) !== 0) {
    await deps.autoscaling.send(
      new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: plan.blue.asgName, MinSize: 0, DesiredCapacity: 0 }),
    );
  }
  const left = (g.Instances ?? []).map((i) => ({ id: i.InstanceId, state: i.LifecycleState }));
  return { ready: left.length === 0, seen: { remaining: left } };
}

// ───────────────────────────── RecordDeployment ─────────────────────────────

/** Records the deployment (service, environment, commit, AMI, execution, start/end, result). */
export async function recordDeployment(
  input: { plan: RollPlan; startedAt: string; result: "SUCCEEDED" | "FAILED" | "ROLLED_BACK" | "ABORTED"; table: string },
  deps: RollDeps,
): Promise<{ recorded: boolean }> {
  if (!deps.dynamodb) throw new StepFailedError("RecordDeployment needs a DynamoDB client");
  const p = input.plan;
  await deps.dynamodb.send(
    new PutCommand({
      TableName: input.table,
      Item: {
        // Records are per (service, environment): the partition key is unitKey(service, environment).
        service: unitKey(p.service, p.environment ?? ""),
        serviceName: p.service,
        startedAt: input.startedAt,
        execution: p.executionName,
        environment: p.environment,
        commit: p.commit,
        imageId: p.imageId,
        previousCommit: p.blue.commit,
        blueGroup: p.blue.asgName,
        greenGroup: p.green.asgName,
        endedAt: new Date(deps.clock.now()).toISOString(),
        result: input.result,
      },
    }),
  );
  return { recorded: true };
}

/** Resumes any process kiln suspended on a group (used on every exit path). */
export async function resumeAll(autoscaling: AutoScalingClient, asgName: string): Promise<void> {
  await autoscaling.send(new ResumeProcessesCommand({ AutoScalingGroupName: asgName }));
}
