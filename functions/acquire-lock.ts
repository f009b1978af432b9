/**
 * AcquireLock (deploy and abort state machines): takes or renews the service lock for this
 * execution (`$$.Execution.Id`). Calling it again is the heartbeat. Throws `kiln.LockHeld` when
 * another deployment holds the lock (pushes and rotations claim it before starting, so for them
 * this is always a re-acquire; an operator start may meet it).
 */
import { z } from "zod";
import { awsClients } from "../lib/aws.ts";
import { LockHeldError, SupersededError } from "../lib/errors.ts";
import { stepHandler } from "../lib/handler.ts";
import { acquireLock, startDepsFromEnv } from "../lib/lock/index.ts";
import { clock } from "../lib/runtime.ts";

const clients = awsClients();
const ExecutionArn = z
  .string()
  .regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/, "expected an execution ARN");

export const Input = z.object({
  service: z.string().min(1).max(64),
  environment: z.string().min(1).max(64),
  /** The deploy request's queue number (absent for aborts). */
  seq: z
    .number()
    .int()
    .positive()
    .nullish()
    .transform((v) => v ?? undefined),
  executionArn: ExecutionArn,
  commit: z.string().optional(),
  trigger: z.string().optional(),
  abortedExecutionArn: ExecutionArn.optional(),
});

export const handler = stepHandler("AcquireLock", Input, async (input) => {
  const r = await acquireLock(input, startDepsFromEnv(clients, clock()));
  if (!r.acquired) {
    const what = `AcquireLock ${input.service}/${input.environment}: ${r.reason}`;
    // Superseded: this execution can never hold the lock again; retrying or redriving cannot help (I7).
    if (r.superseded)
      throw new SupersededError(
        `${what}. Nothing was changed; to deploy this commit on purpose, name it: kiln deploy ${input.service} --env ${input.environment} --commit <sha>`,
      );
    throw new LockHeldError(what);
  }
  return r;
});
