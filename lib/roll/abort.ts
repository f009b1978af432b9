/**
 * The abort (compensation) of a deployment: `state-machines/abort.asl.json`. It undoes what a
 * running or failed deployment did to the fleet — stop it, put traffic back on blue (restoring blue
 * first when it was already retired or serviced out), delete green and its launch-template version,
 * resume scaling processes, record the outcome and release the service lock.
 *
 * Every step reads the actual state and converges (ARCHITECTURE.md §2.1): the abort can be retried,
 * redriven or run a second time and ends in the same place. The fleets are found from their tags
 * (`kiln:execution`, `kiln:retired-by`), not from the aborted execution's variables, so an abort
 * also compensates a deployment that crashed between creating something and recording it.
 */
import { CancelCommandCommand, ListCommandsCommand } from "@aws-sdk/client-ssm";
import {
  type AutoScalingClient,
  type AutoScalingGroup,
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
} from "@aws-sdk/client-auto-scaling";
import {
  CreateTagsCommand,
  DeleteLaunchTemplateVersionsCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplateVersionsCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  StopExecutionCommand,
} from "@aws-sdk/client-sfn";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { LockHeldError, StepFailedError } from "../errors.ts";
import { unitKey } from "../names.ts";
import {
  acquireLock,
  compensatedBy,
  executionStatus,
  type HolderStatus,
  readLock,
  releaseAndStartNext,
  type SfnSender,
  type StartDeps,
} from "../lock/index.ts";
import {
  type Capacity,
  describeGroup,
  deleteGroup,
  fleetReadiness,
  KILN_TAGS,
  serviceGroups,
  setCapacity,
  tagValue,
} from "./fleet.ts";
import { runScriptStep } from "./run.ts";
import { assertHoldsLock, type RollDeps, type RollSettings, resolveListener, resolveTargetGroups, resumeAll } from "./steps.ts";
import { readWeights, setWeights, type TrafficRef, targetGroupHealth } from "./traffic.ts";

/** Tags RetireBlue puts on a retired fleet (removed when a fleet is restored). */
export const RETIRED_TAGS = {
  retiredBy: "kiln:retired-by",
  deleteAfter: "kiln:delete-after",
  capacity: "kiln:capacity",
} as const;

export interface AbortDeps extends RollDeps {
  sfn: SfnSender;
  /** Lock and start dependencies (`startDepsFromEnv`). */
  lock: StartDeps;
  /** The deployments table (records the aborted deployment). */
  deploymentsTable?: string;
}

/** What PrepareAbort found and every later abort step carries (`$plan`). */
export interface AbortPlan {
  service: string;
  environment: string;
  /** This abort execution. */
  executionArn: string;
  executionName: string;
  /** The deployment being compensated (absent when none was found and nothing is left to undo). */
  target?: { executionArn: string; executionName: string; status: string; startedAt?: string; commit?: string };
  /** Whether PrepareAbort stopped a running deployment (its in-flight Lambda may still land: wait it out). */
  stopped: boolean;
  traffic: TrafficRef;
  blue: {
    asgName: string;
    targetGroupArn: string;
    capacity: Capacity;
    wasRetired: boolean;
    /** The deployment reached ServiceOutBlue: blue's targets may still look healthy but serve nothing. */
    servicedOut?: boolean;
    launchTemplateId?: string;
    commit?: string;
  };
  green: { targetGroupArn: string };
  /** Healthy blue targets traffic may return to (minimum-healthy share of blue's capacity). */
  floor: number;
  minHealthyPercent: number;
  scripts: RollSettings["scripts"];
  env: Record<string, string>;
}

export interface PrepareAbortInput {
  service: string;
  environment: string;
  /** The deployment to abort; default: the lock's holder, else its unresolved failure, else the service's newest deployment. */
  executionArn?: string;
  reason?: string;
  requestedBy?: string;
  execution: { arn: string; name: string };
  settings: RollSettings;
  env?: Record<string, string>;
}

// ───────────────────────────── PrepareAbort ─────────────────────────────

