import { z } from "zod";
import { CommitSchema, ServiceNameSchema } from "../config/identifiers.ts";
import { AttemptSchema, DeployInputSchema, ExecutionRefSchema } from "./types.ts";

/**
 * Event schemas of the bake handlers. The plan is made by Prepare and only passed along by the
 * state machine, so its identity fields are checked and the rest is kept as is.
 */
export const PlanSchema = z.looseObject({
  version: z.literal(1),
  service: ServiceNameSchema,
  commit: CommitSchema,
  execution: ExecutionRefSchema,
  baseAmi: z.looseObject({ imageId: z.string().regex(/^ami-[0-9a-f]+$/) }),
  image: z.looseObject({ name: z.string().min(3).max(128) }),
  config: z.looseObject({}),
});

const InstanceId = z.string().regex(/^i-[0-9a-f]{8,17}$/, "expected an instance id");
const ImageId = z.string().regex(/^ami-[0-9a-f]{8,17}$/, "expected an AMI id");

export const PrepareEvent = z.object({ input: DeployInputSchema, execution: ExecutionRefSchema });
export const StepEvent = z.object({ plan: PlanSchema, attempt: AttemptSchema.optional() });
export const BuilderEvent = StepEvent.extend({ builderId: InstanceId });
export const ImageEvent = StepEvent.extend({ imageId: ImageId });
export const BuilderImageEvent = StepEvent.extend({ builderId: InstanceId, imageId: ImageId });
export const JanitorEvent = z.looseObject({ afterHours: z.number().min(0).optional(), dryRun: z.boolean().optional() });
