/**
 * The resources of the simulated ELBv2 (application load balancers only) and their AWS defaults
 * (reference §4.1). Wire members keep the model's PascalCase names so actions can echo them.
 */
import type { TimerHandle } from "../../../../lib/clock.ts";
import type { TargetHealthState } from "../../contracts.ts";
import { AwsError } from "../../protocol/errors.ts";

export interface Tag {
  Key: string;
  Value: string;
}

export interface LoadBalancer {
  arn: string;
  name: string;
  /** The 16-hex id in the ARN (`app/<name>/<id>` is the CloudWatch `LoadBalancer` dimension). */
  id: string;
  dnsName: string;
  scheme: "internet-facing" | "internal";
  type: "application";
  ipAddressType: string;
  vpcId: string;
  subnets: { subnetId: string; az: string }[];
  securityGroups: string[];
  state: "provisioning" | "active" | "failed";
  createdTime: Date;
  tags: Tag[];
  timer?: TimerHandle;
}

export interface TargetGroupTuple {
  TargetGroupArn: string;
  Weight: number;
}

/** A `forward` action normalised to its weighted form (a plain `TargetGroupArn` is weight 1). */
export interface ForwardAction {
  Type: "forward";
  Order?: number;
  /** Set when the caller gave a single `TargetGroupArn` (AWS echoes both forms then). */
  single?: string;
  TargetGroups: TargetGroupTuple[];
  Stickiness: { Enabled: boolean; DurationSeconds?: number };
}

/** `fixed-response` and `redirect` are accepted and answered by the listener. */
export interface OtherAction {
  Type: "fixed-response" | "redirect";
  Order?: number;
  FixedResponseConfig?: { StatusCode: string; ContentType?: string; MessageBody?: string };
  RedirectConfig?: { StatusCode: string; Protocol?: string; Host?: string; Port?: string; Path?: string; Query?: string };
}

export type ListenerAction = ForwardAction | OtherAction;

export interface RuleCondition {
  Field: "path-pattern" | "host-header" | "http-request-method";
  Values: string[];
}

export interface Rule {
  arn: string;
  listenerArn: string;
  /** `default` for the listener's default rule. */
  priority: number | "default";
  conditions: RuleCondition[];
  actions: ListenerAction[];
  tags: Tag[];
}

export interface Listener {
  arn: string;
  lbArn: string;
  port: number;
  protocol: "HTTP" | "HTTPS";
  /** The default rule (its actions are the listener's DefaultActions). */
  defaultRule: Rule;
  rules: Rule[];
  tags: Tag[];
  /** Loopback URL of the real HTTP server (`http://127.0.0.1:<port>`), once it listens. */
  url?: string;
}

export interface Target {
  id: string;
  port: number;
  az: string;
  state: TargetHealthState;
  reason?: string;
  description?: string;
  registeredAt: number;
  /** Consecutive check results since the last state change. */
  passes: number;
  failures: number;
  /** Requests being proxied to it now. */
  inFlight: number;
  checkTimer?: TimerHandle;
  /** Set while draining: when it ends and who waits for it. */
  drain?: { until: number; timer: TimerHandle; waiters: (() => void)[] };
  /** Toggle for `health-flap` faults without a period. */
  flap?: boolean;
}

export interface HealthCheck {
  protocol: "HTTP" | "HTTPS";
  port: string;
  path: string;
  enabled: boolean;
  intervalSeconds: number;
  timeoutSeconds: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  matcher: string;
}

export interface TargetGroup {
  arn: string;
  name: string;
  id: string;
  protocol: "HTTP" | "HTTPS";
  protocolVersion: string;
  port: number;
  vpcId: string;
  targetType: "instance" | "ip";
  ipAddressType: string;
  healthCheck: HealthCheck;
  attributes: Map<string, string>;
  targets: Map<string, Target>;
  tags: Tag[];
  /** Round-robin cursor. */
  rr: number;
}

/** Target group attributes ALBs accept, with AWS defaults. */
export const TARGET_GROUP_ATTRIBUTE_DEFAULTS: Record<string, string> = {
  "deregistration_delay.timeout_seconds": "300",
  "slow_start.duration_seconds": "0",
  "stickiness.enabled": "false",
  "stickiness.type": "lb_cookie",
  "stickiness.lb_cookie.duration_seconds": "86400",
  "stickiness.app_cookie.cookie_name": "",
  "stickiness.app_cookie.duration_seconds": "86400",
  "load_balancing.algorithm.type": "round_robin",
  "load_balancing.algorithm.anomaly_mitigation": "off",
  "load_balancing.cross_zone.enabled": "use_load_balancer_configuration",
  "target_group_health.dns_failover.minimum_healthy_targets.count": "1",
  "target_group_health.dns_failover.minimum_healthy_targets.percentage": "off",
  "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count": "1",
  "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage": "off",
};