/**
 * Finds the deployment to abort, takes the service lock from it (refusing when another deployment
 * holds it: I6), stops it if it is still running, and finds blue and green from their tags.
 */
export async function prepareAbort(input: PrepareAbortInput, deps: AbortDeps): Promise<AbortPlan> {
  const target = await findTarget(input, deps);
  if (target && target.status === "SUCCEEDED") {
    throw new StepFailedError(
      `deployment ${target.executionName} succeeded: there is nothing to abort. To go back to the previous fleet use \`kiln rollback ${input.service}\``,
    );
  }
  const earlierAbort = target ? await earlierAbortOf(input, target.executionArn, deps) : undefined;
  const lock = await acquireLock(
    {
      service: input.service,
      environment: input.environment,
      executionArn: input.execution.arn,
      trigger: "abort",
      // An abort is a reconciler: with nothing running it may take a free lock and put the fleet right.
      mayTakeFree: true,
      ...(target ? { abortedExecutionArn: target.executionArn } : {}),
      ...(earlierAbort ? { holderStatus: earlierAbort } : {}),
    },
    deps.lock,
  );
  if (!lock.acquired) {
    throw new LockHeldError(`cannot abort ${target?.executionName ?? input.service}: ${lock.reason}. Nothing was changed.`);
  }
  let stopped = false;
  if (target?.status === "RUNNING") {
    try {
      await deps.sfn.send(
        new StopExecutionCommand({
          executionArn: target.executionArn,
          error: "kiln.Aborted",
          cause:
            `aborted by ${input.execution.name}${input.requestedBy ? ` (${input.requestedBy})` : ""}${input.reason ? `: ${input.reason}` : ""}`.slice(
              0,
              32_000,
            ),
        }),
      );
    } catch (err) {
      if ((err as Error).name !== "ExecutionDoesNotExist") throw err;
    }
    stopped = true;
  }
  // A failed or stopped deployment may still have Run Command invocations in flight (a service-out
  // delivered late would undo the service-in this abort is about to do): cancel them first.
  if (target) await cancelCommandsOf(target.executionName, deps.ssm);
  // Taken over from an earlier abort that failed: its service-in commands must not land late either.
  const earlier = lock.tookOverFrom?.split(":").at(-1);
  if (earlier && earlier !== target?.executionName && earlier !== input.execution.name) await cancelCommandsOf(earlier, deps.ssm);
  const s = input.settings;
  const listenerArn = await resolveListener(deps.elbv2, s.listener);
  const traffic: TrafficRef = { listenerArn, ...(s.ruleArn ? { ruleArn: s.ruleArn } : {}) };
  const tgArns = await resolveTargetGroups(deps.elbv2, s.targetGroups);
  const groups = await serviceGroups(deps.autoscaling, input.service, input.environment);
  const blue = findBlue(groups, tgArns, target?.executionName);
  if (!blue) {
    throw new StepFailedError(
      `no fleet of ${input.service} to restore: no group was retired by ${target?.executionName ?? "the deployment"} and none serves ${s.targetGroups.join(" or ")} (tagged ${KILN_TAGS.role}=fleet). Restore a fleet by hand, then abort again.`,
    );
  }
  if (blue.capacity.desired === 0) {
    throw new StepFailedError(
      `blue group ${blue.group.AutoScalingGroupName} has no capacity to restore (desired 0 and no ${RETIRED_TAGS.capacity} tag): set its capacity by hand, then abort again`,
    );
  }
  const blueTg = (blue.group.TargetGroupARNs ?? []).find((a) => tgArns.includes(a))!;
  const greenTg = tgArns.find((a) => a !== blueTg) ?? blueTg;
  const lt = blue.group.LaunchTemplate ?? blue.group.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
  return {
    service: input.service,
    environment: input.environment,
    executionArn: input.execution.arn,
    executionName: input.execution.name,
    ...(target ? { target } : {}),
    stopped,
    traffic,
    blue: {
      asgName: blue.group.AutoScalingGroupName!,
      targetGroupArn: blueTg,
      capacity: blue.capacity,
      wasRetired: blue.retired,
      servicedOut: target ? await reachedState(deps.sfn, target.executionArn, ["ServiceOutBlue", "RetireBlue"]) : false,
      ...(lt?.LaunchTemplateId ? { launchTemplateId: lt.LaunchTemplateId } : {}),
      ...(tagValue(blue.group.Tags, KILN_TAGS.commit) ? { commit: tagValue(blue.group.Tags, KILN_TAGS.commit) } : {}),
    },
    green: { targetGroupArn: greenTg },
    floor: Math.max(1, Math.ceil((blue.capacity.desired * s.minHealthyPercent) / 100)),
    minHealthyPercent: s.minHealthyPercent,
    scripts: s.scripts,
    env: input.env ?? {},
  };
}

