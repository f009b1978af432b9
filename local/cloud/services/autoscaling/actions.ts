/**
 * The EC2 Auto Scaling API (awsQuery, 2011-01-01): input validation and wire-shaped outputs.
 * Behaviour over time (launching, draining, hooks, health) lives in backend.ts.
 *
 * Error codes are the wire codes; the SDK maps the modeled ones to shape names
 * (`AlreadyExists` → `AlreadyExistsFault`, `ResourceInUse` → `ResourceInUseFault`, …).
 */
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { Action } from "../../protocol/types.ts";
import { type AutoScalingBackend, causeTime } from "./backend.ts";
import {
  type Activity,
  type AsgInstance,
  type Attachment,
  type Group,
  LAUNCHING,
  LIVE_STATES,
  type LifecycleHook,
  type LifecycleResult,
  PROCESSES,
  type ProcessName,
  TERMINATING,
  TERMINATING_STATES,
} from "./model.ts";

const HEALTH_CHECK_TYPES = new Set(["EC2", "ELB", "EBS", "VPC_LATTICE"]);
const TERMINATION_POLICIES = new Set([
  "Default",
  "OldestInstance",
  "NewestInstance",
  "OldestLaunchConfiguration",
  "OldestLaunchTemplate",
  "ClosestToNextInstanceHour",
  "AllocationStrategy",
]);
const MAX_HOOKS = 50;
const HOOK_NAME = /^[A-Za-z0-9\-_/]+$/;

const validation = (message: string) => new AwsError("ValidationError", message);

/** Opaque pagination over a stable list; a token we did not issue is `InvalidNextToken`. */
function page<T>(items: T[], maxRecords: number, nextToken: string | undefined): { items: T[]; NextToken?: string } {
  let start = 0;
  if (nextToken) {
    const m = /^o:(\d+)$/.exec(Buffer.from(nextToken, "base64").toString("utf8"));
    if (!m) throw new AwsError("InvalidNextToken", `The token '${nextToken}' is invalid.`);
    start = Number(m[1]);
  }
  const end = start + maxRecords;
  const slice = items.slice(start, end);
  return end < items.length ? { items: slice, NextToken: Buffer.from(`o:${end}`).toString("base64") } : { items: slice };
}

function maxRecords(p: Params, dflt: number, max: number): number {
  return p.int("MaxRecords", { min: 1, max, default: dflt }) ?? dflt;
}

