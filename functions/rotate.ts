/**
 * Rotate: invoked by EventBridge Scheduler per service with `{service}`. Starts a rotation
 * deployment or says why not. Environment: see `startDepsFromEnv` (lock table, state machines).
 */
import { z } from "zod";
import { awsClients } from "../lib/aws.ts";
import { loadConfig, serviceConfig } from "../lib/config/index.ts";
import { stepHandler } from "../lib/handler.ts";
import { startDepsFromEnv } from "../lib/lock/index.ts";
import { rotate } from "../lib/rotation/index.ts";
import { clock } from "../lib/runtime.ts";

const clients = awsClients();

export const handler = stepHandler("Rotate", z.strictObject({ service: z.string().min(1).max(64) }), (input) =>
  rotate(input, {
    ...startDepsFromEnv(clients, clock()),
    ec2: clients.ec2,
    autoscaling: clients.autoscaling,
    ssm: clients.ssm,
    service: serviceConfig(loadConfig(), input.service),
  }),
);