/**
 * When an earlier abort of the same deployment holds the lock, its status: the lock rules let this
 * abort take over from it once it has failed (a running one keeps the lock).
 */
async function earlierAbortOf(
  input: PrepareAbortInput,
  targetArn: string,
  deps: AbortDeps,
): Promise<{ executionArn: string; status: HolderStatus } | undefined> {
  const item = await readLock(input, deps.lock);
  const holder = item?.holder;
  if (!holder || holder === input.execution.arn || compensatedBy(item) !== targetArn) return undefined;
  return { executionArn: holder, status: await executionStatus(deps.sfn, holder) };
}

async function findTarget(input: PrepareAbortInput, deps: AbortDeps): Promise<AbortPlan["target"] | undefined> {
  let arn = input.executionArn;
  if (!arn) {
    const item = await readLock(input, deps.lock);
    if (item?.holder && item.holder !== input.execution.arn && /:execution:[^:]*-deploy:/.test(item.holder)) arn = item.holder;
    else if (item?.lastFailed?.unresolved) arn = item.lastFailed.executionArn;
  }
  if (!arn) arn = await newestDeployment(input.service, deps);
  if (!arn) return undefined;
  try {
    const d = await deps.sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    let commit: string | undefined;
    try {
      commit = (JSON.parse(d.input ?? "{}") as { commit?: string }).commit;
    } catch {
      // an input that is not JSON names no commit
    }
    return {
      executionArn: arn,
      executionName: d.name ?? arn.split(":").at(-1)!,
      status: String(d.status),
      ...(d.startDate ? { startedAt: new Date(d.startDate).toISOString() } : {}),
      ...(commit ? { commit } : {}),
    };
  } catch (err) {
    if ((err as Error).name !== "ExecutionDoesNotExist") throw err;
    // Still compensate what carries its name (it may have run in an earlier incarnation of the machine).
    return { executionArn: arn, executionName: arn.split(":").at(-1)!, status: "MISSING" };
  }
}

/** The newest deploy execution of the service (names start with `<service>-`). */
async function newestDeployment(service: string, deps: AbortDeps): Promise<string | undefined> {
  const machine = deps.lock.deployStateMachineArn;
  let nextToken: string | undefined;
  for (let page = 0; page < 10; page++) {
    const r = await deps.sfn.send(new ListExecutionsCommand({ stateMachineArn: machine, maxResults: 100, nextToken }));
    const mine = (r.executions ?? []).filter((e: { name?: string }) => e.name?.startsWith(`${service}-`));
    if (mine.length > 0) {
      mine.sort(
        (a: { startDate?: Date }, b: { startDate?: Date }) =>
          new Date(b.startDate ?? 0).getTime() - new Date(a.startDate ?? 0).getTime(),
      );
      return mine[0].executionArn;
    }
    nextToken = r.nextToken;
    if (!nextToken) break;
  }
  return undefined;
}

/**
 * Blue is the fleet the aborted deployment retired (its capacity is in `kiln:capacity`), else the
 * service's fleet in one of its target groups that the deployment did not create.
 */
