import {
  type AutoScalingClient,
  type AutoScalingGroup,
  CreateAutoScalingGroupCommand,
  DeleteAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeLifecycleHooksCommand,
  PutLifecycleHookCommand,
  type Tag,
  UpdateAutoScalingGroupCommand,
} from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateVersionCommand, DescribeLaunchTemplateVersionsCommand, type EC2Client } from "@aws-sdk/client-ec2";
import { DescribeInstanceInformationCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { StepFailedError } from "../errors.ts";
import { clientToken, resourceName } from "../names.ts";

/** Capacity of a fleet, as Auto Scaling holds it. */
export interface Capacity {
  min: number;
  max: number;
  desired: number;
}

/** The fleet a deployment replaces (blue) or creates (green). */
export interface FleetRef {
  asgName: string;
  targetGroupArn: string;
}

export const KILN_TAGS = {
  service: "kiln:service",
  environment: "kiln:environment",
  execution: "kiln:execution",
  role: "kiln:role",
  commit: "kiln:commit",
  image: "kiln:image",
  /** On an instance: the execution whose smoke test and service-in it passed (ServiceInGreen, RestoreBlue). */
  ready: "kiln:ready",
} as const;

export async function describeGroup(autoscaling: AutoScalingClient, name: string): Promise<AutoScalingGroup | undefined> {
  const r = await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }));
  return r.AutoScalingGroups?.[0];
}

/**
 * Every Auto Scaling group tagged for the service (paginated); with `environment`, only that
 * environment's (tagged `kiln:environment` with it, or untagged: a fleet kiln adopted).
 */
export async function serviceGroups(
  autoscaling: AutoScalingClient,
  service: string,
  environment?: string,
): Promise<AutoScalingGroup[]> {
  const out: AutoScalingGroup[] = [];
  let NextToken: string | undefined;
  do {
    const r = await autoscaling.send(
      new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: `tag:${KILN_TAGS.service}`, Values: [service] }], NextToken }),
    );
    out.push(...(r.AutoScalingGroups ?? []));
    NextToken = r.NextToken;
  } while (NextToken);
  if (environment === undefined) return out;
  return out.filter((g) => {
    const env = tagValue(g.Tags, KILN_TAGS.environment);
    return env === undefined || env === environment;
  });
}

