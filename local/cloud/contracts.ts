/**
 * In-process contracts between simulated services. Each backend implements its interface and is
 * registered under the given name; others reach it with `cloud.backend<Ec2Api>("ec2")`.
 * Only behaviour that crosses services belongs here; everything else stays inside a service.
 */
import type { Backend } from "./cloud.ts";

export type InstanceStateName = "pending" | "running" | "stopping" | "stopped" | "shutting-down" | "terminated";

/** The sample app running on an instance (local/app). */
export interface AppHandle {
  /** Loopback port of the instance's real HTTP server (0 when servers are disabled). */
  readonly port: number;
  /**
   * The same request answered in process, without a socket (health checks in virtual time).
   * `latencyMs` is the simulated service time (bad commits can be slow).
   */
  request(path: string): Promise<{ status: number; body: string; latencyMs: number }>;
  stop(): Promise<void>;
}

export interface SimInstance {
  readonly id: string;
  state: InstanceStateName;
  readonly imageId: string;
  readonly instanceType: string;
  readonly privateIp: string;
  readonly subnetId: string;
  readonly az: string;
  readonly tags: Map<string, string>;
  readonly launchTime: Date;
  /** Sandbox directory holding this instance's filesystem (SSM runs commands here). */
  readonly rootDir: string;
  /** Present while the instance is `running` and its app is up. */
  app?: AppHandle;
}

/** Event on `cloud.bus`: "instance-state". */
export interface InstanceStateEvent {
  instance: SimInstance;
  from: InstanceStateName;
  to: InstanceStateName;
}

export interface LaunchRequest {
  imageId?: string;
  instanceType?: string;
  subnetId?: string;
  securityGroupIds?: string[];
  /** Resolved launch template (ASG launches). Its data fills anything not given above. */
  launchTemplate?: { id: string; version: number };
  tags: Record<string, string>;
  count: number;
  iamInstanceProfile?: string;
  userData?: string;
}

/** Registered as "ec2". */
export interface Ec2Api extends Backend {
  instance(id: string): SimInstance | undefined;
  instances(): SimInstance[];
  /** Launch instances (no ClientToken semantics: that is the API's job). */
  launch(req: LaunchRequest): SimInstance[];
  /** Begin termination (shutting-down → terminated after `ec2.terminateMs`). */
  terminate(ids: string[], reason?: string): void;
  /**
   * Resolves `$Latest`/`$Default`/number for a template given by id or name. Throws an AwsError
   * (`InvalidLaunchTemplateId.NotFound` / `InvalidLaunchTemplateName.NotFoundException` /
   * `InvalidLaunchTemplateId.VersionNotFound`).
   */
  resolveLaunchTemplate(spec: { id?: string; name?: string; version?: string }): {
    id: string;
    name: string;
    version: number;
    imageId?: string;
    instanceType?: string;
  };
  /** Subnets of the default VPC, one per AZ. */
  subnets(): { id: string; az: string; vpcId: string; cidr: string }[];
}

export type TargetHealthState = "initial" | "healthy" | "unhealthy" | "unused" | "draining" | "unavailable";

/** Registered as "elasticloadbalancing". */
export interface ElbApi extends Backend {
  /** Registers instance targets (used by Auto Scaling for attached target groups). */
  registerTargets(targetGroupArn: string, targets: { id: string; port?: number }[]): void;
  /**
   * Deregisters; the targets drain for the group's deregistration delay. Resolves (on the cloud
   * clock) when draining is complete, so Auto Scaling can terminate only after.
   */
  deregisterTargets(targetGroupArn: string, targets: { id: string; port?: number }[]): Promise<void>;
  /** Current health state of one target, undefined when not registered. */
  targetHealth(targetGroupArn: string, instanceId: string): TargetHealthState | undefined;
  /** True when the target group exists. */
  hasTargetGroup(targetGroupArn: string): boolean;
}

/** Registered as "ssm". */
export interface SsmApi extends Backend {
  /** True when the instance's SSM agent is registered and online. */
  isOnline(instanceId: string): boolean;
}

/** Registered as "monitoring" (CloudWatch). */
export interface CloudWatchApi extends Backend {
  /** Records one datapoint (the ALB feeds RequestCount, HTTPCode_Target_5XX_Count, TargetResponseTime). */
  putDatapoint(p: {
    namespace: string;
    metricName: string;
    dimensions: Record<string, string>;
    value: number;
    unit?: string;
    timestamp?: number;
  }): void;
}

/** Registered as "sns". */
export interface SnsApi extends Backend {
  /** Messages published so far (inspection). */
  messages(): { topicArn: string; subject?: string; message: string; at: string }[];
}