function findBlue(
  groups: AutoScalingGroup[],
  tgArns: string[],
  targetName: string | undefined,
): { group: AutoScalingGroup; capacity: Capacity; retired: boolean } | undefined {
  const inService = (g: AutoScalingGroup) => (g.TargetGroupARNs ?? []).some((a) => tgArns.includes(a));
  const retired = targetName
    ? groups.find((g) => tagValue(g.Tags, RETIRED_TAGS.retiredBy) === targetName && inService(g))
    : undefined;
  if (retired) {
    const capacity = parseCapacity(tagValue(retired.Tags, RETIRED_TAGS.capacity)) ?? currentCapacity(retired);
    return { group: retired, capacity, retired: tagValue(retired.Tags, KILN_TAGS.role) === "retired" };
  }
  const candidates = groups.filter(
    (g) =>
      inService(g) &&
      tagValue(g.Tags, KILN_TAGS.role) !== "retired" &&
      (!targetName || tagValue(g.Tags, KILN_TAGS.execution) !== targetName),
  );
  candidates.sort((a, b) => (b.DesiredCapacity ?? 0) - (a.DesiredCapacity ?? 0));
  const g = candidates[0];
  return g ? { group: g, capacity: currentCapacity(g), retired: false } : undefined;
}

function currentCapacity(g: AutoScalingGroup): Capacity {
  return { min: g.MinSize ?? 0, max: g.MaxSize ?? 0, desired: g.DesiredCapacity ?? 0 };
}

/** Parses the `kiln:capacity` tag RetireBlue wrote (`{"min":4,"max":8,"desired":4}`). */
export function parseCapacity(v: string | undefined): Capacity | undefined {
  if (!v) return undefined;
  try {
    const c = JSON.parse(v) as Partial<Capacity>;
    if ([c.min, c.max, c.desired].every((n) => typeof n === "number" && Number.isInteger(n) && n >= 0)) return c as Capacity;
  } catch {
    // not ours
  }
  return undefined;
}

// ───────────────────────────── RestoreTraffic ─────────────────────────────

/**
 * Blue 100 %, green 0 %, as soon as blue has enough healthy targets to carry it (the floor); until
 * then traffic stays where it is and RestoreBlue brings blue back first (I1, I2).
 */
export async function restoreTraffic(
  input: { plan: AbortPlan; /** RestoreBlue reported every desired blue instance healthy. */ blueReady?: boolean },
  deps: RollDeps,
): Promise<{ restored: boolean; seen: Record<string, unknown> }> {
  const { plan } = input;
  await assertHoldsLock(plan, deps);
  const [weights, blue] = await Promise.all([
    readWeights(deps.elbv2, plan.traffic),
    targetGroupHealth(deps.elbv2, plan.blue.targetGroupArn),
  ]);
  const blueWeight = weights.find((w) => w.arn === plan.blue.targetGroupArn)?.weight ?? 0;
  const othersWeight = weights.filter((w) => w.arn !== plan.blue.targetGroupArn).reduce((n, w) => n + w.weight, 0);
  if (blueWeight > 0 && othersWeight === 0) return { restored: true, seen: { weights, blueHealthy: blue.healthy.length } };
  // A blue the deployment serviced out still looks healthy until the health checks notice: it must be
  // serviced in again (RestoreBlue) before traffic returns to it (I3).
  const servicedOut = !input.blueReady && Boolean(plan.blue.servicedOut);
  // Once RestoreBlue saw all of blue healthy, any healthy blue target is enough (autoscaling may have shrunk it below the floor).
  if (servicedOut || blue.healthy.length === 0 || (!input.blueReady && blue.healthy.length < plan.floor)) {
    return {
      restored: false,
      seen: {
        weights,
        blueHealthy: blue.healthy.length,
        floor: plan.floor,
        why: "blue is restored before traffic returns to it",
      },
    };
  }
  const r = await setWeights(deps.elbv2, plan.traffic, [
    { arn: plan.blue.targetGroupArn, weight: 100 },
    { arn: plan.green.targetGroupArn, weight: 0 },
  ]);
  return { restored: true, seen: { before: r.before, blueHealthy: blue.healthy.length } };
}

