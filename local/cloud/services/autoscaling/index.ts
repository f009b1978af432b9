/**
 * Simulated EC2 Auto Scaling (awsQuery, API version 2011-01-01).
 *
 * `registerAutoScaling(cloud)` registers the service as "autoscaling". It reaches EC2
 * (`cloud.backend<Ec2Api>("ec2")`) to launch and terminate, and ELBv2
 * (`cloud.backend<ElbApi>("elasticloadbalancing")`) to register, drain and read target health; both
 * are looked up on use, so they may be registered in any order.
 */
import type { Backend, Cloud } from "../../cloud.ts";
import type { ServiceDefinition } from "../../protocol/types.ts";
import { autoScalingActions } from "./actions.ts";
import { AutoScalingBackend, causeTime, DEFAULTS } from "./backend.ts";

export type { Activity, AsgInstance, Group, LifecycleState } from "./model.ts";
export { AutoScalingBackend, DEFAULTS as AUTOSCALING_DEFAULTS };

export const AUTOSCALING_XMLNS = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

/** The registered backend: the wire definition plus the state and behaviour for in-process use. */
export interface AutoScalingService extends Backend {
  readonly definition: ServiceDefinition;
  readonly state: AutoScalingBackend;
}

/**
 * Registers the service and its admin route `POST /_kiln/autoscaling/set-desired`
 * (`{"group": "web", "desired": 3}`: a desired-capacity change outside the API, like a scaling policy).
 */
export function registerAutoScaling(cloud: Cloud): AutoScalingService {
  const state = new AutoScalingBackend(cloud);
  const service: AutoScalingService = {
    definition: {
      signingName: "autoscaling",
      protocol: "query",
      version: "2011-01-01",
      xmlns: AUTOSCALING_XMLNS,
      actions: autoScalingActions(state),
    },
    state,
    snapshot: () => state.snapshot(),
    stop: () => state.stop(),
  };
  cloud.register("autoscaling", service);
  cloud.admin("autoscaling/set-desired", (req) => {
    const body = JSON.parse(req.body.toString("utf8") || "{}") as { group?: string; desired?: number };
    const g = state.group(String(body.group ?? ""));
    const to = Math.min(g.maxSize, Math.max(g.minSize, Math.trunc(Number(body.desired))));
    if (!Number.isFinite(to)) throw new Error("desired must be a number");
    if (to !== g.desired) {
      g.lastCause = `At ${causeTime(state.now())} an operator request through the local cloud changed the desired capacity from ${g.desired} to ${to}.`;
      g.desired = to;
    }
    state.kick(g);
    return { group: g.name, desired: g.desired };
  });
  return service;
}