export function tagValue(tags: { Key?: string; Value?: string }[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/** Name of the green group for an execution: stable across retries and redrives. */
export function greenGroupName(service: string, commit: string, executionName: string): string {
  return resourceName(service, `${commit.slice(0, 7)}-${clientToken(executionName, "green").slice(-8)}`, 255);
}

export interface CreateGreenInput {
  service: string;
  environment?: string;
  executionName: string;
  commit: string;
  imageId: string;
  blue: { asgName: string; capacity: Capacity; launchTemplateId: string; launchTemplateVersion: string };
  greenTargetGroupArn: string;
}

export interface CreateGreenResult {
  asgName: string;
  launchTemplateId: string;
  launchTemplateVersion: number;
  capacity: Capacity;
  adopted: { launchTemplateVersion: boolean; group: boolean };
}

/**
 * Creates the green fleet: a new launch-template version pinned to the baked AMI (an explicit
 * version number, never `$Latest`/`$Default`) and a green Auto Scaling group copying blue's
 * capacity, subnets, health-check settings, lifecycle hooks and tags, attached to the idle target
 * group. Reconciles: a retry adopts the version made with the same client token and the group of
 * the same name.
 */
export async function ensureGreenGroup(
  input: CreateGreenInput,
  deps: { ec2: EC2Client; autoscaling: AutoScalingClient },
): Promise<CreateGreenResult> {
  const blue = await describeGroup(deps.autoscaling, input.blue.asgName);
  if (!blue)
    throw new StepFailedError(`blue group ${input.blue.asgName} no longer exists; abort this deployment and start again`);
  const ltVersion = await ensureLaunchTemplateVersion(input, deps.ec2);
  const asgName = greenGroupName(input.service, input.commit, input.executionName);
  let group = await describeGroup(deps.autoscaling, asgName);
  const adoptedGroup = Boolean(group);
  // Carry blue's live capacity (it may have scaled since the plan was made).
  const capacity: Capacity = {
    min: blue.MinSize ?? input.blue.capacity.min,
    max: blue.MaxSize ?? input.blue.capacity.max,
    desired: blue.DesiredCapacity ?? input.blue.capacity.desired,
  };
  if (!group) {
    const copied: Tag[] = (blue.Tags ?? [])
      .filter((t) => t.Key && !t.Key.startsWith("kiln:") && !t.Key.startsWith("aws:"))
      .map((t) => ({ Key: t.Key, Value: t.Value, PropagateAtLaunch: t.PropagateAtLaunch }));
    const kilnTags: Tag[] = [
      { Key: KILN_TAGS.service, Value: input.service, PropagateAtLaunch: true },
      ...(input.environment ? [{ Key: KILN_TAGS.environment, Value: input.environment, PropagateAtLaunch: true }] : []),
      { Key: KILN_TAGS.execution, Value: input.executionName, PropagateAtLaunch: true },
      { Key: KILN_TAGS.role, Value: "fleet", PropagateAtLaunch: true },
      { Key: KILN_TAGS.commit, Value: input.commit, PropagateAtLaunch: true },
      { Key: KILN_TAGS.image, Value: input.imageId, PropagateAtLaunch: true },
    ];
    try {
      await deps.autoscaling.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: asgName,
          LaunchTemplate: { LaunchTemplateId: ltVersion.id, Version: String(ltVersion.version) },
          MinSize: capacity.min,
          MaxSize: capacity.max,
          DesiredCapacity: capacity.desired,
          VPCZoneIdentifier: blue.VPCZoneIdentifier,
          HealthCheckType: blue.HealthCheckType,
          HealthCheckGracePeriod: blue.HealthCheckGracePeriod,
          DefaultInstanceWarmup: blue.DefaultInstanceWarmup,
          TerminationPolicies: blue.TerminationPolicies,
          TargetGroupARNs: [input.greenTargetGroupArn],
          Tags: [...copied, ...kilnTags],
        }),
      );
    } catch (err) {
      if ((err as Error).name !== "AlreadyExistsFault") throw err;
    }
    group = await describeGroup(deps.autoscaling, asgName);
  }
  await copyLifecycleHooks(deps.autoscaling, input.blue.asgName, asgName);
  return {
    asgName,
    launchTemplateId: ltVersion.id,
    launchTemplateVersion: ltVersion.version,
    capacity,
    adopted: { launchTemplateVersion: ltVersion.adopted, group: adoptedGroup },
  };
}

async function ensureLaunchTemplateVersion(
  input: CreateGreenInput,
  ec2: EC2Client,
): Promise<{ id: string; version: number; adopted: boolean }> {
  const description = `kiln ${input.executionName}`;
  // A version made by an earlier attempt of this execution carries its name in the description.
  const existing = await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: input.blue.launchTemplateId }));
  const found = existing.LaunchTemplateVersions?.find(
    (v) => v.VersionDescription === description && v.LaunchTemplateData?.ImageId === input.imageId,
  );
  if (found?.VersionNumber) return { id: input.blue.launchTemplateId, version: found.VersionNumber, adopted: true };
  const r = await ec2.send(
    new CreateLaunchTemplateVersionCommand({
      LaunchTemplateId: input.blue.launchTemplateId,
      SourceVersion: input.blue.launchTemplateVersion,
      VersionDescription: description,
      ClientToken: clientToken(input.executionName, "CreateGreenFleet"),
      LaunchTemplateData: {
        ImageId: input.imageId,
        TagSpecifications: ["instance", "volume"].map((ResourceType) => ({
          ResourceType: ResourceType as "instance" | "volume",
          Tags: [
            { Key: KILN_TAGS.service, Value: input.service },
            { Key: KILN_TAGS.execution, Value: input.executionName },
            { Key: KILN_TAGS.role, Value: "fleet" },
            { Key: KILN_TAGS.commit, Value: input.commit },
            { Key: KILN_TAGS.image, Value: input.imageId },
          ],
        })),
      },
    }),
  );
  const v = r.LaunchTemplateVersion?.VersionNumber;
  if (!v) throw new StepFailedError(`CreateLaunchTemplateVersion on ${input.blue.launchTemplateId} returned no version number`);
  return { id: input.blue.launchTemplateId, version: v, adopted: false };
}

