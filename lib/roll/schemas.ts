import { z } from "zod";
import { CommitSchema, ServiceNameSchema } from "../config/index.ts";

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
export const CommandEvent = z.object({
  plan: Plan,
  commandId: z.string().optional(),
  instanceIds: z.array(z.string()).optional(),
});
export const CanaryEvent = z.object({
  plan: Plan,
  index: z.number().int().min(0),
  commandId: z.string().optional(),
  instanceIds: z.array(z.string()).optional(),
});
