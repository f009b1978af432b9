/**
 * The fast rollback: `state-machines/rollback.asl.json`. Inside the fast-rollback window the fleet
 * the last deployment retired still exists (scaled to 0, tagged `kiln:role=retired`,
 * `kiln:delete-after`, `kiln:capacity`). A rollback is a roll whose "green" is that previous fleet
 * and whose "blue" is the current one: PrepareRollback builds such a plan, RestorePrevious scales
 * the previous fleet back to the current capacity, and the deploy machine's own steps do the rest
 * with the same checks — WaitGreenReady (capacity carried), ServiceInGreen (smoke test +
 * service-in), WaitGreenHealthy, ShiftTraffic/VerifyCanary, ServiceOutBlue, RetireBlue (the
 * current fleet is retired in its turn, so a rollback can itself be rolled back in the window).
 */
import { type AutoScalingGroup } from "@aws-sdk/client-auto-scaling";
import { DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { LockHeldError, StepFailedError } from "../errors.ts";
import { acquireLock, releaseAndStartNext, type StartDeps } from "../lock/index.ts";
import { RETIRED_TAGS, parseCapacity, unretire } from "./abort.ts";
import { type Capacity, describeGroup, KILN_TAGS, serviceGroups, tagValue } from "./fleet.ts";
import { assertHoldsLock, liveTargetGroups, type RollDeps, type RollPlan, type RollSettings, resumeAll } from "./steps.ts";
import { targetGroupHealth } from "./traffic.ts";

export interface RollbackPlan extends RollPlan {
  rollback: {
    /** The fleet being restored (the plan's green). */
    previous: { asgName: string; commit?: string; retiredBy?: string; windowEndsAt: string };
    /** The fleet being replaced (the plan's blue). */
    current: { asgName: string; commit?: string };
    /** Alarms already in ALARM before any traffic moved: the current fleet's, not checked against the previous one. */
    ignoredAlarms: string[];
  };
}

export interface PrepareRollbackInput {
  service: string;
  environment: string;
  execution: { arn: string; name: string };
  settings: RollSettings;
  env?: Record<string, string>;
}

const g = (x: AutoScalingGroup, k: string) => tagValue(x.Tags, k);

/**
 * Finds the current fleet (serving) and the previous one (retired, in the other target group),
 * refuses outside the fast-rollback window or without a previous fleet, takes the service lock,
 * and returns a roll plan from current (blue) to previous (green). Changes nothing else.
 */
export async function prepareRollback(input: PrepareRollbackInput, deps: RollDeps & { lock: StartDeps }): Promise<RollbackPlan> {
  const s = input.settings;
  const { traffic, tgArns, weightOf, live: currentTg, idle: previousTg } = await liveTargetGroups(s, deps.elbv2);
  const [a, b] = tgArns as [string, string];
  if (weightOf(currentTg) === 0)
    throw new StepFailedError(
      `neither target group of ${input.service} takes traffic: there is no current fleet to roll back from`,
    );
  if (weightOf(previousTg) > 0) {
    throw new StepFailedError(
      `traffic is split (${s.targetGroups.join(" / ")}: ${weightOf(a)}/${weightOf(b)}): a deployment is in progress or failed mid-shift; abort it (\`kiln abort ${input.service}\`) instead of rolling back`,
    );
  }
  const groups = await serviceGroups(deps.autoscaling, input.service, input.environment);
  const current = groups.find(
    (x) => (x.TargetGroupARNs ?? []).includes(currentTg) && (x.DesiredCapacity ?? 0) > 0 && g(x, KILN_TAGS.role) !== "retired",
  );
  if (!current) throw new StepFailedError(`no fleet of ${input.service} serves ${currentTg}: nothing to roll back from`);
  const previous = groups
    .filter(
      (x) =>
        (x.TargetGroupARNs ?? []).includes(previousTg) && g(x, KILN_TAGS.role) === "retired" && x.Status !== "Delete in progress",
    )
    .sort((x, y) => (g(y, RETIRED_TAGS.deleteAfter) ?? "").localeCompare(g(x, RETIRED_TAGS.deleteAfter) ?? ""))[0];
  if (!previous) {
    throw new StepFailedError(
      `no previous fleet of ${input.service} to roll back to: no retired group is left in ${s.targetGroups.join(" or ")} (it is deleted when its fast-rollback window of ${s.rollbackWindowSeconds / 60} min ends). Deploy the previous commit instead: \`kiln deploy ${input.service} --commit <sha>\``,
    );
  }
  const windowEnd = Date.parse(g(previous, RETIRED_TAGS.deleteAfter) ?? "");
  const now = deps.clock.now();
  if (!Number.isFinite(windowEnd) || now > windowEnd) {
    const prevCommit = g(previous, KILN_TAGS.commit);
    throw new StepFailedError(
      `outside the fast-rollback window: ${previous.AutoScalingGroupName}${prevCommit ? ` (commit ${prevCommit.slice(0, 12)})` : ""} was retired and its window ended at ${
        Number.isFinite(windowEnd)
          ? `${new Date(windowEnd).toISOString()} (${Math.round((now - windowEnd) / 60_000)} min ago)`
          : "(no kiln:delete-after tag)"
      }. Deploy the previous commit instead: \`kiln deploy ${input.service} --commit ${prevCommit ?? "<sha>"}\``,
    );
  }
  // A rollback names its commit (the retained previous fleet), so it may take a free lock (I7).
  const lock = await acquireLock(
    {
      service: input.service,
      environment: input.environment,
      executionArn: input.execution.arn,
      trigger: "rollback",
      mayTakeFree: true,
    },
    deps.lock,
  );
  if (!lock.acquired) throw new LockHeldError(`cannot roll back ${input.service}: ${lock.reason}. Nothing was changed.`);

  const ignoredAlarms = await firingAlarms(deps, s.alarms);
  const currentCapacity: Capacity = {
    min: current.MinSize ?? 0,
    max: current.MaxSize ?? 0,
    desired: current.DesiredCapacity ?? 0,
  };
  const health = await targetGroupHealth(deps.elbv2, currentTg);
  const lt = current.LaunchTemplate ?? current.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
  const prevLt = previous.LaunchTemplate ?? previous.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
  const previousCommit = g(previous, KILN_TAGS.commit);
  if (!previousCommit)
    throw new StepFailedError(
      `previous fleet ${previous.AutoScalingGroupName} has no ${KILN_TAGS.commit} tag: cannot tell what it would serve`,
    );
  return {
    service: input.service,
    environment: input.environment,
    executionName: input.execution.name,
    commit: previousCommit,
    imageId: g(previous, KILN_TAGS.image) ?? "",
    traffic,
    blue: {
      asgName: current.AutoScalingGroupName!,
      targetGroupArn: currentTg,
      capacity: currentCapacity,
      launchTemplateId: lt?.LaunchTemplateId ?? "",
      launchTemplateVersion: lt?.Version ?? "$Default",
      ...(g(current, KILN_TAGS.commit) ? { commit: g(current, KILN_TAGS.commit) } : {}),
    },
    green: {
      targetGroupArn: previousTg,
      asgName: previous.AutoScalingGroupName!,
      ...(prevLt?.Version && /^\d+$/.test(prevLt.Version) ? { launchTemplateVersion: Number(prevLt.Version) } : {}),
    },
    healthyBefore: health.healthy.length,
    floor: Math.ceil((health.healthy.length * s.minHealthyPercent) / 100),
    minHealthyPercent: s.minHealthyPercent,
    steps: s.canary,
    alarms: s.alarms.filter((n) => !ignoredAlarms.includes(n)),
    scripts: s.scripts,
    rollbackWindowSeconds: s.rollbackWindowSeconds,
    // The operator asked for this rollback: no second approval gate.
    approval: { required: false, timeoutSeconds: s.approval.timeoutSeconds },
    env: input.env ?? {},
    rollback: {
      previous: {
        asgName: previous.AutoScalingGroupName!,
        ...(previousCommit ? { commit: previousCommit } : {}),
        ...(g(previous, RETIRED_TAGS.retiredBy) ? { retiredBy: g(previous, RETIRED_TAGS.retiredBy) } : {}),
        windowEndsAt: new Date(windowEnd).toISOString(),
      },
      current: {
        asgName: current.AutoScalingGroupName!,
        ...(g(current, KILN_TAGS.commit) ? { commit: g(current, KILN_TAGS.commit) } : {}),
      },
      ignoredAlarms,
    },
  };
}

async function firingAlarms(deps: RollDeps, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < names.length; i += 100) {
    const r = await deps.cloudwatch.send(new DescribeAlarmsCommand({ AlarmNames: names.slice(i, i + 100) }));
    for (const a of r.MetricAlarms ?? []) if (a.StateValue === "ALARM") out.push(a.AlarmName!);
  }
  return out;
}