async function copyLifecycleHooks(autoscaling: AutoScalingClient, from: string, to: string): Promise<void> {
  const [src, dst] = await Promise.all([
    autoscaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: from })),
    autoscaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: to })),
  ]);
  const have = new Set((dst.LifecycleHooks ?? []).map((h) => h.LifecycleHookName));
  for (const h of src.LifecycleHooks ?? []) {
    if (!h.LifecycleHookName || have.has(h.LifecycleHookName)) continue;
    await autoscaling.send(
      new PutLifecycleHookCommand({
        AutoScalingGroupName: to,
        LifecycleHookName: h.LifecycleHookName,
        LifecycleTransition: h.LifecycleTransition,
        HeartbeatTimeout: h.HeartbeatTimeout,
        DefaultResult: h.DefaultResult,
        NotificationTargetARN: h.NotificationTargetARN,
        RoleARN: h.RoleARN,
        NotificationMetadata: h.NotificationMetadata,
      }),
    );
  }
}

export interface FleetReadiness {
  ready: boolean;
  desired: number;
  inService: string[];
  online: string[];
  /** Lifecycle states of instances not yet InService. */
  pending: { id: string; state: string }[];
}

/** Whether every desired instance of a group is InService with its SSM agent online. */
export async function fleetReadiness(
  asgName: string,
  deps: { autoscaling: AutoScalingClient; ssm: SSMClient },
): Promise<FleetReadiness> {
  const g = await describeGroup(deps.autoscaling, asgName);
  if (!g) throw new StepFailedError(`group ${asgName} does not exist`);
  const inService = (g.Instances ?? []).filter((i) => i.LifecycleState === "InService").map((i) => i.InstanceId!);
  const pending = (g.Instances ?? [])
    .filter((i) => i.LifecycleState !== "InService")
    .map((i) => ({ id: i.InstanceId!, state: i.LifecycleState ?? "?" }));
  const online = await onlineInstances(deps.ssm, inService);
  const desired = g.DesiredCapacity ?? 0;
  return { ready: inService.length >= desired && online.length >= desired, desired, inService, online, pending };
}

/** The subset of instances whose SSM agent is Online. */
export async function onlineInstances(ssm: SSMClient, ids: string[]): Promise<string[]> {
  const online: string[] = [];
  for (let i = 0; i < ids.length; i += 50) {
    const batch = ids.slice(i, i + 50);
    let NextToken: string | undefined;
    do {
      const r = await ssm.send(
        new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: batch }], NextToken, MaxResults: 50 }),
      );
      for (const info of r.InstanceInformationList ?? []) if (info.PingStatus === "Online") online.push(info.InstanceId!);
      NextToken = r.NextToken;
    } while (NextToken);
  }
  return online;
}

/** Sets a group's capacity (idempotent). */
export async function setCapacity(autoscaling: AutoScalingClient, asgName: string, c: Capacity): Promise<void> {
  await autoscaling.send(
    new UpdateAutoScalingGroupCommand({
      AutoScalingGroupName: asgName,
      MinSize: c.min,
      MaxSize: c.max,
      DesiredCapacity: c.desired,
    }),
  );
}

/** Deletes a group and its instances; a group already gone is success. */
export async function deleteGroup(autoscaling: AutoScalingClient, asgName: string): Promise<void> {
  try {
    await autoscaling.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: asgName, ForceDelete: true }));
  } catch (err) {
    if (!/not found|does not exist/i.test((err as Error).message)) throw err;
  }
}
