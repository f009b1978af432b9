/**
 * ReleaseLock (end of the deploy and abort state machines): releases the service lock held by this
 * execution (`$$.Execution.Id`; an abort also passes the deployment it aborted) and starts the
 * newest queued commit, which the release hands the lock to. Safe to retry.
 */
import { z } from "zod";
import { awsClients } from "../lib/aws.ts";
import { stepHandler } from "../lib/handler.ts";
import { releaseAndStartNext, startDepsFromEnv } from "../lib/lock/index.ts";
import { clock } from "../lib/runtime.ts";

const clients = awsClients();
const ExecutionArn = z
  .string()
  .regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/, "expected an execution ARN");

export const handler = stepHandler(
  "ReleaseLock",
  z.object({
    service: z.string().min(1).max(64),
    environment: z.string().min(1).max(64),
    executionArn: ExecutionArn,
    abortedExecutionArn: ExecutionArn.optional(),
  }),
  (input) => releaseAndStartNext(input, startDepsFromEnv(clients, clock())),
);
