import { z } from "zod";
import { CommitSchema, EnvironmentNameSchema, ServiceNameSchema } from "../config/index.ts";
import { EXECUTION_ARN } from "../names.ts";
import { AttemptSchema } from "../bake/types.ts";

/**
 * Event schemas of the roll handlers. The plan is produced by PlanRoll and only passed along, so it
 * is checked for its identity fields and otherwise kept as is.
 */
export const PlanRollEvent = z.object({
  service: ServiceNameSchema,
  environment: z.string().optional(),
  executionName: z.string().min(1).max(80),
  commit: CommitSchema,
  imageId: z.string().regex(/^ami-[0-9a-f]{8,17}$/),
  env: z.record(z.string(), z.string()).optional(),
  /** The service configuration Prepare validated (a redrive keeps using it); loaded from the file when absent. */
  config: z.unknown().optional(),
});

const Plan = z.looseObject({
  service: ServiceNameSchema,
  executionName: z.string().min(1),
  commit: CommitSchema,
  imageId: z.string(),
  traffic: z.looseObject({ listenerArn: z.string() }),
  blue: z.looseObject({ asgName: z.string(), targetGroupArn: z.string() }),
  green: z.looseObject({ targetGroupArn: z.string() }),
});

export const PlanEvent = z.object({ plan: Plan });
/** A wait of the roll phase: the plan and the attempt (a redrive gets a fresh deadline). */
export const WaitEvent = z.object({ plan: Plan, attempt: AttemptSchema.optional() });
export const CommandEvent = z.object({
  plan: Plan,
  commandId: z
    .string()
    .nullish()
    .transform((v) => v ?? undefined),
  instanceIds: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? undefined),
});
export const CanaryEvent = z.object({
  plan: Plan,
  index: z.number().int().min(0),
  commandId: z
    .string()
    .nullish()
    .transform((v) => v ?? undefined),
  instanceIds: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? undefined),
});

export const BakeEvent = z.object({
  plan: Plan,
  index: z.number().int().min(0),
  /** The bake in progress (null on a step's first slice). */
  bake: z
    .object({ startedAt: z.number().int().min(0) })
    .nullish()
    .transform((v) => v ?? undefined),
});

export const RecordEvent = z.object({
  plan: Plan,
  startedAt: z.string().min(1),
  result: z.enum(["SUCCEEDED", "FAILED", "ROLLED_BACK", "ABORTED"]),
});

export const ApprovalEvent = z.object({
  taskToken: z.string().min(1).max(2048),
  executionArn: z.string().startsWith("arn:"),
  plan: Plan,
  timeoutSeconds: z.number().int().min(1),
});

const ExecutionArn = z.string().regex(EXECUTION_ARN, "expected an execution ARN");
const ThisExecution = z.object({ arn: ExecutionArn, name: z.string().min(1).max(80) });

/** PrepareAbort: the abort machine's input plus its own execution. */
export const PrepareAbortEvent = z.object({
  input: z.object({
    service: ServiceNameSchema,
    /** Default: the aborted execution's environment, else the service's default environment. */
    environment: EnvironmentNameSchema.optional(),
    executionArn: ExecutionArn.nullish().transform((v) => v ?? undefined),
    reason: z.string().max(1000).optional(),
    requestedBy: z.string().max(200).optional(),
  }),
  execution: ThisExecution,
});

const AbortPlanSchema = z.looseObject({
  service: ServiceNameSchema,
  executionArn: ExecutionArn,
  executionName: z.string().min(1),
  traffic: z.looseObject({ listenerArn: z.string() }),
  blue: z.looseObject({ asgName: z.string(), targetGroupArn: z.string() }),
  green: z.looseObject({ targetGroupArn: z.string() }),
});

export const AbortPlanEvent = z.object({ plan: AbortPlanSchema });
export const RestoreTrafficEvent = z.object({
  plan: AbortPlanSchema,
  blueReady: z
    .boolean()
    .nullish()
    .transform((v) => v ?? false),
});
export const AbortCommandEvent = z.object({
  plan: AbortPlanSchema,
  commandId: z
    .string()
    .nullish()
    .transform((v) => v ?? undefined),
  instanceIds: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? undefined),
});

/** PrepareRollback: the rollback machine's input plus its own execution. */
export const PrepareRollbackEvent = z.object({
  input: z.object({
    service: ServiceNameSchema,
    environment: EnvironmentNameSchema.optional(),
    requestedBy: z.string().max(200).optional(),
  }),
  execution: ThisExecution,
});
export const FinishRollbackEvent = z.object({ plan: Plan, executionArn: ExecutionArn });
