/**
 * Pager: target of the EventBridge rule on "Step Functions Execution Status Change" for kiln's
 * state machines. Environment: KILN_LOCK_TABLE (page records live beside the lock items),
 * KILN_PAGERDUTY_ROUTING_KEY_PARAM and KILN_SLACK_WEBHOOK_PARAM (SSM SecureStrings; each optional),
 * KILN_PAGERDUTY_URL (default the real Events API v2), KILN_CONSOLE_URL (optional: link to the kiln
 * console instead of the AWS console), KILN_DEPLOY_/ABORT_/ROLLBACK_STATE_MACHINE_ARN (kiln's
 * machines: executions of any other are ignored). A service's `pager.topic` adds SNS and
 * `pager.severity` sets the PagerDuty severity.
 */
import middy from "@middy/core";
import { awsClients } from "../lib/aws.ts";
import { loadConfig } from "../lib/config/index.ts";
import { optionalEnv, requireEnv } from "../lib/env.ts";
import { classify, InvalidInputError } from "../lib/errors.ts";
import { jsonLog } from "../lib/log.ts";
import {
  type Fetch,
  handleStatusChange,
  PAGERDUTY_EVENTS_URL,
  type PagerResult,
  type PagerRoute,
  StatusChangeEvent,
} from "../lib/pager/index.ts";
import { clock } from "../lib/runtime.ts";
import { routingFromConfig, SecureParameterCache } from "../lib/webhook/index.ts";

const clients = awsClients();
const secrets = new SecureParameterCache(clients.ssm, clock());

/** kiln's state machines, from the environment (read per invocation, as the local stack sets it then). */
function machines() {
  const abort = process.env.KILN_ABORT_STATE_MACHINE_ARN;
  const rollback = process.env.KILN_ROLLBACK_STATE_MACHINE_ARN;
  return {
    deploy: requireEnv("KILN_DEPLOY_STATE_MACHINE_ARN"),
    ...(abort ? { abort } : {}),
    ...(rollback ? { rollback } : {}),
  };
}

function routeFor(service: string, input: { branch?: string }, executionArn: string): PagerRoute {
  const config = loadConfig();
  const s = Object.hasOwn(config.services, service) ? config.services[service] : undefined;
  const [, , , region, account] = executionArn.split(":");
  const topic = s?.pager.topic;
  const pd = process.env.KILN_PAGERDUTY_ROUTING_KEY_PARAM;
  const slack = process.env.KILN_SLACK_WEBHOOK_PARAM;
  const environment = routingFromConfig(config).environmentOf(service, input.branch);
  return {
    severity: s?.pager.severity ?? "critical",
    ...(environment ? { environment } : {}),
    ...(pd ? { pagerDutyRoutingKeyParam: pd } : {}),
    ...(slack ? { slackWebhookParam: slack } : {}),
    ...(topic ? { snsTopicArn: topic.startsWith("arn:") ? topic : `arn:aws:sns:${region}:${account}:${topic}` } : {}),
  };
}

export const handler = middy<unknown, PagerResult>().handler(async (event) => {
  const parsed = StatusChangeEvent.safeParse(event);
  if (!parsed.success)
    throw new InvalidInputError(`Pager: not a Step Functions status change event — ${parsed.error.issues[0]?.message}`);
  const consoleBase = process.env.KILN_CONSOLE_URL;
  try {
    return await handleStatusChange(parsed.data, {
      sfn: clients.sfn,
      machines: machines(),
      sns: clients.sns,
      ddb: clients.dynamodb,
      table: requireEnv("KILN_LOCK_TABLE"),
      clock: clock(),
      // Real I/O: held so a virtual clock (local stack) does not jump past it.
      fetch: ((url, init) => clock().hold(globalThis.fetch(url, init))) as Fetch,
      secret: (param) => secrets.get(param),
      routeFor,
      pagerDutyUrl: optionalEnv("KILN_PAGERDUTY_URL", PAGERDUTY_EVENTS_URL),
      ...(consoleBase
        ? { consoleUrl: (arn: string) => `${consoleBase.replace(/\/$/, "")}/executions/${encodeURIComponent(arn)}` }
        : {}),
      log: jsonLog,
    });
  } catch (err) {
    throw classify(err, "Pager");
  }
});
