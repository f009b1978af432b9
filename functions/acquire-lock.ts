/**
 * AcquireLock (deploy and abort state machines): takes or renews the service lock for this
 * execution (`$$.Execution.Id`). Calling it again is the heartbeat. Throws `kiln.LockHeld` when
 * another deployment holds the lock (pushes and rotations claim it before starting, so for them
 * this is always a re-acquire; an operator start may meet it).
 */
import { z } from "zod";
import { awsClients } from "../lib/aws.ts";
import { LockHeldError } from "../lib/errors.ts";
import { stepHandler } from "../lib/handler.ts";
import { acquireLock, startDepsFromEnv } from "../lib/lock/index.ts";
import { clock } from "../lib/runtime.ts";

const clients = awsClients();
const ExecutionArn = z
  .string()
  .regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/, "expected an execution ARN");

export const Input = z.object({
  service: z.string().min(1).max(64),
  executionArn: ExecutionArn,
  commit: z.string().optional(),
  trigger: z.string().optional(),
  abortedExecutionArn: ExecutionArn.optional(),
});

export const handler = stepHandler("AcquireLock", Input, async (input) => {
  const r = await acquireLock(input, startDepsFromEnv(clients, clock()));
  if (!r.acquired) throw new LockHeldError(`AcquireLock ${input.service}: ${r.reason}`);
  return r;
});
