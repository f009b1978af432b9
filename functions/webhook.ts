/**
 * GitHub webhook endpoint (Lambda Function URL or HTTP API v2). Environment: KILN_WEBHOOK_SECRET_PARAM
 * (SSM SecureString holding the webhook secret; during a rotation, new and old on separate lines),
 * KILN_WEBHOOK_MAX_BYTES (default 1 MiB), and the lock/start variables of `startDepsFromEnv`.
 */
import middy from "@middy/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { awsClients } from "../lib/aws.ts";
import { loadConfig } from "../lib/config/index.ts";
import { optionalEnv, requireEnv } from "../lib/env.ts";
import { startDepsFromEnv, startOrQueue } from "../lib/lock/index.ts";
import { jsonLog } from "../lib/log.ts";
import { clock } from "../lib/runtime.ts";
import {
  DEFAULT_MAX_BODY_BYTES,
  handleWebhook,
  routingFromConfig,
  SecureParameterCache,
  type ServiceRouting,
} from "../lib/webhook/index.ts";

const clients = awsClients();
const secrets = new SecureParameterCache(clients.ssm, clock());
// Resolved per request (loadConfig caches), so a broken config answers 503 instead of crashing the module.
const routing: ServiceRouting = {
  findServicesForPush: (repository, branch) => routingFromConfig(loadConfig()).findServicesForPush(repository, branch),
  environmentOf: (service, branch) => routingFromConfig(loadConfig()).environmentOf(service, branch),
};

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>().handler((event) =>
  handleWebhook(
    {
      method: event.requestContext?.http?.method,
      headers: event.headers ?? {},
      body: event.body ?? null,
      isBase64Encoded: event.isBase64Encoded,
    },
    {
      secrets: async (o) => {
        const param = requireEnv("KILN_WEBHOOK_SECRET_PARAM");
        // A forced refresh at most every 30 s, so bad signatures cannot hammer SSM.
        const value = await secrets.get(param, o?.refresh ? { maxAgeMs: 30_000 } : {});
        return value
          .split("\n")
          .map((s) => s.trim())
          .filter(Boolean);
      },
      routing,
      start: (req) => startOrQueue(req, startDepsFromEnv(clients, clock())),
      maxBodyBytes: Number(optionalEnv("KILN_WEBHOOK_MAX_BYTES", String(DEFAULT_MAX_BODY_BYTES))),
      log: jsonLog,
    },
  ),
);
