import { awsClients } from "../aws.ts";
import { clock } from "../runtime.ts";
import type { RollDeps } from "./steps.ts";

/** Roll dependencies for a handler: the runtime's clients and clock (built on first use). */
export function rollDeps(): RollDeps {
  const c = awsClients();
  return {
    get ec2() { return c.ec2; },
    get autoscaling() { return c.autoscaling; },
    get elbv2() { return c.elbv2; },
    get ssm() { return c.ssm; },
    get cloudwatch() { return c.cloudwatch; },
    get dynamodb() { return c.dynamodb; },
    get clock() { return clock(); },
  };
}