/** Cancels the Pending/InProgress Run Commands a deployment sent (their comments name it). */
async function cancelCommandsOf(executionName: string, ssm: RollDeps["ssm"]): Promise<string[]> {
  const cancelled: string[] = [];
  let NextToken: string | undefined;
  do {
    const r = await ssm.send(new ListCommandsCommand({ NextToken, MaxResults: 50 }));
    for (const c of r.Commands ?? []) {
      if (!c.CommandId || !c.Comment?.startsWith(`kiln ${executionName} `)) continue;
      if (c.Status !== "Pending" && c.Status !== "InProgress") continue;
      await ssm.send(new CancelCommandCommand({ CommandId: c.CommandId }));
      cancelled.push(c.CommandId);
    }
    NextToken = r.NextToken;
  } while (NextToken);
  return cancelled;
}

/** Whether an execution entered any of `states` (its history says so, whatever happened next). */
async function reachedState(sfn: SfnSender, executionArn: string, states: string[]): Promise<boolean> {
  let nextToken: string | undefined;
  do {
    const r = (await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, nextToken }))) as {
      events?: { stateEnteredEventDetails?: { name?: string } }[];
      nextToken?: string;
    };
    if ((r.events ?? []).some((e) => states.includes(e.stateEnteredEventDetails?.name ?? ""))) return true;
    nextToken = r.nextToken;
  } while (nextToken);
  return false;
}

// ───────────────────────────── RestoreBlue ─────────────────────────────

export interface RestoreBlueInput {
  plan: AbortPlan;
  commandId?: string;
  instanceIds?: string[];
}

export interface RestoreBlueResult {
  status: "pending" | "ready";
  commandId?: string;
  instanceIds?: string[];
  seen: Record<string, unknown>;
}

/**
 * Brings blue back to its recorded capacity (undoing RetireBlue: capacity, then `kiln:role=fleet`,
 * then the retirement tags go), waits for its instances to be InService with SSM online, and
 * smoke-tests and services in every instance that is not a healthy target (new ones, or ones
 * ServiceOutBlue took out). Ready when every desired blue instance is a healthy target.
 */
export async function restoreBlue(input: RestoreBlueInput, deps: RollDeps): Promise<RestoreBlueResult> {
  const { plan } = input;
  await assertHoldsLock(plan, deps);
  const name = plan.blue.asgName;
  if (input.commandId) {
    const r = await runScriptStep(
      {
        instanceIds: input.instanceIds ?? [],
        script: `${plan.scripts.smokeTest}\n${plan.scripts.serviceIn}`,
        env: serviceEnv(plan),
        comment: `kiln ${plan.executionName} RestoreBlue`,
        commandId: input.commandId,
      },
      deps,
    );
    if (r.status === "pending")
      return { status: "pending", commandId: r.commandId, instanceIds: input.instanceIds, seen: { instances: r.instances } };
    if ((input.instanceIds ?? []).length > 0) {
      await deps.ec2.send(
        new CreateTagsCommand({ Resources: input.instanceIds!, Tags: [{ Key: KILN_TAGS.ready, Value: plan.executionName }] }),
      );
    }
  }
  const g = await describeGroup(deps.autoscaling, name);
  if (!g) throw new StepFailedError(`blue group ${name} no longer exists: restore a fleet by hand, then abort again`);
  await unretire(g, plan.blue.capacity, deps.autoscaling);
  const readiness = await fleetReadiness(name, deps);
  const health = await targetGroupHealth(deps.elbv2, plan.blue.targetGroupArn);
  const healthy = new Set(health.healthy);
  const seen = {
    desired: readiness.desired,
    inService: readiness.inService.length,
    ssmOnline: readiness.online.length,
    healthy: health.healthy.length,
    pending: readiness.pending,
  };
  // After ServiceOutBlue a "healthy" target may be serviced out: each must be serviced in by this abort.
  const unserviced = plan.blue.servicedOut ? await notReadyFor(plan.executionName, readiness.inService, deps) : [];
  if (
    unserviced.length === 0 &&
    readiness.desired > 0 &&
    readiness.inService.filter((id) => healthy.has(id)).length >= readiness.desired
  ) {
    return { status: "ready", seen };
  }
  // Service in every online blue instance that is not healthy (or, after a service-out, not yet
  // serviced in) and that this abort has not serviced in yet.
  const candidates = readiness.online.filter((id) => !healthy.has(id) || unserviced.includes(id));
  const todo = await notReadyFor(plan.executionName, candidates, deps);
  if (todo.length === 0) return { status: "pending", seen };
  const r = await runScriptStep(
    {
      instanceIds: todo,
      script: `${plan.scripts.smokeTest}\n${plan.scripts.serviceIn}`,
      env: serviceEnv(plan),
      comment: `kiln ${plan.executionName} RestoreBlue`,
    },
    deps,
  );
  return { status: "pending", commandId: r.commandId, instanceIds: todo, seen: { ...seen, servicingIn: todo } };
}

