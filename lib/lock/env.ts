import type { AwsClients } from "../aws.ts";
import type { Clock } from "../clock.ts";
import { optionalEnv, requireEnv } from "../env.ts";
import { ConfigInvalidError } from "../errors.ts";
import { DEFAULT_LEASE_MS, type StartDeps } from "./lock.ts";
import { jsonLog } from "../log.ts";

/**
 * Lock and start dependencies from the Lambda environment:
 * - `KILN_LOCK_TABLE` (required): the DynamoDB lock table (partition key `service`, string);
 * - `KILN_DEPLOY_STATE_MACHINE_ARN` (required): the deploy state machine;
 * - `KILN_ABORT_STATE_MACHINE_ARN` (optional): the abort machine a superseding push starts;
 * - `KILN_LOCK_LEASE_SECONDS` (optional, default 3600): lease renewed by AcquireLock.
 */
export function startDepsFromEnv(clients: Pick<AwsClients, "dynamodb" | "sfn">, clock: Clock): StartDeps {
  const leaseSeconds = Number(optionalEnv("KILN_LOCK_LEASE_SECONDS", String(DEFAULT_LEASE_MS / 1000)));
  if (!Number.isFinite(leaseSeconds) || leaseSeconds < 60) {
    throw new ConfigInvalidError(
      `KILN_LOCK_LEASE_SECONDS must be a number of seconds >= 60, got ${process.env.KILN_LOCK_LEASE_SECONDS}`,
    );
  }
  const abort = process.env.KILN_ABORT_STATE_MACHINE_ARN;
  return {
    ddb: clients.dynamodb,
    sfn: clients.sfn,
    table: requireEnv("KILN_LOCK_TABLE"),
    clock,
    leaseMs: leaseSeconds * 1000,
    deployStateMachineArn: requireEnv("KILN_DEPLOY_STATE_MACHINE_ARN"),
    ...(abort ? { abortStateMachineArn: abort } : {}),
    log: jsonLog,
  };
}
