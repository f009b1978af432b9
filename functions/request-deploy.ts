/**
 * RequestDeploy: an operator's deployment of a commit they name (`kiln deploy`). It enters the same
 * queue as a push (`startOrQueue`): numbered, queued behind a running deployment, latest wins. An
 * operator-named commit may be older than what is live (that is what naming it means, I7).
 * Invoked with `{service, environment?, commit, requestedBy?, reason?}`; returns the queue's answer.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { awsClients } from "../lib/aws.ts";
import {
  CommitSchema,
  defaultEnvironment,
  EnvironmentNameSchema,
  loadConfig,
  ServiceNameSchema,
  serviceConfig,
} from "../lib/config/index.ts";
import { stepHandler } from "../lib/handler.ts";
import { startDepsFromEnv, startOrQueue } from "../lib/lock/index.ts";
import { branchFor } from "../lib/config/index.ts";
import { InvalidInputError } from "../lib/errors.ts";
import { clock } from "../lib/runtime.ts";

const clients = awsClients();

export const Input = z.strictObject({
  service: ServiceNameSchema,
  environment: EnvironmentNameSchema.optional(),
  commit: CommitSchema,
  requestedBy: z.string().min(1).max(200).optional(),
  reason: z.string().max(1000).optional(),
});

export const handler = stepHandler("RequestDeploy", Input, (input) => {
  const config = loadConfig();
  const base = serviceConfig(config, input.service);
  const environment = input.environment ?? defaultEnvironment(base, input.service);
  const cfg = serviceConfig(config, input.service, environment);
  const branch = branchFor(cfg, environment);
  if (!branch) throw new InvalidInputError(`no branch of ${input.service} deploys environment ${environment}`);
  return startOrQueue(
    {
      input: {
        service: input.service,
        environment,
        commit: input.commit,
        trigger: "operator",
        repository: cfg.repository,
        branch,
        ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
      },
      // Every operator request is its own request (never a redelivery of another).
      nonce: randomUUID(),
    },
    startDepsFromEnv(clients, clock()),
  );
});
