/**
 * Simulated Elastic Load Balancing v2 (application load balancers), registered as
 * "elasticloadbalancing" (awsQuery, Version 2015-12-01).
 *
 * - Wire actions: `actions.ts` (load balancers, target groups and attributes, targets and health,
 *   listeners, rules, tags, with Marker/PageSize pagination).
 * - Behaviour: `backend.ts` (health state machine, draining, weighted routing, metrics).
 * - Real traffic: `listener.ts` (each listener is an HTTP server on 127.0.0.1; its URL is in the
 *   world snapshot as `elasticloadbalancing.loadBalancers[].listeners[].url` and from
 *   `listenerUrl()`; `DNSName` keeps the AWS form, it is not resolvable).
 *
 * Covered actions: CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer,
 * Describe/ModifyLoadBalancerAttributes, Create/Describe/Modify/DeleteTargetGroup,
 * Describe/ModifyTargetGroupAttributes, RegisterTargets, DeregisterTargets, DescribeTargetHealth,
 * Create/Describe/Modify/DeleteListener, Create/Describe/Modify/DeleteRule, SetRulePriorities,
 * AddTags, RemoveTags, DescribeTags. Not simulated: network/gateway load balancers, HTTPS
 * listeners and certificates, ip/lambda/alb targets, authenticate actions, rule conditions other
 * than path-pattern/host-header/http-request-method, slow start and stickiness (accepted as
 * attributes and stickiness config, not applied to routing), trust stores.
 *
 * Routing choices: within the chosen group, healthy targets by `load_balancing.algorithm.type`
 * (round robin by default); with none healthy, fail-open to the unhealthy ones (AWS doc); targets
 * that are initial, unused or draining never get new requests; 503 when nothing is left.
 *
 * Settings (`cloud.setting`): `elbv2.provisionMs` (30000), `elbv2.firstCheckMs` (10000),
 * `elbv2.firstCheckJitter` (0), `elbv2.initialHealthyChecks` (1), `elbv2.realHealthChecks`
 * (true unless the clock is virtual), `elbv2.listen` (true), `elbv2.hostCountPeriodMs` (60000),
 * `elbv2.maxTargetsPerGroup` (1000).
 */
import type { Cloud } from "../../cloud.ts";
import { elbActions } from "./actions.ts";
import { ELBV2_VERSION, ELBV2_XMLNS, ElbBackend } from "./backend.ts";
import { attachServers } from "./listener.ts";

export { type AlbResponse, ElbBackend } from "./backend.ts";

/** Extra in-process helpers on top of the `ElbApi` contract. */
export class Elbv2 extends ElbBackend {
  /** Loopback URL of a load balancer's listener (`lb` is an ARN or a name; default: its first listener). */
  listenerUrl(lb: string, port?: number): string | undefined {
    const found = this.lb(lb);
    if (!found) return undefined;
    return this.listenersOf(found.arn).find((l) => port === undefined || l.port === port)?.url;
  }
}

/** Registers the simulated ELBv2 on the cloud and returns its backend. */
export function registerElbv2(cloud: Cloud): Elbv2 {
  const backend = new Elbv2(cloud);
  backend.definition = {
    signingName: "elasticloadbalancing",
    protocol: "query",
    version: ELBV2_VERSION,
    xmlns: ELBV2_XMLNS,
    actions: elbActions(backend),
  };
  attachServers(backend);
  cloud.register("elasticloadbalancing", backend);
  return backend;
}