function serviceEnv(plan: AbortPlan): Record<string, string> {
  return { ...plan.env, KILN_SERVICE: plan.service, KILN_COMMIT: plan.blue.commit ?? "", KILN_EXECUTION: plan.executionName };
}

async function notReadyFor(executionName: string, ids: string[], deps: RollDeps): Promise<string[]> {
  if (ids.length === 0) return [];
  const r = await deps.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
  const ready = new Set<string>();
  for (const res of r.Reservations ?? [])
    for (const i of res.Instances ?? []) if (tagValue(i.Tags, KILN_TAGS.ready) === executionName) ready.add(i.InstanceId!);
  return ids.filter((id) => !ready.has(id));
}

/**
 * Undoes RetireBlue on a group: the recorded capacity first (so a crash leaves it still marked
 * retired and the next attempt sets it again), then `kiln:role=fleet`, then the retirement tags.
 * A group that is not retired only has its capacity brought back to at least the recorded one.
 */
export async function unretire(g: AutoScalingGroup, capacity: Capacity, autoscaling: AutoScalingClient): Promise<boolean> {
  const name = g.AutoScalingGroupName!;
  const retired = tagValue(g.Tags, KILN_TAGS.role) === "retired";
  const below = (g.DesiredCapacity ?? 0) < capacity.desired || (g.MinSize ?? 0) < capacity.min || (g.MaxSize ?? 0) < capacity.max;
  if (retired || below) await setCapacity(autoscaling, name, capacity);
  const leftover = Object.values(RETIRED_TAGS).filter((k) => tagValue(g.Tags, k) !== undefined);
  if (retired) {
    await autoscaling.send(
      new CreateOrUpdateTagsCommand({
        Tags: [
          { ResourceId: name, ResourceType: "auto-scaling-group", Key: KILN_TAGS.role, Value: "fleet", PropagateAtLaunch: true },
        ],
      }),
    );
  }
  if (leftover.length > 0) {
    await autoscaling.send(
      new DeleteTagsCommand({ Tags: leftover.map((Key) => ({ ResourceId: name, ResourceType: "auto-scaling-group", Key })) }),
    );
  }
  return retired || below;
}

// ───────────────────────────── DeleteGreen ─────────────────────────────

/**
 * Deletes every group the aborted deployment created (weight 0 by then: RestoreTraffic ran), then
 * its launch-template versions (a version in use cannot be deleted), and terminates any builder it
 * left. Ready when all are gone.
 */