/**
 * Brings the previous fleet back: capacity = the current fleet's live capacity (WaitGreenReady
 * keeps carrying later changes), `kiln:role=fleet`, retirement tags removed, scaling processes
 * resumed. Its new instances take no traffic until ServiceInGreen smoke-tests and services them in.
 */
export async function restorePrevious(
  plan: RollbackPlan,
  deps: RollDeps,
): Promise<{ restored: boolean; capacity: Capacity; seen: Record<string, unknown> }> {
  await assertHoldsLock(plan, deps);
  const name = plan.green.asgName!;
  const prev = await describeGroup(deps.autoscaling, name);
  if (!prev)
    throw new StepFailedError(
      `previous fleet ${name} no longer exists (deleted at the end of its window?): deploy its commit instead`,
    );
  const cur = await describeGroup(deps.autoscaling, plan.blue.asgName);
  const capacity: Capacity =
    cur && (cur.DesiredCapacity ?? 0) > 0
      ? { min: cur.MinSize ?? 0, max: cur.MaxSize ?? 0, desired: cur.DesiredCapacity ?? 0 }
      : (parseCapacity(g(prev, RETIRED_TAGS.capacity)) ?? plan.blue.capacity);
  const changed = await unretire(prev, capacity, deps.autoscaling);
  await resumeAll(deps.autoscaling, name);
  return { restored: true, capacity, seen: { group: name, changed, previousDesired: prev.DesiredCapacity } };
}

/** Resumes scaling processes on both fleets and releases the lock (starting the newest queued commit). */
export async function finishRollback(
  input: { plan: RollbackPlan; executionArn: string },
  deps: RollDeps & { lock: StartDeps },
): Promise<Record<string, unknown>> {
  const { plan } = input;
  for (const name of [plan.green.asgName!, plan.blue.asgName])
    if (await describeGroup(deps.autoscaling, name)) await resumeAll(deps.autoscaling, name);
  const released = await releaseAndStartNext(
    { service: plan.service, environment: plan.environment ?? "", executionArn: input.executionArn },
    deps.lock,
  );
  return {
    service: plan.service,
    live: { asgName: plan.green.asgName, commit: plan.commit },
    retired: { asgName: plan.blue.asgName, commit: plan.blue.commit },
    lock: { released: released.released, reason: released.reason, started: released.started },
  };
}
