/**
 * Scheduled rotation: rebake the live commit on the newest base AMI and roll it, so no instance
 * lives longer than the service's max age — unless nothing would change, or a deployment is
 * running (rotation never interrupts or queues behind one). The answer always says why.
 */
import { type AutoScalingGroup, DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeImagesCommand, DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { GetParameterCommand } from "@aws-sdk/client-ssm";
import { ConfigInvalidError } from "../errors.ts";
import { executionStatus, readLock, type StartDeps, startOrQueue } from "../lock/lock.ts";
import { isFree } from "../lock/rules.ts";

/** Tags kiln puts on fleets and AMIs (ARCHITECTURE.md §2.7 provenance). */
export const ROTATION_TAGS = {
  service: "kiln:service",
  commit: "kiln:commit",
  /** The AMI a fleet runs (on the Auto Scaling group). */
  image: "kiln:image",
  /** The base AMI an image was baked on (on the AMI). */
  baseAmi: "kiln:base-ami",
} as const;

type Sender = { send(command: any): Promise<any> };

/** Where a service's base AMI comes from (the `baseAmi` of its configuration). */
export type BaseAmiSource = { ssmParameter: string } | { imageId: string } | { name: string; owners: string[] };

export interface RotationDeps extends StartDeps {
  ec2: Sender;
  autoscaling: Sender;
  ssm: Sender;
  /** The service's configured base AMI and maximum instance age. */
  service: { baseAmi: BaseAmiSource; maxInstanceAgeDays: number };
}

export interface LiveFleet {
  asgName: string;
  commit: string;
  imageId: string;
  /** Base AMI the running image was baked on; undefined when the image carries no such tag. */
  baseAmi?: string;
  /** Launch time of the oldest in-service instance (epoch ms). */
  oldestLaunch: number;
  instances: number;
}

export interface RotationResult {
  action: "started" | "skipped";
  reason: string;
  executionArn?: string;
  /** What the decision was based on, for the execution history and the logs. */
  observed?: { fleet?: LiveFleet; newestBaseAmi?: string; ageDays?: number; maxAgeDays?: number };
}

const tag = (tags: { Key?: string; Value?: string }[] | undefined, key: string) => tags?.find((t) => t.Key === key)?.Value;

/** The newest AMI of the configured source: an SSM parameter, a fixed id, or the newest available name match. */
export async function resolveBaseAmi(source: BaseAmiSource, deps: { ec2: Sender; ssm: Sender }): Promise<string> {
  if ("imageId" in source) return source.imageId;
  if ("ssmParameter" in source) {
    const r = await deps.ssm.send(new GetParameterCommand({ Name: source.ssmParameter }));
    const v = r.Parameter?.Value;
    if (!v?.startsWith("ami-"))
      throw new ConfigInvalidError(`SSM parameter ${source.ssmParameter} does not hold an AMI id (got ${JSON.stringify(v)})`);
    return v;
  }
  const r = await deps.ec2.send(
    new DescribeImagesCommand({
      Owners: source.owners,
      Filters: [
        { Name: "name", Values: [source.name] },
        { Name: "state", Values: ["available"] },
      ],
    }),
  );
  const newest = [...(r.Images ?? [])].sort((a, b) =>
    String(b.CreationDate ?? "").localeCompare(String(a.CreationDate ?? "")),
  )[0];
  if (!newest?.ImageId)
    throw new ConfigInvalidError(`no available AMI matches name ${source.name} owned by ${source.owners.join(", ")}`);
  return newest.ImageId;
}

/**
 * The fleet serving the service: its Auto Scaling group (tagged `kiln:service`) with the most
 * in-service instances, the commit and AMI it runs, the base AMI that AMI was baked on, and the
 * launch time of its oldest instance.
 */
export async function findLiveFleet(
  service: string,
  deps: { autoscaling: Sender; ec2: Sender },
  environment?: string,
): Promise<LiveFleet | undefined> {
  const groups: AutoScalingGroup[] = [];
  let NextToken: string | undefined;
  do {
    const r = await deps.autoscaling.send(
      new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: `tag:${ROTATION_TAGS.service}`, Values: [service] }], NextToken }),
    );
    groups.push(...(r.AutoScalingGroups ?? []));
    NextToken = r.NextToken;
  } while (NextToken);
  const inService = (g: AutoScalingGroup) => (g.Instances ?? []).filter((i) => i.LifecycleState === "InService");
  const envOf = (g: AutoScalingGroup) => g.Tags?.find((t) => t.Key === "kiln:environment")?.Value;
  const live = groups
    .filter((g) => environment === undefined || envOf(g) === undefined || envOf(g) === environment)
    .filter((g) => (g.DesiredCapacity ?? 0) > 0 && inService(g).length > 0)
    .sort((a, b) => inService(b).length - inService(a).length || Number(b.CreatedTime ?? 0) - Number(a.CreatedTime ?? 0))[0];
  if (!live) return undefined;
  const ids = inService(live)
    .map((i) => i.InstanceId!)
    .filter(Boolean);
  const described = await deps.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
  const instances = (described.Reservations ?? []).flatMap((r: { Instances?: unknown[] }) => r.Instances ?? []) as {
    ImageId?: string;
    LaunchTime?: Date;
    Tags?: { Key?: string; Value?: string }[];
  }[];
  const imageId = tag(live.Tags, ROTATION_TAGS.image) ?? instances[0]?.ImageId;
  const commit = tag(live.Tags, ROTATION_TAGS.commit) ?? tag(instances[0]?.Tags, ROTATION_TAGS.commit);
  if (!imageId || !commit) return undefined;
  const image = await deps.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })).catch(() => ({ Images: [] }));
  const baseAmi = tag(image.Images?.[0]?.Tags, ROTATION_TAGS.baseAmi);
  const launches = instances.map((i) => (i.LaunchTime ? new Date(i.LaunchTime).getTime() : Number.NaN)).filter(Number.isFinite);
  const oldestLaunch = launches.length ? Math.min(...launches) : Number(live.CreatedTime ?? 0);
  return {
    asgName: live.AutoScalingGroupName!,
    commit,
    imageId,
    ...(baseAmi ? { baseAmi } : {}),
    oldestLaunch,
    instances: ids.length,
  };
}