function splitList(s: string | undefined): string[] {
  return (s ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}

/** Builds every action of the service around one backend. */
export function autoScalingActions(b: AutoScalingBackend): Record<string, Action> {
  const now = () => b.now();

  /** A group that may still be changed (not being force-deleted). */
  const mutable = (name: string): Group => {
    const g = b.group(name);
    if (g.deleting) throw validation(b.message("groupDeleting", "AutoScalingGroup {name} is pending delete.", { name }));
    return g;
  };

  const templateError = (err: unknown): AwsError => {
    if (err instanceof AwsError && err.code !== "ValidationError") {
      return validation(
        b.message("launchTemplateInvalid", "You must use a valid fully-formed launch template. {reason}", {
          reason: err.message,
        }),
      );
    }
    return err instanceof AwsError ? err : validation(String(err));
  };

  /** Validates a LaunchTemplate / LaunchTemplateSpecification and fills in both id and name. */
  const launchTemplate = (p: Params | undefined): Group["launchTemplate"] => {
    if (!p) return undefined;
    const id = p.str("LaunchTemplateId");
    const name = p.str("LaunchTemplateName");
    const version = p.str("Version");
    if ((id && name) || (!id && !name))
      throw validation("Valid requests must contain either launchTemplateId or LaunchTemplateName");
    const ec2 = b.ec2();
    if (!ec2) return { LaunchTemplateId: id ?? "", LaunchTemplateName: name ?? "", ...(version ? { Version: version } : {}) };
    try {
      const r = ec2.resolveLaunchTemplate({ id, name, version: version ?? "$Default" });
      return { LaunchTemplateId: r.id, LaunchTemplateName: r.name, ...(version ? { Version: version } : {}) };
    } catch (err) {
      throw templateError(err);
    }
  };

  const mixedPolicy = (p: Params | undefined): Group["mixedInstancesPolicy"] => {
    if (!p) return undefined;
    const lt = p.obj("LaunchTemplate", { required: true })!;
    const spec = launchTemplate(lt.obj("LaunchTemplateSpecification", { required: true }));
    const raw = structuredClone(p.raw) as Record<string, Record<string, unknown>>;
    raw.LaunchTemplate!.LaunchTemplateSpecification = spec;
    return raw;
  };

  const subnets = (vpcZoneIdentifier: string | undefined, azs: string[]): { id: string; az: string }[] => {
    const ec2 = b.ec2();
    const known = ec2?.subnets() ?? [];
    const ids = splitList(vpcZoneIdentifier);
    if (ids.length > 0) {
      return ids.map((id) => {
        const s = known.find((k) => k.id === id);
        if (!s && ec2) throw validation(`The subnet ID '${id}' does not exist`);
        return { id, az: s?.az ?? `${b.cloud.region}a` };
      });
    }
    return azs.map((az) => {
      const s = known.find((k) => k.az === az);
      if (!s && ec2) throw validation(`Invalid Availability Zone: ${az}`);
      return { id: s?.id ?? "", az };
    });
  };

  const healthCheckType = (v: string | undefined): string | undefined => {
    if (v === undefined) return undefined;
    const parts = splitList(v);
    for (const t of parts)
      if (!HEALTH_CHECK_TYPES.has(t))
        throw validation(`Invalid value '${t}' for HealthCheckType: must be one of EC2, ELB, EBS, VPC_LATTICE`);
    return parts.join(",");
  };

  const terminationPolicies = (list: string[]): string[] => {
    for (const t of list) if (!TERMINATION_POLICIES.has(t)) throw validation(`Invalid termination policy: ${t}`);
    return list;
  };

  /** Target groups must exist before they can be attached. */
  const targetGroups = (arns: string[]): string[] => {
    const elb = b.elb();
    const bad = arns.filter((a) => !elb?.hasTargetGroup(a));
    if (bad.length)
      throw validation(
        b.message("targetGroupInvalid", "Provided Target Groups may not be valid. Please ensure they exist and try again.", {
          arns: bad.join(","),
        }),
      );
    return arns;
  };

  const trafficSources = (p: Params, name: string, required: boolean): string[] => {
    const list = p.list<{ Identifier?: string; Type?: string }>(name, { required });
    const ids = list.map((t) => {
      if (!t?.Identifier) throw validation(`${name}.member.Identifier is required`);
      const type = t.Type ?? (t.Identifier.includes(":targetgroup/") ? "elbv2" : "");
      if (type !== "elbv2")
        throw validation(`Traffic source type '${type || "(none)"}' is not supported by the simulated cloud (only elbv2)`);
      return t.Identifier;
    });
    return targetGroups(ids);
  };

  const sizes = (min: number, max: number, desired: number) => {
    if (min > max) throw validation(`Max bound, ${max}, must be greater than or equal to min bound, ${min}`);
    if (desired < min || desired > max)
      throw validation(`Desired capacity:${desired} must be between the specified min size:${min} and max size:${max}`);
  };

  const hookFrom = (p: Params, existing?: LifecycleHook): LifecycleHook => {
    const name = p.str("LifecycleHookName", { required: true, pattern: HOOK_NAME, max: 255 });
    const transition = p.str("LifecycleTransition") ?? existing?.transition;
    if (!transition) throw validation("LifecycleTransition is required when creating a lifecycle hook");
    if (transition !== LAUNCHING && transition !== TERMINATING) throw validation(`Invalid Lifecycle Transition: ${transition}`);
    const heartbeat = p.int("HeartbeatTimeout") ?? existing?.heartbeatTimeoutS ?? 3600;
    if (heartbeat < 30 || heartbeat > 7200)
      throw validation(`Heartbeat timeout must be between 30 and 7200 seconds, got ${heartbeat}`);
    const result = p.str("DefaultResult") ?? existing?.defaultResult ?? "ABANDON";
    if (result !== "CONTINUE" && result !== "ABANDON")
      throw validation(`Invalid default result: ${result}. Must be one of CONTINUE or ABANDON`);
    const metadata = p.str("NotificationMetadata", { max: 4000 }) ?? existing?.notificationMetadata;
    const target = p.str("NotificationTargetARN") ?? existing?.notificationTargetArn;
    const role = p.str("RoleARN") ?? existing?.roleArn;
    return {
      name,
      transition,
      heartbeatTimeoutS: heartbeat,
      defaultResult: result,
      ...(metadata !== undefined ? { notificationMetadata: metadata } : {}),
      ...(target !== undefined ? { notificationTargetArn: target } : {}),
      ...(role !== undefined ? { roleArn: role } : {}),
    };
  };

  const tagsFrom = (p: Params, name: string): { ResourceId?: string; Key: string; Value: string; PropagateAtLaunch: boolean }[] =>
    p.list<Record<string, string>>(name).map((t) => {
      const tp = new Params(t, "query");
      return {
        ResourceId: tp.str("ResourceId"),
        Key: tp.str("Key", { required: true, max: 128 }),
        Value: tp.str("Value", { max: 256 }) ?? "",
        PropagateAtLaunch: tp.bool("PropagateAtLaunch", false) ?? false,
      };
    });

  // ---------------------------------------------------------------- output shapes

  const instanceOut = (i: AsgInstance) => ({
    InstanceId: i.id,
    InstanceType: i.instanceType,
    AvailabilityZone: i.az,
    LifecycleState: i.state,
    HealthStatus: i.health,
    ...(i.template
      ? {
          LaunchTemplate: {
            LaunchTemplateId: i.template.id,
            LaunchTemplateName: i.template.name,
            Version: String(i.template.version),
          },
        }
      : {}),
    ProtectedFromScaleIn: i.protected,
  });

  const tagOut = (g: Group, key: string, t: { Value: string; PropagateAtLaunch: boolean }) => ({
    ResourceId: g.name,
    ResourceType: "auto-scaling-group",
    Key: key,
    Value: t.Value,
    PropagateAtLaunch: t.PropagateAtLaunch,
  });

  const attachments = (g: Group, via?: Attachment["via"]) => [...g.attachments.values()].filter((a) => !via || a.via === via);

  const groupOut = (g: Group, includeInstances: boolean) => ({
    AutoScalingGroupName: g.name,
    AutoScalingGroupARN: g.arn,
    LaunchTemplate: g.launchTemplate,
    MixedInstancesPolicy: g.mixedInstancesPolicy,
    MinSize: g.minSize,
    MaxSize: g.maxSize,
    DesiredCapacity: g.desired,
    DefaultCooldown: g.defaultCooldownS,
    AvailabilityZones: g.availabilityZones,
    LoadBalancerNames: [],
    TargetGroupARNs: attachments(g, "TargetGroupARNs").map((a) => a.identifier),
    HealthCheckType: g.healthCheckType,
    HealthCheckGracePeriod: g.healthCheckGracePeriodS,
    Instances: includeInstances ? [...g.instances.values()].map(instanceOut) : undefined,
    CreatedTime: g.createdTime,
    SuspendedProcesses: [...g.suspended].map(([ProcessName, SuspensionReason]) => ({ ProcessName, SuspensionReason })),
    VPCZoneIdentifier: g.vpcZoneIdentifier,
    EnabledMetrics: [],
    Status: g.deleting ? "Delete in progress" : undefined,
    Tags: [...g.tags].map(([k, t]) => tagOut(g, k, t)),
    TerminationPolicies: g.terminationPolicies,
    NewInstancesProtectedFromScaleIn: g.newInstancesProtectedFromScaleIn,
    ServiceLinkedRoleARN: `arn:aws:iam::${b.cloud.accountId}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
    MaxInstanceLifetime: g.maxInstanceLifetimeS,
    CapacityRebalance: g.capacityRebalance,
    DefaultInstanceWarmup: g.defaultInstanceWarmupS,
    TrafficSources: attachments(g).map((a) => ({ Identifier: a.identifier, Type: a.type })),
  });

  const activityOut = (a: Activity) => ({ ...a });

  const hookOut = (g: Group, h: LifecycleHook) => ({
    LifecycleHookName: h.name,
    AutoScalingGroupName: g.name,
    LifecycleTransition: h.transition,
    NotificationTargetARN: h.notificationTargetArn,
    RoleARN: h.roleArn,
    NotificationMetadata: h.notificationMetadata,
    HeartbeatTimeout: h.heartbeatTimeoutS,
    GlobalTimeout: Math.min(48 * 3600, 100 * h.heartbeatTimeoutS),
    DefaultResult: h.defaultResult,
  });

  /** Members of the group named by the request, or AWS's ValidationError. */
  const members = (g: Group, ids: string[]): AsgInstance[] =>
    ids.map((id) => {
      const i = g.instances.get(id);
      if (!i)
        throw validation(
          b.message("instanceNotInGroup", "The instance {id} is not part of Auto Scaling group {name}.", { id, name: g.name }),
        );
      return i;
    });

  const liveCount = (g: Group) => [...g.instances.values()].filter((i) => LIVE_STATES.has(i.state)).length;

  return {
    // ------------------------------------------------------------ groups
    CreateAutoScalingGroup: (input) => {
      const p = new Params(input, "query");
      const name = p.str("AutoScalingGroupName", { required: true, max: 255 });
      const minSize = p.int("MinSize", { required: true, min: 0 });
      const maxSize = p.int("MaxSize", { required: true, min: 0 });
      const desired = p.int("DesiredCapacity", { min: 0 }) ?? minSize;
      const existing = b.groups.get(name);
      if (existing) {
        throw new AwsError(
          "AlreadyExists",
          existing.deleting
            ? b.message(
                "alreadyExistsDeleting",
                "AutoScalingGroup by this name already exists and is pending delete - A group with the name {name} already exists",
                { name },
              )
            : `AutoScalingGroup by this name already exists - A group with the name ${name} already exists`,
        );
      }
      const sources = ["LaunchTemplate", "MixedInstancesPolicy", "LaunchConfigurationName", "InstanceId"].filter((k) => p.has(k));
      if (sources.length !== 1)
        throw validation(
          "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        );
      if (sources[0] === "LaunchConfigurationName" || sources[0] === "InstanceId") {
        throw validation(
          `${sources[0]} is not supported by the simulated cloud: use a LaunchTemplate (launch configurations are deprecated)`,
        );
      }
      sizes(minSize, maxSize, desired);
      const lt = launchTemplate(p.obj("LaunchTemplate"));
      const mixed = mixedPolicy(p.obj("MixedInstancesPolicy"));
      const vpcZoneIdentifier = p.str("VPCZoneIdentifier");
      const azs = p.list<string>("AvailabilityZones");
      if (!splitList(vpcZoneIdentifier).length && !azs.length)
        throw validation("At least one Availability Zone or VPC Subnet is required.");
      const nets = subnets(vpcZoneIdentifier, azs);
      const tgs = targetGroups(p.list<string>("TargetGroupARNs"));
      const ts = trafficSources(p, "TrafficSources", false);
      const hooks = p.list<Record<string, string>>("LifecycleHookSpecificationList").map((h) => hookFrom(new Params(h, "query")));
      const tags = tagsFrom(p, "Tags");
      for (const t of tags)
        if (t.ResourceId && t.ResourceId !== name)
          throw validation(`Tag ResourceId ${t.ResourceId} does not match the group name ${name}`);
      const t = now();
      const g: Group = {
        name,
        arn: `arn:aws:autoscaling:${b.cloud.region}:${b.cloud.accountId}:autoScalingGroup:${b.uuid()}:autoScalingGroupName/${name}`,
        createdTime: b.cloud.clock.date(),
        ...(lt ? { launchTemplate: lt } : {}),
        ...(mixed ? { mixedInstancesPolicy: mixed } : {}),
        minSize,
        maxSize,
        desired,
        defaultCooldownS: p.int("DefaultCooldown", { min: 0 }) ?? 300,
        subnets: nets,
        availabilityZones: [...new Set(nets.map((s) => s.az))],
        ...(vpcZoneIdentifier ? { vpcZoneIdentifier: splitList(vpcZoneIdentifier).join(",") } : {}),
        healthCheckType: healthCheckType(p.str("HealthCheckType")) ?? "EC2",
        // The API default is 0 (the console's 300 is a console default).
        healthCheckGracePeriodS: p.int("HealthCheckGracePeriod", { min: 0 }) ?? 0,
        ...(p.has("DefaultInstanceWarmup") ? { defaultInstanceWarmupS: p.int("DefaultInstanceWarmup", { min: -1 }) } : {}),
        ...(p.has("MaxInstanceLifetime") ? { maxInstanceLifetimeS: p.int("MaxInstanceLifetime", { min: 0 }) } : {}),
        capacityRebalance: p.bool("CapacityRebalance", false) ?? false,
        terminationPolicies: terminationPolicies(
          p.list<string>("TerminationPolicies").length ? p.list<string>("TerminationPolicies") : ["Default"],
        ),
        newInstancesProtectedFromScaleIn: p.bool("NewInstancesProtectedFromScaleIn", false) ?? false,
        tags: new Map(tags.map((x) => [x.Key, { Value: x.Value, PropagateAtLaunch: x.PropagateAtLaunch }])),
        attachments: new Map(),
        suspended: new Map(),
        hooks: new Map(hooks.map((h) => [h.name, h])),
        instances: new Map(),
        deleting: false,
        lastCause: `At ${causeTime(t)} a user request created an AutoScalingGroup changing the desired capacity from 0 to ${desired}.`,
        lastActivityEnd: 0,
        launchFailures: 0,
        nextLaunchAt: 0,
      };
      for (const arn of tgs) g.attachments.set(arn, { identifier: arn, type: "elbv2", via: "TargetGroupARNs", state: "Added" });
      for (const arn of ts)
        if (!g.attachments.has(arn))
          g.attachments.set(arn, { identifier: arn, type: "elbv2", via: "TrafficSources", state: "Added" });
      b.add(g);
      return undefined;
    },

    UpdateAutoScalingGroup: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      if (p.has("LaunchConfigurationName"))
        throw validation("LaunchConfigurationName is not supported by the simulated cloud: use a LaunchTemplate");
      if (p.has("LaunchTemplate") && p.has("MixedInstancesPolicy"))
        throw validation("Valid requests must contain either LaunchTemplate or MixedInstancesPolicy, not both.");
      const minSize = p.int("MinSize", { min: 0 }) ?? g.minSize;
      const maxSize = p.int("MaxSize", { min: 0 }) ?? g.maxSize;
      let desired = p.int("DesiredCapacity", { min: 0 });
      if (desired === undefined) {
        // A new minimum above the current capacity raises it; a new maximum below lowers it.
        desired = Math.min(maxSize, Math.max(minSize, g.desired));
      }
      sizes(minSize, maxSize, desired);
      const lt = launchTemplate(p.obj("LaunchTemplate"));
      const mixed = mixedPolicy(p.obj("MixedInstancesPolicy"));
      const hct = healthCheckType(p.str("HealthCheckType"));
      const vpc = p.str("VPCZoneIdentifier");
      const azs = p.list<string>("AvailabilityZones");
      const nets = vpc || azs.length ? subnets(vpc, azs) : undefined;
      const policies = p.list<string>("TerminationPolicies");
      if (policies.length) g.terminationPolicies = terminationPolicies(policies);
      if (lt) {
        g.launchTemplate = lt;
        delete g.mixedInstancesPolicy;
      }
      if (mixed) {
        g.mixedInstancesPolicy = mixed;
        delete g.launchTemplate;
      }
      if (nets) {
        g.subnets = nets;
        g.availabilityZones = [...new Set(nets.map((s) => s.az))];
        if (vpc) g.vpcZoneIdentifier = splitList(vpc).join(",");
      }
      if (hct) g.healthCheckType = hct;
      g.healthCheckGracePeriodS = p.int("HealthCheckGracePeriod", { min: 0 }) ?? g.healthCheckGracePeriodS;
      g.defaultCooldownS = p.int("DefaultCooldown", { min: 0 }) ?? g.defaultCooldownS;
      if (p.has("DefaultInstanceWarmup")) g.defaultInstanceWarmupS = p.int("DefaultInstanceWarmup", { min: -1 });
      if (p.has("MaxInstanceLifetime")) g.maxInstanceLifetimeS = p.int("MaxInstanceLifetime", { min: 0 });
      g.capacityRebalance = p.bool("CapacityRebalance", g.capacityRebalance) ?? g.capacityRebalance;
      g.newInstancesProtectedFromScaleIn =
        p.bool("NewInstancesProtectedFromScaleIn", g.newInstancesProtectedFromScaleIn) ?? false;
      if (desired !== g.desired) {
        g.lastCause = `At ${causeTime(now())} a user request update of AutoScalingGroup constraints to min: ${minSize}, max: ${maxSize}, desired: ${desired} changing the desired capacity from ${g.desired} to ${desired}.`;
      }
      g.minSize = minSize;
      g.maxSize = maxSize;
      g.desired = desired;
      // A changed configuration is worth a launch attempt now, not after the failure backoff.
      g.nextLaunchAt = 0;
      b.kick(g);
      return undefined;
    },

    DeleteAutoScalingGroup: (input) => {
      const p = new Params(input, "query");
      const g = b.group(p.str("AutoScalingGroupName", { required: true }));
      if (g.deleting) return undefined;
      if (p.bool("ForceDelete", false)) {
        b.forceDelete(g);
        return undefined;
      }
      if (b.inProgress(g))
        throw new AwsError(
          "ScalingActivityInProgress",
          "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group.",
        );
      if (g.instances.size > 0)
        throw new AwsError(
          "ResourceInUse",
          "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
        );
      g.deleting = true;
      b.reconcile(g);
      return undefined;
    },

    DescribeAutoScalingGroups: (input) => {
      const p = new Params(input, "query");
      const names = p.list<string>("AutoScalingGroupNames");
      const max = maxRecords(p, 50, 100);
      const nameLimit = p.has("MaxRecords") && max > 50 ? 100 : 50;
      if (names.length > nameLimit)
        throw validation(`The number of group names that may be passed in is limited to ${nameLimit}.`);
      const filters = p.list<{ Name?: string; Values?: string[] }>("Filters");
      let groups = [...b.groups.values()].sort((a, c) => a.name.localeCompare(c.name));
      if (names.length) groups = groups.filter((g) => names.includes(g.name));
      for (const f of filters) {
        const values = f.Values ?? [];
        const name = f.Name ?? "";
        groups = groups.filter((g) => {
          if (name === "tag-key") return values.some((v) => g.tags.has(v));
          if (name === "tag-value") return [...g.tags.values()].some((t) => values.includes(t.Value));
          if (name.startsWith("tag:")) {
            const t = g.tags.get(name.slice(4));
            return !!t && values.includes(t.Value);
          }
          throw validation(`Filter name ${name} is invalid. Valid names are tag-key, tag-value and tag:<key>.`);
        });
      }
      const pg = page(groups, max, p.str("NextToken"));
      const withInstances = p.bool("IncludeInstances", true) ?? true;
      return { AutoScalingGroups: pg.items.map((g) => groupOut(g, withInstances)), NextToken: pg.NextToken };
    },

    SetDesiredCapacity: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      const desired = p.int("DesiredCapacity", { required: true });
      if (desired > g.maxSize)
        throw validation(`New SetDesiredCapacity value ${desired} is above max value ${g.maxSize} for the AutoScalingGroup.`);
      if (desired < g.minSize)
        throw validation(`New SetDesiredCapacity value ${desired} is below min value ${g.minSize} for the AutoScalingGroup.`);
      if (p.bool("HonorCooldown", false) && (b.inProgress(g) || now() < g.lastActivityEnd + g.defaultCooldownS * 1000)) {
        throw new AwsError(
          "ScalingActivityInProgress",
          b.message(
            "cooldown",
            "Scaling activity is in progress or the group is in cooldown; the change was not made because HonorCooldown is set.",
            { name: g.name },
          ),
        );
      }
      if (desired !== g.desired) {
        g.lastCause = `At ${causeTime(now())} a user request explicitly set group desired capacity changing the desired capacity from ${g.desired} to ${desired}.`;
        g.desired = desired;
      }
      b.kick(g);
      return undefined;
    },

    DescribeAutoScalingInstances: (input) => {
      const p = new Params(input, "query");
      const ids = p.list<string>("InstanceIds");
      const all: { g: Group; i: AsgInstance }[] = [];
      for (const g of [...b.groups.values()].sort((a, c) => a.name.localeCompare(c.name))) {
        for (const i of g.instances.values()) if (!ids.length || ids.includes(i.id)) all.push({ g, i });
      }
      const pg = page(all, maxRecords(p, 50, 50), p.str("NextToken"));
      return {
        AutoScalingInstances: pg.items.map(({ g, i }) => ({
          ...instanceOut(i),
          AutoScalingGroupName: g.name,
          // This API spells health in capitals, unlike DescribeAutoScalingGroups (reference §3.2).
          HealthStatus: i.health.toUpperCase(),
        })),
        NextToken: pg.NextToken,
      };
    },

    // ------------------------------------------------------------ traffic sources
    AttachTrafficSources: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      b.attach(g, trafficSources(p, "TrafficSources", true), "TrafficSources");
      return {};
    },

    DetachTrafficSources: (input) => {
      const p = new Params(input, "query");
      const g = b.group(p.str("AutoScalingGroupName", { required: true }));
      const ids = p.list<{ Identifier?: string }>("TrafficSources", { required: true }).map((t) => t?.Identifier ?? "");
      b.detach(
        g,
        ids.filter((id) => g.attachments.has(id)),
      );
      return {};
    },

    DescribeTrafficSources: (input) => {
      const p = new Params(input, "query");
      const g = b.group(p.str("AutoScalingGroupName", { required: true }));
      const type = p.str("TrafficSourceType");
      const list = attachments(g).filter((a) => !type || a.type === type);
      const pg = page(list, maxRecords(p, 50, 50), p.str("NextToken"));
      return {
        TrafficSources: pg.items.map((a) => ({
          TrafficSource: a.identifier,
          State: a.state,
          Identifier: a.identifier,
          Type: a.type,
        })),
        NextToken: pg.NextToken,
      };
    },

    AttachLoadBalancerTargetGroups: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      b.attach(g, targetGroups(p.list<string>("TargetGroupARNs", { required: true })), "TargetGroupARNs");
      return {};
    },

    DetachLoadBalancerTargetGroups: (input) => {
      const p = new Params(input, "query");
      const g = b.group(p.str("AutoScalingGroupName", { required: true }));
      const arns = p.list<string>("TargetGroupARNs", { required: true });
      // A source attached with AttachTrafficSources cannot be detached with this API (reference §3.6).
      const foreign = arns.filter((a) => g.attachments.get(a)?.via !== "TargetGroupARNs");
      if (foreign.length)
        throw validation(
          b.message("targetGroupNotAttached", "Trying to remove Target Groups that are not part of the group: {arns}", {
            arns: foreign.join(", "),
          }),
        );
      b.detach(g, arns);
      return {};
    },

    DescribeLoadBalancerTargetGroups: (input) => {
      const p = new Params(input, "query");
      const g = b.group(p.str("AutoScalingGroupName", { required: true }));
      const pg = page(attachments(g, "TargetGroupARNs"), maxRecords(p, 100, 100), p.str("NextToken"));
      return {
        LoadBalancerTargetGroups: pg.items.map((a) => ({ LoadBalancerTargetGroupARN: a.identifier, State: a.state })),
        NextToken: pg.NextToken,
      };
    },

    // ------------------------------------------------------------ standby
    EnterStandby: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      const decrement = p.bool("ShouldDecrementDesiredCapacity");
      if (decrement === undefined) throw p.missing("ShouldDecrementDesiredCapacity");
      const insts = members(g, p.list<string>("InstanceIds"));
      for (const i of insts)
        if (i.state !== "InService")
          throw validation(b.message("notInService", "The instance {id} is not in InService.", { id: i.id }));
      const from = liveCount(g);
      if (decrement && g.desired - insts.length < g.minSize) {
        throw validation(
          `AutoScalingGroup ${g.name} has min-size=${g.minSize}, max-size=${g.maxSize}, and desired-size=${g.desired}. To place into standby ${insts.length} instances, please update the AutoScalingGroup sizes appropriately.`,
        );
      }
      if (decrement) g.desired -= insts.length;
      const t = causeTime(now());
      const acts = insts.map((i) =>
        b.enterStandby(
          g,
          i,
          decrement
            ? `At ${t} instance ${i.id} was moved to standby in response to a user request, shrinking the capacity from ${from} to ${from - insts.length}.`
            : `At ${t} instance ${i.id} was moved to standby in response to a user request.`,
        ),
      );
      return { Activities: acts.map(activityOut) };
    },

    ExitStandby: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      const insts = members(g, p.list<string>("InstanceIds"));
      for (const i of insts)
        if (i.state !== "Standby")
          throw validation(b.message("notInStandby", "The instance {id} is not in Standby.", { id: i.id }));
      if (g.desired + insts.length > g.maxSize) {
        throw validation(
          `AutoScalingGroup ${g.name} has min-size=${g.minSize}, max-size=${g.maxSize}, and desired-size=${g.desired}. To move ${insts.length} instances out of standby, please update the AutoScalingGroup sizes appropriately.`,
        );
      }
      const from = g.desired;
      g.desired += insts.length;
      const t = causeTime(now());
      const acts = insts.map((i) =>
        b.exitStandby(
          g,
          i,
          `At ${t} instance ${i.id} was moved out of standby in response to a user request, increasing the capacity from ${from} to ${g.desired}.`,
        ),
      );
      return { Activities: acts.map(activityOut) };
    },

    // ------------------------------------------------------------ lifecycle hooks
    PutLifecycleHook: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      const existing = g.hooks.get(p.str("LifecycleHookName", { required: true }));
      if (!existing && g.hooks.size >= MAX_HOOKS)
        throw new AwsError("LimitExceeded", `Maximum number of lifecycle hooks (${MAX_HOOKS}) reached for group ${g.name}.`);
      const hook = hookFrom(p, existing);
      g.hooks.set(hook.name, hook);
      return {};
    },

    DeleteLifecycleHook: (input) => {
      const p = new Params(input, "query");
      const g = b.group(p.str("AutoScalingGroupName", { required: true }));
      const name = p.str("LifecycleHookName", { required: true });
      const hook = g.hooks.get(name);
      if (!hook)
        throw validation(
          b.message("hookNotFound", "No Lifecycle Hook found with name {hook} for group {name}", { hook: name, name: g.name }),
        );
      g.hooks.delete(name);
      // Outstanding actions complete first: ABANDON for launching, CONTINUE for terminating instances.
      for (const i of g.instances.values()) {
        const a = i.actions.get(name);
        if (a) a.settle(hook.transition === LAUNCHING ? "ABANDON" : "CONTINUE");
      }
      return {};
    },

    DescribeLifecycleHooks: (input) => {
      const p = new Params(input, "query");
      const g = b.group(p.str("AutoScalingGroupName", { required: true }));
      const names = p.list<string>("LifecycleHookNames");
      return {
        LifecycleHooks: [...g.hooks.values()].filter((h) => !names.length || names.includes(h.name)).map((h) => hookOut(g, h)),
      };
    },

    DescribeLifecycleHookTypes: () => ({ LifecycleHookTypes: [LAUNCHING, TERMINATING] }),

    CompleteLifecycleAction: (input) => {
      const p = new Params(input, "query");
      const g = b.group(p.str("AutoScalingGroupName", { required: true }));
      const hookName = p.str("LifecycleHookName", { required: true });
      const result = p.str("LifecycleActionResult", { required: true });
      if (result !== "CONTINUE" && result !== "ABANDON")
        throw validation(`Invalid value '${result}' for LifecycleActionResult: must be CONTINUE or ABANDON`);
      findAction(g, p, hookName).settle(result as LifecycleResult);
      return {};
    },

    RecordLifecycleActionHeartbeat: (input) => {
      const p = new Params(input, "query");
      const g = b.group(p.str("AutoScalingGroupName", { required: true }));
      b.heartbeat(findAction(g, p, p.str("LifecycleHookName", { required: true })));
      return {};
    },

    // ------------------------------------------------------------ processes
    SuspendProcesses: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      const reason = `User suspended at ${causeTime(now())}`;
      for (const proc of processes(p)) if (!g.suspended.has(proc)) g.suspended.set(proc, reason);
      return undefined;
    },

    ResumeProcesses: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      const procs = processes(p);
      for (const proc of procs) g.suspended.delete(proc);
      if (procs.includes("AddToLoadBalancer")) b.registerMissing(g);
      b.kick(g);
      return undefined;
    },

    DescribeScalingProcessTypes: () => ({ Processes: PROCESSES.map((ProcessName) => ({ ProcessName })) }),

    DescribeScalingActivities: (input) => {
      const p = new Params(input, "query");
      const name = p.str("AutoScalingGroupName");
      const ids = p.list<string>("ActivityIds");
      const includeDeleted = p.bool("IncludeDeletedGroups", false) ?? false;
      const lists = name ? [b.activities.get(name) ?? []] : [...b.activities.values()];
      const current = (a: Activity) => b.groups.get(a.AutoScalingGroupName)?.arn === a.AutoScalingGroupARN;
      const all = lists
        .flat()
        .filter((a) => (includeDeleted || current(a)) && (!ids.length || ids.includes(a.ActivityId)))
        // Newest first; the insertion order breaks ties at the same instant.
        .map((a, n) => ({ a, n }))
        .sort((x, y) => y.a.StartTime.getTime() - x.a.StartTime.getTime() || y.n - x.n)
        .map((x) => x.a);
      const pg = page(all, maxRecords(p, 100, 100), p.str("NextToken"));
      return { Activities: pg.items.map(activityOut), NextToken: pg.NextToken };
    },

    // ------------------------------------------------------------ tags
    CreateOrUpdateTags: (input) => {
      const p = new Params(input, "query");
      const tags = tagsFrom(p, "Tags");
      if (!tags.length) throw p.missing("Tags");
      const resolved = tags.map((t) => ({ t, g: mutable(t.ResourceId ?? "") }));
      for (const { t, g } of resolved) g.tags.set(t.Key, { Value: t.Value, PropagateAtLaunch: t.PropagateAtLaunch });
      return undefined;
    },

    DeleteTags: (input) => {
      const p = new Params(input, "query");
      const tags = tagsFrom(p, "Tags");
      if (!tags.length) throw p.missing("Tags");
      const resolved = tags.map((t) => ({ t, g: b.group(t.ResourceId ?? "") }));
      for (const { t, g } of resolved) g.tags.delete(t.Key);
      return undefined;
    },

    DescribeTags: (input) => {
      const p = new Params(input, "query");
      const filters = p.list<{ Name?: string; Values?: string[] }>("Filters");
      let all = [...b.groups.values()]
        .sort((a, c) => a.name.localeCompare(c.name))
        .flatMap((g) => [...g.tags].map(([k, t]) => tagOut(g, k, t)));
      for (const f of filters) {
        const values = f.Values ?? [];
        const field = {
          "auto-scaling-group": "ResourceId",
          key: "Key",
          value: "Value",
          "propagate-at-launch": "PropagateAtLaunch",
        }[f.Name ?? ""] as "ResourceId" | "Key" | "Value" | "PropagateAtLaunch" | undefined;
        if (!field)
          throw validation(
            `Filter name ${f.Name} is invalid. Valid names are auto-scaling-group, key, value and propagate-at-launch.`,
          );
        all = all.filter((t) => values.includes(String(t[field])));
      }
      const pg = page(all, maxRecords(p, 50, 100), p.str("NextToken"));
      return { Tags: pg.items, NextToken: pg.NextToken };
    },

    // ------------------------------------------------------------ instances
    SetInstanceProtection: (input) => {
      const p = new Params(input, "query");
      const g = mutable(p.str("AutoScalingGroupName", { required: true }));
      const protect = p.bool("ProtectedFromScaleIn");
      if (protect === undefined) throw p.missing("ProtectedFromScaleIn");
      for (const i of members(g, p.list<string>("InstanceIds", { required: true }))) i.protected = protect;
      return {};
    },

    SetInstanceHealth: (input) => {
      const p = new Params(input, "query");
      const id = p.str("InstanceId", { required: true });
      const status = p.str("HealthStatus", { required: true });
      if (status !== "Healthy" && status !== "Unhealthy")
        throw validation(`Invalid value '${status}' for HealthStatus: must be Healthy or Unhealthy`);
      const g = b.groupOfInstance(id);
      const inst = g?.instances.get(id);
      if (!g || !inst)
        throw validation(
          b.message("instanceNotFound", "Instance Id not found - No managed instance found for instance ID: {id}", { id }),
        );
      // By default the call respects the grace period: an Unhealthy report inside it is ignored.
      const respect = p.bool("ShouldRespectGracePeriod", true);
      const inGrace = inst.inServiceAt !== undefined && now() < inst.inServiceAt + g.healthCheckGracePeriodS * 1000;
      if (status === "Unhealthy" && respect && (inGrace || inst.state !== "InService")) return undefined;
      inst.health = status;
      if (status === "Unhealthy") inst.unhealthyBy = "API";
      b.kick(g);
      return undefined;
    },

    TerminateInstanceInAutoScalingGroup: (input) => {
      const p = new Params(input, "query");
      const id = p.str("InstanceId", { required: true });
      const decrement = p.bool("ShouldDecrementDesiredCapacity");
      if (decrement === undefined) throw p.missing("ShouldDecrementDesiredCapacity");
      const g = b.groupOfInstance(id);
      const inst = g?.instances.get(id);
      if (!g || !inst)
        throw validation(
          b.message("instanceNotFound", "Instance Id not found - No managed instance found for instance ID: {id}", { id }),
        );
      if (TERMINATING_STATES.has(inst.state)) {
        // Already on its way out: answer with the activity that is terminating it.
        const act = [...(b.activities.get(g.name) ?? [])]
          .reverse()
          .find((a) => a.Description === `Terminating EC2 instance: ${id}`);
        return { Activity: act ? activityOut(act) : undefined };
      }
      const counted = LIVE_STATES.has(inst.state);
      if (decrement && counted && g.desired - 1 < g.minSize) {
        throw validation(
          `Currently, desiredSize equals minSize (${g.minSize}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.`,
        );
      }
      const from = liveCount(g);
      const t = causeTime(now());
      let cause = `At ${t} instance ${id} was taken out of service in response to a user request.`;
      if (decrement && counted) {
        g.desired -= 1;
        cause = `At ${t} instance ${id} was taken out of service in response to a user request, shrinking the capacity from ${from} to ${from - 1}.`;
      }
      const act = b.startTerminate(g, inst, cause);
      b.kick(g);
      return { Activity: activityOut(act) };
    },
  };

  function findAction(g: Group, p: Params, hookName: string) {
    const id = p.str("InstanceId");
    const token = p.str("LifecycleActionToken");
    if (id) {
      const a = g.instances.get(id)?.actions.get(hookName);
      if (!a || (token && a.token !== token)) throw validation(`No active Lifecycle Action found with instance ID ${id}`);
      return a;
    }
    if (!token) throw validation("Either InstanceId or LifecycleActionToken must be specified.");
    for (const i of g.instances.values()) {
      const a = i.actions.get(hookName);
      if (a?.token === token) return a;
    }
    throw validation(`No active Lifecycle Action found with token ${token}`);
  }

  function processes(p: Params): ProcessName[] {
    const list = p.list<string>("ScalingProcesses");
    // Omitting ScalingProcesses means every process.
    if (!list.length) return [...PROCESSES];
    for (const x of list) if (!(PROCESSES as readonly string[]).includes(x)) throw validation(`Invalid Process name: ${x}`);
    return list as ProcessName[];
  }
}
