import { z } from "zod";
import { EXECUTION_ARN } from "../names.ts";

/**
 * The EventBridge event Step Functions emits on every execution status change
 * (`source: aws.states`, `detail-type: Step Functions Execution Status Change`). `input`/`output`
 * are JSON strings, or null when larger than the event allows (then DescribeExecution has them).
 */
export const StatusChangeEvent = z.object({
  "detail-type": z.literal("Step Functions Execution Status Change"),
  source: z.literal("aws.states"),
  id: z.string().optional(),
  time: z.string().optional(),
  region: z.string().optional(),
  detail: z.object({
    executionArn: z.string().regex(EXECUTION_ARN, "expected an execution ARN"),
    stateMachineArn: z.string().optional(),
    name: z.string().optional(),
    status: z.enum(["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]),
    startDate: z.number().nullish(),
    stopDate: z.number().nullish(),
    input: z.string().nullish(),
    output: z.string().nullish(),
    error: z.string().nullish(),
    cause: z.string().nullish(),
    redriveCount: z.number().int().nullish(),
  }),
});
export type StatusChangeEvent = z.infer<typeof StatusChangeEvent>;
