/**
 * State of the simulated EC2 Auto Scaling service: groups, their instances, lifecycle hooks,
 * traffic-source attachments and scaling activities. Plain data; behaviour lives in backend.ts.
 */
import type { TimerHandle } from "../../../../lib/clock.ts";

/** Scaling processes SuspendProcesses/ResumeProcesses accept (reference §3.7). */
export const PROCESSES = [
  "Launch",
  "Terminate",
  "AddToLoadBalancer",
  "AlarmNotification",
  "AZRebalance",
  "HealthCheck",
  "InstanceRefresh",
  "ReplaceUnhealthy",
  "ScheduledActions",
] as const;
export type ProcessName = (typeof PROCESSES)[number];

export const LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING";
export const TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING";
export type Transition = typeof LAUNCHING | typeof TERMINATING;

/** The lifecycle states this simulator uses (a subset of the model's enum: no warm pool, no root-volume replacement). */
export type LifecycleState =
  | "Pending"
  | "Pending:Wait"
  | "Pending:Proceed"
  | "InService"
  | "Terminating"
  | "Terminating:Wait"
  | "Terminating:Proceed"
  | "Terminated"
  | "EnteringStandby"
  | "Standby";

/** States that count toward desired capacity. */
export const LIVE_STATES: ReadonlySet<LifecycleState> = new Set(["Pending", "Pending:Wait", "Pending:Proceed", "InService"]);
export const TERMINATING_STATES: ReadonlySet<LifecycleState> = new Set([
  "Terminating",
  "Terminating:Wait",
  "Terminating:Proceed",
  "Terminated",
]);

export type LifecycleResult = "CONTINUE" | "ABANDON";

export interface LifecycleHook {
  name: string;
  transition: Transition;
  heartbeatTimeoutS: number;
  defaultResult: LifecycleResult;
  notificationTargetArn?: string;
  roleArn?: string;
  notificationMetadata?: string;
}

/** One outstanding lifecycle action (an instance waiting in `*:Wait` for one hook). */
export interface LifecycleAction {
  token: string;
  hook: LifecycleHook;
  startedAt: number;
  /** Heartbeat deadline (restarted by RecordLifecycleActionHeartbeat). */
  timer?: TimerHandle;
  /** Global deadline: min(48 h, 100 × heartbeat timeout) after the action started. */
  globalDeadline: number;
  settle(result: LifecycleResult | "dropped"): void;
}

export interface ResolvedTemplate {
  id: string;
  name: string;
  version: number;
}

export interface AsgInstance {
  id: string;
  az: string;
  subnetId: string;
  instanceType: string;
  imageId?: string;
  template?: ResolvedTemplate;
  state: LifecycleState;
  health: "Healthy" | "Unhealthy";
  /** Which check marked it unhealthy (for the replacement activity's cause). */
  unhealthyBy?: "EC2" | "ELB" | "API";
  protected: boolean;
  launchedAt: number;
  /** When it last entered InService: the health check grace period starts here. */
  inServiceAt?: number;
  /** Target groups it is currently registered with. */
  registeredWith: Set<string>;
  /** AddToLoadBalancer was suspended when it came into service: never registered automatically (reference §3.7). */
  neverRegister: boolean;
  /** Terminating as a health replacement: keeps its capacity slot until gone ("terminate, then launch"). */
  replacing: boolean;
  actions: Map<string, LifecycleAction>;
  /** Wakes the instance's running flow when something it waits on may have changed. */
  wakers: Set<() => void>;
}

export type AttachmentState = "Adding" | "Added" | "InService" | "Removing";

/** A traffic source (ELBv2 target group) attached to a group. */
export interface Attachment {
  identifier: string;
  type: "elbv2";
  /** The API family that attached it: detaching must use the same one (reference §3.6). */
  via: "TargetGroupARNs" | "TrafficSources";
  state: AttachmentState;
}

export interface Activity {
  ActivityId: string;
  AutoScalingGroupName: string;
  AutoScalingGroupARN: string;
  Description: string;
  Cause: string;
  StartTime: Date;
  EndTime?: Date;
  StatusCode: string;
  StatusMessage?: string;
  Progress: number;
  Details: string;
}

export interface GroupTag {
  Value: string;
  PropagateAtLaunch: boolean;
}

export interface Group {
  name: string;
  arn: string;
  createdTime: Date;
  /** As given (Version omitted stays omitted in Describe output). */
  launchTemplate?: { LaunchTemplateId: string; LaunchTemplateName: string; Version?: string };
  /** Wire-shaped MixedInstancesPolicy as given; its LaunchTemplateSpecification is resolved like LaunchTemplate. */
  mixedInstancesPolicy?: Record<string, unknown>;
  minSize: number;
  maxSize: number;
  desired: number;
  defaultCooldownS: number;
  subnets: { id: string; az: string }[];
  availabilityZones: string[];
  vpcZoneIdentifier?: string;
  healthCheckType: string;
  healthCheckGracePeriodS: number;
  defaultInstanceWarmupS?: number;
  maxInstanceLifetimeS?: number;
  capacityRebalance: boolean;
  terminationPolicies: string[];
  newInstancesProtectedFromScaleIn: boolean;
  tags: Map<string, GroupTag>;
  attachments: Map<string, Attachment>;
  suspended: Map<ProcessName, string>;
  hooks: Map<string, LifecycleHook>;
  instances: Map<string, AsgInstance>;
  /** Set by a forced delete: instances are being terminated, then the group vanishes. */
  deleting: boolean;
  /** Cause text of the last desired-capacity change, prefixed to the activities it leads to. */
  lastCause?: string;
  /** When the last scaling activity ended (SetDesiredCapacity HonorCooldown). */
  lastActivityEnd: number;
  /** Consecutive failed launches, for the retry backoff. */
  launchFailures: number;
  nextLaunchAt: number;
  timer?: TimerHandle;
  kickTimer?: TimerHandle;
}

export function isSuspended(g: Group, p: ProcessName): boolean {
  return g.suspended.has(p);
}

export function usesElbHealth(g: Group): boolean {
  return g.healthCheckType.split(",").some((t) => t.trim() === "ELB");
}
