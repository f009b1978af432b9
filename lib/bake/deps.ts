import { awsClients } from "../aws.ts";
import { holderCheckFromEnv } from "../lock/holder.ts";
import { clock } from "../runtime.ts";
import type { BakeDeps } from "./types.ts";

/** Bake dependencies for a handler: the runtime's clients and clock, resolved on first use. */
export function bakeDeps(): Required<Omit<BakeDeps, "lock">> & Pick<BakeDeps, "lock"> {
  const c = awsClients();
  return {
    get ec2() {
      return c.ec2;
    },
    get ssm() {
      return c.ssm;
    },
    get autoscaling() {
      return c.autoscaling;
    },
    get sfn() {
      return c.sfn;
    },
    get clock() {
      return clock();
    },
    get lock() {
      return holderCheckFromEnv(c);
    },
  };
}