export async function deleteGreen(plan: AbortPlan, deps: RollDeps): Promise<{ ready: boolean; seen: Record<string, unknown> }> {
  const target = plan.target?.executionName;
  if (!target) return { ready: true, seen: { nothing: "no deployment to compensate" } };
  await assertHoldsLock(plan, deps);
  const weights = await readWeights(deps.elbv2, plan.traffic);
  const greenWeight = weights.filter((w) => w.arn !== plan.blue.targetGroupArn).reduce((n, w) => n + w.weight, 0);
  if (greenWeight > 0)
    throw new StepFailedError(
      `refusing to delete green: it still takes ${greenWeight}% of the traffic (RestoreTraffic must run first)`,
    );
  const groups = (await serviceGroups(deps.autoscaling, plan.service, plan.environment)).filter(
    (g) => tagValue(g.Tags, KILN_TAGS.execution) === target && g.AutoScalingGroupName !== plan.blue.asgName,
  );
  for (const g of groups) if (g.Status !== "Delete in progress") await deleteGroup(deps.autoscaling, g.AutoScalingGroupName!);
  const builders = await liveInstances(deps, [
    { Name: `tag:${KILN_TAGS.execution}`, Values: [target] },
    { Name: `tag:${KILN_TAGS.role}`, Values: ["builder"] },
  ]);
  if (builders.length > 0) await deps.ec2.send(new TerminateInstancesCommand({ InstanceIds: builders }));
  if (groups.length > 0) return { ready: false, seen: { deleting: groups.map((g) => g.AutoScalingGroupName), builders } };
  const versions = await greenVersions(plan, deps);
  if (versions.length > 0 && plan.blue.launchTemplateId) {
    await deps.ec2.send(
      new DeleteLaunchTemplateVersionsCommand({ LaunchTemplateId: plan.blue.launchTemplateId, Versions: versions.map(String) }),
    );
  }
  return { ready: true, seen: { deletedLaunchTemplateVersions: versions, terminatedBuilders: builders } };
}

async function greenVersions(plan: AbortPlan, deps: RollDeps): Promise<number[]> {
  if (!plan.blue.launchTemplateId || !plan.target) return [];
  const description = `kiln ${plan.target.executionName}`;
  const out: number[] = [];
  let NextToken: string | undefined;
  do {
    const r = await deps.ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: plan.blue.launchTemplateId, NextToken }),
    );
    for (const v of r.LaunchTemplateVersions ?? [])
      if (v.VersionDescription === description && v.VersionNumber) out.push(v.VersionNumber);
    NextToken = r.NextToken;
  } while (NextToken);
  return out;
}

async function liveInstances(deps: RollDeps, filters: { Name: string; Values: string[] }[]): Promise<string[]> {
  const r = await deps.ec2.send(
    new DescribeInstancesCommand({
      Filters: [...filters, { Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped"] }],
    }),
  );
  return (r.Reservations ?? []).flatMap((x) => x.Instances ?? []).map((i) => i.InstanceId!);
}

// ───────────────────────────── FinishAbort ─────────────────────────────

/**
 * Resumes blue's scaling processes, records the aborted deployment and releases the lock (handing
 * it to the newest queued commit, which is started).
 */
export async function finishAbort(plan: AbortPlan, deps: AbortDeps): Promise<Record<string, unknown>> {
  await resumeAll(deps.autoscaling, plan.blue.asgName);
  const g = await describeGroup(deps.autoscaling, plan.blue.asgName);
  const capacity = g ? currentCapacity(g) : undefined;
  if (plan.target && deps.dynamodb && deps.deploymentsTable) {
    await deps.dynamodb.send(
      new PutCommand({
        TableName: deps.deploymentsTable,
        Item: {
          service: unitKey(plan.service, plan.environment),
          serviceName: plan.service,
          environment: plan.environment,
          startedAt: plan.target.startedAt ?? new Date(deps.clock.now()).toISOString(),
          execution: plan.target.executionName,
          commit: plan.target.commit,
          previousCommit: plan.blue.commit,
          blueGroup: plan.blue.asgName,
          endedAt: new Date(deps.clock.now()).toISOString(),
          result: "ABORTED",
          abortedBy: plan.executionName,
          statusWhenAborted: plan.target.status,
        },
      }),
    );
  }
  const released = await releaseAndStartNext(
    {
      service: plan.service,
      environment: plan.environment,
      executionArn: plan.executionArn,
      ...(plan.target ? { abortedExecutionArn: plan.target.executionArn } : {}),
    },
    deps.lock,
  );
  return {
    service: plan.service,
    aborted: plan.target?.executionName ?? null,
    blue: { asgName: plan.blue.asgName, capacity, restoredFromRetirement: plan.blue.wasRetired },
    lock: { released: released.released, reason: released.reason, started: released.started },
  };
}