/** Validation of attribute values: [min, max] for numbers, allowed values for enums. */
export const TARGET_GROUP_ATTRIBUTE_RULES: Record<string, [number, number] | string[]> = {
  "deregistration_delay.timeout_seconds": [0, 3600],
  "stickiness.enabled": ["true", "false"],
  "stickiness.type": ["lb_cookie", "app_cookie"],
  "stickiness.lb_cookie.duration_seconds": [1, 604800],
  "stickiness.app_cookie.duration_seconds": [1, 604800],
  "load_balancing.algorithm.type": ["round_robin", "least_outstanding_requests", "weighted_random"],
  "load_balancing.algorithm.anomaly_mitigation": ["on", "off"],
};

/** Reason descriptions AWS writes beside each reason code (reference §4.2). */
export const REASON_DESCRIPTIONS: Record<string, string> = {
  "Elb.RegistrationInProgress": "Target registration is in progress",
  "Elb.InitialHealthChecking": "Initial health checks in progress",
  "Target.ResponseCodeMismatch": "Health checks failed with these codes: [%s]",
  "Target.Timeout": "Request timed out",
  "Target.FailedHealthChecks": "Health checks failed",
  "Target.NotRegistered": "Target is not registered to the target group",
  "Target.NotInUse": "Target group is not configured to receive traffic from the load balancer",
  "Target.InvalidState": "Target is in the %s state",
  "Target.DeregistrationInProgress": "Target deregistration is in progress",
  "Target.HealthCheckDisabled": "Health checks are disabled",
};

export function describeReason(reason: string, arg = ""): string {
  return (REASON_DESCRIPTIONS[reason] ?? reason).replace("%s", arg);
}

/** ELBv2 errors by wire code; the SDK turns them into `<Code>Exception` classes. */
export const elbError = {
  lbNotFound: () => new AwsError("LoadBalancerNotFound", "One or more load balancers not found"),
  tgNotFound: () => new AwsError("TargetGroupNotFound", "One or more target groups not found"),
  listenerNotFound: () => new AwsError("ListenerNotFound", "One or more listeners not found"),
  ruleNotFound: () => new AwsError("RuleNotFound", "One or more rules not found"),
  validation: (msg: string) => new AwsError("ValidationError", msg),
  invalidTarget: (
    msg = "The specified target does not exist, is not in the same VPC as the target group, or has an unsupported instance type.",
  ) => new AwsError("InvalidTarget", msg),
  duplicateTg: () =>
    new AwsError("DuplicateTargetGroupName", "A target group with the same name exists, but with different settings"),
  duplicateLb: () =>
    new AwsError("DuplicateLoadBalancerName", "A load balancer with the same name exists, but with different settings"),
  duplicateListener: () => new AwsError("DuplicateListener", "A listener already exists on this port for this load balancer"),
  association: (tg: string) =>
    new AwsError(
      "TargetGroupAssociationLimit",
      `The following target groups cannot be associated with more than one load balancer: ${tg}`,
    ),
  tooManyTgs: () => new AwsError("TooManyTargetGroups", "You can specify up to 5 target groups in a forward action"),
  inUse: (tg: string) => new AwsError("ResourceInUse", `Target group '${tg}' is currently in use by a listener or a rule`),
  priorityInUse: (p: number) => new AwsError("PriorityInUse", `Priority '${p}' is currently in use`),
  operationNotPermitted: (msg: string) => new AwsError("OperationNotPermitted", msg),
  invalidAction: (msg: string) => new AwsError("InvalidLoadBalancerAction", msg),
  tooManyTags: () =>
    new AwsError("TooManyTags", "You have reached the limit on the number of tags that can be assigned to a resource"),
  tooManyTargets: () => new AwsError("TooManyTargets", "You've reached the limit on the number of targets per target group"),
  duplicateTagKeys: (k: string) => new AwsError("DuplicateTagKeys", `Tag key '${k}' specified more than once`),
};