/** `YYYYMMDD` of the clock's day (UTC): one rotation per service and day, a re-run the same day collapses. */
export function rotationNonce(now: number): string {
  return new Date(now).toISOString().slice(0, 10).replace(/-/g, "");
}

const DAY_MS = 86_400_000;

/** Rotation for one (service, environment) (EventBridge Scheduler invokes it with `{service}`: every environment). */
export async function rotate(input: { service: string; environment: string }, deps: RotationDeps): Promise<RotationResult> {
  const { service, environment } = input;
  const now = deps.clock.now();
  const maxAgeDays = deps.service.maxInstanceAgeDays;

  // Cheap check first; startOrQueue re-checks atomically at the end.
  const lock = await readLock(input, deps);
  if (lock?.holder) {
    const status = await executionStatus(deps.sfn, lock.holder);
    if (!isFree(lock, now, status)) {
      const failed = status === "FAILED" || status === "TIMED_OUT" || status === "ABORTED" || lock.lastFailed?.unresolved;
      return {
        action: "skipped",
        reason: failed
          ? `the last deployment ${lock.lastFailed?.executionArn ?? lock.holder} failed and is unresolved: redrive or abort it first`
          : `a deployment is in progress (${lock.holder}); rotation never interrupts one`,
      };
    }
  }

  const fleet = await findLiveFleet(service, deps, environment);
  if (!fleet)
    return {
      action: "skipped",
      reason: `no live fleet of ${service} (an Auto Scaling group tagged kiln:service with in-service instances and kiln:commit)`,
    };
  const newest = await resolveBaseAmi(deps.service.baseAmi, deps);
  const ageDays = (now - fleet.oldestLaunch) / DAY_MS;
  const observed = { fleet, newestBaseAmi: newest, ageDays: Math.round(ageDays * 100) / 100, maxAgeDays };
  const age = `${observed.ageDays} days old (max ${maxAgeDays})`;

  const reasons: string[] = [];
  if (fleet.baseAmi && fleet.baseAmi !== newest) reasons.push(`base AMI changed ${fleet.baseAmi} → ${newest}`);
  if (ageDays >= maxAgeDays) reasons.push(`the oldest instance is ${age}`);
  if (reasons.length === 0) {
    // An image without the tag cannot be compared; only age then triggers (never a daily rebake).
    const base = fleet.baseAmi
      ? `base AMI unchanged (${newest})`
      : `base AMI of ${fleet.imageId} unknown (no ${ROTATION_TAGS.baseAmi} tag)`;
    return { action: "skipped", reason: `${base} and the oldest instance is ${age}`, observed };
  }

  const r = await startOrQueue(
    {
      input: { service, environment, commit: fleet.commit, trigger: "rotation", requestedBy: "schedule" },
      nonce: rotationNonce(now),
      ifBusy: "skip",
    },
    deps,
  );
  const reason = reasons.join("; ");
  switch (r.action) {
    case "started":
      if (r.duplicate && r.status !== "RUNNING") {
        return {
          action: "skipped",
          reason: `already rotated today (${r.executionArn} ${r.status})`,
          executionArn: r.executionArn,
          observed,
        };
      }
      return {
        action: "started",
        reason: r.duplicate ? `${reason} (already running)` : reason,
        executionArn: r.executionArn,
        observed,
      };
    case "busy":
      return { action: "skipped", reason: r.reason, observed };
    case "ignored":
      // The same (commit, day) was already accepted: the request is a repeat.
      return {
        action: "skipped",
        reason: /redelivery/.test(r.reason) ? `already rotated today: ${r.reason}` : r.reason,
        observed,
      };
    default:
      return { action: "skipped", reason: r.reason, observed };
  }
}
