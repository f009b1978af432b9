/**
 * Rotate: invoked by EventBridge Scheduler per service with `{service}` (every environment of it)
 * or `{service, environment}`. Starts a rotation deployment per environment or says why not.
 * Environment: see `startDepsFromEnv` (lock table, state machines).
 */
import { z } from "zod";
import { awsClients } from "../lib/aws.ts";
import { environmentsOf, loadConfig, serviceConfig } from "../lib/config/index.ts";
import { stepHandler } from "../lib/handler.ts";
import { startDepsFromEnv } from "../lib/lock/index.ts";
import { rotate } from "../lib/rotation/index.ts";
import { clock } from "../lib/runtime.ts";

const clients = awsClients();

export const handler = stepHandler(
  "Rotate",
  z.strictObject({ service: z.string().min(1).max(64), environment: z.string().min(1).max(64).optional() }),
  async (input) => {
    const config = loadConfig();
    const envs = input.environment ? [input.environment] : environmentsOf(serviceConfig(config, input.service));
    const results = [];
    for (const environment of envs) {
      const cfg = serviceConfig(config, input.service, environment);
      const r = await rotate(
        { service: input.service, environment },
        {
          ...startDepsFromEnv(clients, clock()),
          ec2: clients.ec2,
          autoscaling: clients.autoscaling,
          ssm: clients.ssm,
          service: cfg,
        },
      );
      results.push({ environment, ...r });
    }
    // One environment: its result as before; several: each under `environments`.
    return results.length === 1 ? results[0]! : { service: input.service, environments: results };
  },
);
