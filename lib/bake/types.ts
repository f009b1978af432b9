import type { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { SFNClient } from "@aws-sdk/client-sfn";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { z } from "zod";
import type { Clock } from "../clock.ts";
import type { HolderCheck } from "../lock/holder.ts";
import { BranchSchema, CommitSchema, RepositorySchema, EnvironmentNameSchema, ServiceNameSchema } from "../config/identifiers.ts";
import type { ServiceConfig } from "../config/schema.ts";

/** What bake steps receive besides their input: clients and the clock (fakes in unit tests). */
export interface BakeDeps {
  ec2: EC2Client;
  ssm: SSMClient;
  clock: Clock;
  /** PruneImages: to find launch-template versions Auto Scaling groups use. */
  autoscaling?: AutoScalingClient;
  /** Janitor: to ask whether an execution has ended. */
  sfn?: SFNClient;
  /**
   * The service lock (`KILN_LOCK_TABLE`). When given, the steps that make or change the service's
   * builders and images check first that this execution still holds it (`assertHolder`).
   */
  lock?: HolderCheck;
}

/** Tag keys kiln puts on everything it creates (ARCHITECTURE.md I5) and on AMIs for provenance. */
export const Tags = {
  service: "kiln:service",
  execution: "kiln:execution",
  executionArn: "kiln:execution-arn",
  role: "kiln:role",
  /** The execution attempt (redrive count) that created the resource. */
  attempt: "kiln:attempt",
  commit: "kiln:commit",
  baseAmi: "kiln:base-ami",
  repository: "kiln:repository",
  branch: "kiln:branch",
  builtAt: "kiln:built-at",
  trigger: "kiln:trigger",
  requestedBy: "kiln:requested-by",
  /** Set by TagImage once an AMI passed every bake step: only complete AMIs are reused or kept. */
  complete: "kiln:complete",
  /** On snapshots: the AMI they belong to. */
  image: "kiln:image",
} as const;

export const Roles = { builder: "builder", image: "image", snapshot: "snapshot" } as const;

export const TriggerSchema = z.enum(["push", "rotation", "operator"]);
export type BakeTrigger = z.infer<typeof TriggerSchema>;

/** Execution input of the deploy state machine. */
export const DeployInputSchema = z.object({
  service: ServiceNameSchema,
  /** The environment (kiln's queue always sets it; without it, the branch's environment). */
  environment: EnvironmentNameSchema.optional(),
  commit: CommitSchema,
  trigger: TriggerSchema,
  /** The request's number in its environment's queue (assigned by the queue). */
  seq: z.number().int().positive().optional(),
  repository: RepositorySchema.optional(),
  branch: BranchSchema.optional(),
  requestedBy: z.string().max(256).optional(),
});
export type DeployInput = z.infer<typeof DeployInputSchema>;

/** The context-object fields Prepare needs (`$$.Execution`). */
export const ExecutionRefSchema = z.object({
  name: z.string().min(1).max(80),
  arn: z.string().min(1),
  startedAt: z.string().min(1),
});
export type ExecutionRef = z.infer<typeof ExecutionRefSchema>;

/**
 * The execution attempt: 0 for the first run, n after the n-th redrive (`$$.Execution.RedriveCount`),
 * and when it started (`$$.Execution.RedriveTime`, else StartTime). A failed resource made by an
 * earlier attempt is replaced on redrive; one made by the current attempt is reported.
 */
export const AttemptSchema = z.object({
  redriveCount: z.number().int().min(0).default(0),
  startedAt: z.string().min(1),
});
export type Attempt = z.infer<typeof AttemptSchema>;

export interface ResolvedBaseAmi {
  imageId: string;
  /** `ssm:/aws/service/…`, `id`, or `filter:<name>`. */
  source: string;
  name?: string;
  rootDeviceName: string;
  architecture?: string;
}

/**
 * Everything the bake (and roll) phase needs, derived once by Prepare from the configuration and
 * the execution: names and tokens come from the execution, so every step — retried, crashed or
 * redriven — computes the same ones.
 */
export interface BakePlan {
  version: 1;
  service: string;
  commit: string;
  trigger: BakeTrigger;
  repository: string;
  branch: string;
  environment: string;
  /** The request's number in its environment's queue. */
  seq?: number;
  requestedBy?: string;
  execution: ExecutionRef;
  region: string;
  baseAmi: ResolvedBaseAmi;
  image: { name: string; description: string; retain: number };
  builder: {
    name: string;
    /** RunInstances ClientToken of attempt 0 (later attempts derive theirs from it). */
    clientToken: string;
    instanceType: string;
    subnet?: string;
    securityGroups: string[];
    instanceProfile: string;
    rootDevice: { deviceName: string; encrypted: boolean; kmsKeyId?: string; volumeSizeGiB?: number };
  };
  /** Environment every script receives (validated values; passed as data, never as script text). */
  env: { KILN_COMMIT: string; KILN_REPO: string; KILN_SERVICE: string; KILN_BRANCH: string };
  /** Tags on every resource this execution creates (kiln:service, kiln:execution, … + configured tags). */
  tags: Record<string, string>;
  /** The validated service configuration at Prepare time (a redrive keeps using it). */
  config: ServiceConfig;
}

/** Polling steps return a status; `waitSeconds` is when to look again (Wait state input). */
export interface PollResult {
  status: "pending" | "done";
  waitSeconds: number;
  /** What the step saw, for the execution history. */
  detail: string;
}
