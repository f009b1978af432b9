import { awsClients } from "../aws.ts";
import { clock } from "../runtime.ts";
import { holderCheckFromEnv } from "../lock/holder.ts";
import { startDepsFromEnv } from "../lock/env.ts";
import type { AbortDeps } from "./abort.ts";
import type { RollDeps } from "./steps.ts";

/** Roll dependencies for a handler: the runtime's clients and clock (built on first use). */
export function rollDeps(): RollDeps {
  const c = awsClients();
  return {
    get ec2() {
      return c.ec2;
    },
    get autoscaling() {
      return c.autoscaling;
    },
    get elbv2() {
      return c.elbv2;
    },
    get ssm() {
      return c.ssm;
    },
    get cloudwatch() {
      return c.cloudwatch;
    },
    get dynamodb() {
      return c.dynamodb;
    },
    get clock() {
      return clock();
    },
    get lock() {
      return holderCheckFromEnv(c);
    },
  };
}

/**
 * Dependencies of the abort and rollback steps: the roll's, plus Step Functions, the service lock
 * (`KILN_LOCK_TABLE`, `KILN_DEPLOY_STATE_MACHINE_ARN`) and the deployments table, read from the
 * environment on each call (a misconfigured function fails with `kiln.ConfigInvalid` when used).
 */
export function opsDeps(): AbortDeps {
  const c = awsClients();
  const roll = rollDeps();
  return Object.defineProperties(roll as AbortDeps, {
    sfn: { get: () => c.sfn, enumerable: true },
    lock: { get: () => startDepsFromEnv(c, clock()), enumerable: true },
    deploymentsTable: { get: () => process.env.KILN_DEPLOYMENTS_TABLE || undefined, enumerable: true },
  });
}
