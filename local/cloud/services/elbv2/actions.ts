/**
 * The awsQuery actions of ELBv2 (Version 2015-12-01). Outputs use the model's member names; the
 * protocol layer renders lists as `<member>` and wraps them in `<OpResult>`.
 */
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { Action, RequestContext } from "../../protocol/types.ts";
import type { ElbBackend } from "./backend.ts";
import {
  describeReason,
  elbError,
  type ForwardAction,
  type HealthCheck,
  type Listener,
  type ListenerAction,
  type LoadBalancer,
  type Rule,
  type RuleCondition,
  TARGET_GROUP_ATTRIBUTE_DEFAULTS,
  TARGET_GROUP_ATTRIBUTE_RULES,
  type Tag,
  type TargetGroup,
} from "./model.ts";

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/;
const MAX_TAGS = 50;
/** Hosted zone id AWS gives ALBs in us-east-1 (echoed, never used). */
const CANONICAL_ZONE = "Z35SXDOTRQ7X7K";

const LB_ATTRIBUTE_DEFAULTS: Record<string, string> = {
  "idle_timeout.timeout_seconds": "60",
  "deletion_protection.enabled": "false",
  "routing.http2.enabled": "true",
  "routing.http.drop_invalid_header_fields.enabled": "false",
  "access_logs.s3.enabled": "false",
  "access_logs.s3.bucket": "",
  "access_logs.s3.prefix": "",
  "load_balancing.cross_zone.enabled": "true",
};

export function elbActions(b: ElbBackend): Record<string, Action> {
  const cloud = b.cloud;
  const arn = (rest: string) => `arn:aws:elasticloadbalancing:${cloud.region}:${cloud.accountId}:${rest}`;
  const P = (input: unknown, ctx: RequestContext) => new Params(input, ctx);

  // ---- rendering ----

  const renderLb = (lb: LoadBalancer) => ({
    LoadBalancerArn: lb.arn,
    DNSName: lb.dnsName,
    CanonicalHostedZoneId: CANONICAL_ZONE,
    CreatedTime: lb.createdTime,
    LoadBalancerName: lb.name,
    Scheme: lb.scheme,
    VpcId: lb.vpcId,
    State: { Code: lb.state },
    Type: lb.type,
    AvailabilityZones: lb.subnets.map((s) => ({ ZoneName: s.az, SubnetId: s.subnetId, LoadBalancerAddresses: [] })),
    SecurityGroups: lb.securityGroups,
    IpAddressType: lb.ipAddressType,
  });

  const renderTg = (tg: TargetGroup) => {
    const lbArn = b.lbOfTargetGroup(tg.arn);
    const hc = tg.healthCheck;
    return {
      TargetGroupArn: tg.arn,
      TargetGroupName: tg.name,
      Protocol: tg.protocol,
      Port: tg.port,
      VpcId: tg.vpcId,
      HealthCheckProtocol: hc.protocol,
      HealthCheckPort: hc.port,
      HealthCheckEnabled: hc.enabled,
      HealthCheckIntervalSeconds: hc.intervalSeconds,
      HealthCheckTimeoutSeconds: hc.timeoutSeconds,
      HealthyThresholdCount: hc.healthyThreshold,
      UnhealthyThresholdCount: hc.unhealthyThreshold,
      HealthCheckPath: hc.path,
      Matcher: { HttpCode: hc.matcher },
      LoadBalancerArns: lbArn ? [lbArn] : [],
      TargetType: tg.targetType,
      ProtocolVersion: tg.protocolVersion,
      IpAddressType: tg.ipAddressType,
    };
  };

  /** AWS echoes a single-group forward as both `TargetGroupArn` and a one-entry `ForwardConfig` (reference §4.4). */
  const renderAction = (a: ListenerAction) => {
    if (a.Type !== "forward")
      return { Type: a.Type, Order: a.Order, FixedResponseConfig: a.FixedResponseConfig, RedirectConfig: a.RedirectConfig };
    return {
      Type: "forward",
      TargetGroupArn: a.single,
      Order: a.Order,
      ForwardConfig: {
        TargetGroups: a.TargetGroups.map((t) => ({ TargetGroupArn: t.TargetGroupArn, Weight: t.Weight })),
        TargetGroupStickinessConfig: {
          Enabled: a.Stickiness.Enabled,
          DurationSeconds: a.Stickiness.Enabled ? a.Stickiness.DurationSeconds : undefined,
        },
      },
    };
  };

  const renderListener = (l: Listener) => ({
    ListenerArn: l.arn,
    LoadBalancerArn: l.lbArn,
    Port: l.port,
    Protocol: l.protocol,
    DefaultActions: l.defaultRule.actions.map(renderAction),
  });

  const configKey = {
    "path-pattern": "PathPatternConfig",
    "host-header": "HostHeaderConfig",
    "http-request-method": "HttpRequestMethodConfig",
  } as const;
  const renderRule = (r: Rule) => ({
    RuleArn: r.arn,
    Priority: String(r.priority),
    Conditions: r.conditions.map((c) => ({ Field: c.Field, Values: c.Values, [configKey[c.Field]]: { Values: c.Values } })),
    Actions: r.actions.map(renderAction),
    IsDefault: r.priority === "default",
  });

  // ---- lookups ----

  const getLb = (a: string): LoadBalancer => {
    const lb = b.lbs.get(a);
    if (!lb) throw elbError.lbNotFound();
    return lb;
  };
  const getTg = (a: string): TargetGroup => {
    const tg = b.tgs.get(a);
    if (!tg) throw elbError.tgNotFound();
    return tg;
  };
  const getListener = (a: string): Listener => {
    const l = b.listeners.get(a);
    if (!l) throw elbError.listenerNotFound();
    return l;
  };
  const getRule = (a: string): Rule => {
    const r = b.rules.get(a);
    if (!r) throw elbError.ruleNotFound();
    return r;
  };
  const tagged = (a: string): { tags: Tag[] } => {
    const r = b.lbs.get(a) ?? b.tgs.get(a) ?? b.listeners.get(a) ?? b.rules.get(a);
    if (r) return r;
    if (a.includes(":targetgroup/")) throw elbError.tgNotFound();
    if (a.includes(":listener-rule/")) throw elbError.ruleNotFound();
    if (a.includes(":listener/")) throw elbError.listenerNotFound();
    throw elbError.lbNotFound();
  };

  // ---- input parsing ----

  const readTags = (p: Params): Tag[] => {
    const tags = p.tags("Tags");
    const seen = new Set<string>();
    for (const t of tags) {
      if (seen.has(t.Key)) throw elbError.duplicateTagKeys(t.Key);
      seen.add(t.Key);
    }
    if (tags.length > MAX_TAGS) throw elbError.tooManyTags();
    return tags;
  };

  const page = <T>(items: T[], p: Params, key: string): Record<string, unknown> => {
    const size = p.int("PageSize", { min: 1, max: 400 }) ?? 400;
    let offset = 0;
    const marker = p.str("Marker");
    if (marker) {
      const m = /^elb1:(\d+)$/.exec(Buffer.from(marker, "base64").toString("utf8"));
      if (!m) throw elbError.validation("The marker is not valid");
      offset = Number(m[1]);
    }
    const next = offset + size < items.length ? Buffer.from(`elb1:${offset + size}`).toString("base64") : undefined;
    return { [key]: items.slice(offset, offset + size), NextMarker: next };
  };

  /** Parses and validates `DefaultActions` / `Actions` for a listener of `lbArn`. */
  const readActions = (raw: unknown[], field: string, lbArn: string): ListenerAction[] => {
    if (raw.length === 0) throw elbError.validation(`${field} must contain at least one action`);
    const out: ListenerAction[] = raw.map((x, i) => {
      const a = new Params(x, "query");
      const type = a.str("Type");
      if (!type) throw elbError.validation(`${field}.member.${i + 1}.Type is required`);
      const order = a.int("Order", { min: 1, max: 50000 });
      if (type === "forward") {
        const single = a.str("TargetGroupArn");
        const fc = a.obj("ForwardConfig");
        const tuples = (fc?.list("TargetGroups") ?? []).map((t) => {
          const tp = new Params(t, "query");
          const tgArn = tp.str("TargetGroupArn");
          if (!tgArn) throw elbError.validation("A target group ARN must be specified in each ForwardConfig target group");
          // moto defaults a missing weight to 1; AWS's behaviour is unconfirmed (reference §9).
          const weight = tp.int("Weight") ?? 1;
          if (weight < 0 || weight > 999) throw elbError.validation(`Weight '${weight}' must be between 0 and 999`);
          return { TargetGroupArn: tgArn, Weight: weight };
        });
        if (single && tuples.length && !(tuples.length === 1 && tuples[0]!.TargetGroupArn === single)) {
          throw elbError.validation(
            "You cannot specify both a target group ARN and a forward config with different target groups",
          );
        }
        const groups = tuples.length ? tuples : single ? [{ TargetGroupArn: single, Weight: 1 }] : [];
        if (groups.length === 0) throw elbError.validation("A target group ARN must be specified for a forward action");
        if (groups.length > 5) throw elbError.tooManyTgs();
        const seen = new Set<string>();
        for (const g of groups) {
          if (seen.has(g.TargetGroupArn))
            throw elbError.validation(`Target group '${g.TargetGroupArn}' is specified more than once`);
          seen.add(g.TargetGroupArn);
          const tg = getTg(g.TargetGroupArn);
          const other = b.lbOfTargetGroup(tg.arn);
          if (other && other !== lbArn) throw elbError.association(tg.arn);
        }
        const st = fc?.obj("TargetGroupStickinessConfig");
        const enabled = st?.bool("Enabled", false) ?? false;
        const duration = st?.int("DurationSeconds");
        if (enabled && (duration === undefined || duration < 1 || duration > 604800)) {
          throw elbError.validation("Target group stickiness duration must be between 1 and 604800 seconds");
        }
        const fwd: ForwardAction = {
          Type: "forward",
          Order: order,
          single: groups.length === 1 && (single || tuples.length === 1) ? groups[0]!.TargetGroupArn : undefined,
          TargetGroups: groups,
          Stickiness: { Enabled: enabled, DurationSeconds: duration },
        };
        // A multi-group forward echoes ForwardConfig only.
        if (tuples.length > 1) fwd.single = undefined;
        return fwd;
      }
      if (type === "fixed-response") {
        const c = a.obj("FixedResponseConfig");
        const code = c?.str("StatusCode");
        if (!c || !code || !/^[2-5]\d\d$/.test(code))
          throw elbError.validation("A fixed-response action needs a StatusCode between 200 and 599");
        return {
          Type: "fixed-response",
          Order: order,
          FixedResponseConfig: { StatusCode: code, ContentType: c.str("ContentType"), MessageBody: c.str("MessageBody") },
        };
      }
      if (type === "redirect") {
        const c = a.obj("RedirectConfig");
        const code = c?.str("StatusCode");
        if (!c || (code !== "HTTP_301" && code !== "HTTP_302"))
          throw elbError.validation("A redirect action needs a StatusCode of HTTP_301 or HTTP_302");
        return {
          Type: "redirect",
          Order: order,
          RedirectConfig: {
            StatusCode: code,
            Protocol: c.str("Protocol"),
            Host: c.str("Host"),
            Port: c.str("Port"),
            Path: c.str("Path"),
            Query: c.str("Query"),
          },
        };
      }
      // authenticate-oidc / authenticate-cognito need HTTPS listeners, which are not simulated.
      throw elbError.invalidAction(`The action type '${type}' is not supported by the simulated load balancer`);
    });
    // Only one terminal action per rule; authenticate actions (the only companions AWS allows) are not simulated.
    if (out.length > 1) throw new AwsError("TooManyActions", "You've reached the limit on the number of actions per rule");
    return out;
  };

  const readConditions = (raw: unknown[]): RuleCondition[] =>
    raw.map((x) => {
      const c = new Params(x, "query");
      const field = c.str("Field");
      if (field !== "path-pattern" && field !== "host-header" && field !== "http-request-method") {
        throw elbError.validation(
          `Condition field '${field ?? ""}' is not supported by the simulated load balancer (path-pattern, host-header, http-request-method)`,
        );
      }
      const cfg = c.obj(configKey[field]);
      const values = [...c.list<string>("Values"), ...(cfg?.list<string>("Values") ?? [])].map(String);
      if (values.length === 0) throw elbError.validation(`A '${field}' condition must have at least one value`);
      if (values.some((v) => v.length > 128)) throw elbError.validation("Condition values can be at most 128 characters");
      return { Field: field, Values: [...new Set(values)] };
    });

  const readHealthCheck = (p: Params, base: HealthCheck): HealthCheck => {
    const hc: HealthCheck = {
      protocol: (p.str("HealthCheckProtocol") as HealthCheck["protocol"]) ?? base.protocol,
      port: p.str("HealthCheckPort") ?? base.port,
      path: p.str("HealthCheckPath") ?? base.path,
      enabled: p.bool("HealthCheckEnabled") ?? base.enabled,
      intervalSeconds: p.int("HealthCheckIntervalSeconds") ?? base.intervalSeconds,
      timeoutSeconds: p.int("HealthCheckTimeoutSeconds") ?? base.timeoutSeconds,
      healthyThreshold: p.int("HealthyThresholdCount") ?? base.healthyThreshold,
      unhealthyThreshold: p.int("UnhealthyThresholdCount") ?? base.unhealthyThreshold,
      matcher: p.obj("Matcher")?.str("HttpCode") ?? base.matcher,
    };
    if (hc.protocol !== "HTTP" && hc.protocol !== "HTTPS")
      throw elbError.validation(`Health check protocol '${hc.protocol}' is not supported for application load balancers`);
    if (hc.port !== "traffic-port" && !(Number(hc.port) >= 1 && Number(hc.port) <= 65535))
      throw elbError.validation(`Health check port '${hc.port}' must be 'traffic-port' or between 1 and 65535`);
    if (!hc.path.startsWith("/") || hc.path.length > 1024)
      throw elbError.validation("Health check path must begin with a '/' character and be at most 1024 characters");
    const range = (v: number, lo: number, hi: number, name: string) => {
      if (!(v >= lo && v <= hi)) throw elbError.validation(`${name} must be between ${lo} and ${hi}`);
    };
    range(hc.intervalSeconds, 5, 300, "Health check interval");
    range(hc.timeoutSeconds, 2, 120, "Health check timeout");
    range(hc.healthyThreshold, 2, 10, "Healthy threshold count");
    range(hc.unhealthyThreshold, 2, 10, "Unhealthy threshold count");
    if (hc.timeoutSeconds >= hc.intervalSeconds)
      throw elbError.validation("Health check timeout must be smaller than the interval");
    const codes = hc.matcher.split(",").flatMap((part) => part.split("-"));
    if (!/^\d{3}(?:-\d{3})?(?:,\d{3}(?:-\d{3})?)*$/.test(hc.matcher) || codes.some((c) => Number(c) < 200 || Number(c) > 499)) {
      throw elbError.validation(`Health check matcher HTTP code '${hc.matcher}' must be within '200-499'`);
    }
    return hc;
  };

  const DEFAULT_HC: HealthCheck = {
    protocol: "HTTP",
    port: "traffic-port",
    path: "/",
    enabled: true,
    intervalSeconds: 30,
    timeoutSeconds: 5,
    healthyThreshold: 5,
    unhealthyThreshold: 2,
    matcher: "200",
  };

  // ---- actions ----

  return {
    CreateLoadBalancer: (input, ctx) => {
      const p = P(input, ctx);
      const name = p.str("Name", { required: true });
      if (!NAME.test(name) || name.startsWith("internal-"))
        throw elbError.validation(
          `The load balancer name '${name}' must have at most 32 alphanumeric characters or hyphens, must not begin or end with a hyphen, and must not begin with 'internal-'`,
        );
      const type = p.str("Type") ?? "application";
      if (type !== "application") throw elbError.validation(`Load balancer type '${type}' is not simulated (application only)`);
      const scheme = (p.str("Scheme") ?? "internet-facing") as LoadBalancer["scheme"];
      if (scheme !== "internet-facing" && scheme !== "internal")
        throw elbError.validation(`Scheme '${scheme}' must be internet-facing or internal`);
      const ec2Subnets = b.ec2()?.subnets() ?? [];
      let subnetIds = [...p.list<string>("Subnets"), ...p.list("SubnetMappings").map((m) => String(m?.SubnetId ?? ""))];
      // Convenience: no subnets means every subnet of the default VPC (AWS would refuse).
      if (subnetIds.length === 0) subnetIds = ec2Subnets.map((s) => s.id);
      const subnets = subnetIds.map((id) => {
        const s = ec2Subnets.find((x) => x.id === id);
        if (!s && ec2Subnets.length) throw new AwsError("SubnetNotFound", `The subnet ID '${id}' is not valid`);
        return { subnetId: id, az: s?.az ?? `${cloud.region}a`, vpcId: s?.vpcId ?? "vpc-00000000" };
      });
      if (ec2Subnets.length && new Set(subnets.map((s) => s.az)).size < 2)
        throw elbError.validation("At least two subnets in two different Availability Zones must be specified");
      const securityGroups = p.list<string>("SecurityGroups");
      const ipAddressType = p.str("IpAddressType") ?? "ipv4";
      const existing = [...b.lbs.values()].find((l) => l.name === name);
      if (existing) {
        const same =
          existing.scheme === scheme && existing.subnets.map((s) => s.subnetId).join() === subnets.map((s) => s.subnetId).join();
        if (!same) throw elbError.duplicateLb();
        return { LoadBalancers: [renderLb(existing)] };
      }
      const id = cloud.hex(16);
      const lb: LoadBalancer = {
        arn: arn(`loadbalancer/app/${name}/${id}`),
        name,
        id,
        dnsName: `${scheme === "internal" ? "internal-" : ""}${name}-${Math.floor(cloud.random() * 9e9 + 1e9)}.${cloud.region}.elb.amazonaws.com`,
        scheme,
        type: "application",
        ipAddressType,
        vpcId: subnets[0]?.vpcId ?? "vpc-00000000",
        subnets: subnets.map(({ subnetId, az }) => ({ subnetId, az })),
        securityGroups,
        state: "provisioning",
        createdTime: cloud.clock.date(),
        tags: readTags(p),
      };
      b.lbs.set(lb.arn, lb);
      b.lbAttributes.set(lb.arn, new Map(Object.entries(LB_ATTRIBUTE_DEFAULTS)));
      lb.timer = cloud.clock.setTimeout(
        () => {
          if (b.lbs.get(lb.arn) === lb) lb.state = "active";
        },
        cloud.setting("elbv2.provisionMs", 30_000),
      );
      return { LoadBalancers: [renderLb(lb)] };
    },

    DescribeLoadBalancers: (input, ctx) => {
      const p = P(input, ctx);
      const arns = p.list<string>("LoadBalancerArns");
      const names = p.list<string>("Names");
      let lbs = [...b.lbs.values()];
      if (arns.length) lbs = arns.map(getLb);
      else if (names.length)
        lbs = names.map((n) => {
          const lb = lbs.find((x) => x.name === n);
          if (!lb) throw elbError.lbNotFound();
          return lb;
        });
      return page(lbs.map(renderLb), p, "LoadBalancers");
    },

    DeleteLoadBalancer: async (input, ctx) => {
      const lb = b.lbs.get(P(input, ctx).str("LoadBalancerArn", { required: true }));
      // Deleting a load balancer that is already gone succeeds (AWS docs).
      if (!lb) return {};
      if (b.lbAttributes.get(lb.arn)?.get("deletion_protection.enabled") === "true")
        throw elbError.operationNotPermitted(
          `Load balancer '${lb.arn}' cannot be deleted because deletion protection is enabled`,
        );
      for (const l of b.listenersOf(lb.arn)) await removeListener(l);
      cloud.clock.clearTimeout(lb.timer);
      b.lbs.delete(lb.arn);
      b.lbAttributes.delete(lb.arn);
      b.refreshUse();
      return {};
    },

    DescribeLoadBalancerAttributes: (input, ctx) => {
      const lb = getLb(P(input, ctx).str("LoadBalancerArn", { required: true }));
      return { Attributes: [...(b.lbAttributes.get(lb.arn) ?? new Map()).entries()].map(([Key, Value]) => ({ Key, Value })) };
    },

    ModifyLoadBalancerAttributes: (input, ctx) => {
      const p = P(input, ctx);
      const lb = getLb(p.str("LoadBalancerArn", { required: true }));
      const attrs = b.lbAttributes.get(lb.arn)!;
      for (const a of p.list("Attributes", { required: true })) {
        const key = String(a?.Key ?? "");
        const value = String(a?.Value ?? "");
        if (!(key in LB_ATTRIBUTE_DEFAULTS)) throw elbError.validation(`Load balancer attribute key '${key}' is not recognized`);
        if (key === "idle_timeout.timeout_seconds" && !(Number(value) >= 1 && Number(value) <= 4000))
          throw elbError.validation("Idle timeout must be between 1 and 4000 seconds");
        if (key.endsWith(".enabled") && value !== "true" && value !== "false")
          throw elbError.validation(`Load balancer attribute '${key}' must be true or false`);
        attrs.set(key, value);
      }
      return { Attributes: [...attrs.entries()].map(([Key, Value]) => ({ Key, Value })) };
    },

    CreateTargetGroup: (input, ctx) => {
      const p = P(input, ctx);
      const name = p.str("Name", { required: true });
      if (!NAME.test(name))
        throw elbError.validation(
          `Target group name '${name}' can only contain characters that are alphanumeric characters or hyphens(-), must be at most 32 characters, and must not begin or end with a hyphen`,
        );
      const targetType = p.str("TargetType") ?? "instance";
      if (targetType !== "instance")
        throw elbError.validation(`Target type '${targetType}' is not simulated (instance targets only)`);
      const protocol = p.str("Protocol") ?? "HTTP";
      if (protocol !== "HTTP" && protocol !== "HTTPS")
        throw elbError.validation(`Protocol '${protocol}' is not supported by application load balancers`);
      const port = p.int("Port");
      if (port === undefined) throw elbError.validation("A port must be specified");
      if (port < 1 || port > 65535) throw elbError.validation("Port must be between 1 and 65535");
      const vpcId = p.str("VpcId");
      if (!vpcId) throw elbError.validation("A VPC ID must be specified");
      const vpcs = new Set((b.ec2()?.subnets() ?? []).map((s) => s.vpcId));
      if (vpcs.size && !vpcs.has(vpcId)) throw elbError.validation(`The VPC ID '${vpcId}' is not found`);
      const hc = readHealthCheck(p, { ...DEFAULT_HC, protocol: protocol as HealthCheck["protocol"] });
      const protocolVersion = p.str("ProtocolVersion") ?? "HTTP1";
      const existing = [...b.tgs.values()].find((t) => t.name === name);
      if (existing) {
        // Idempotent with identical settings (reference §8.7), else DuplicateTargetGroupName.
        const same =
          existing.protocol === protocol &&
          existing.port === port &&
          existing.vpcId === vpcId &&
          JSON.stringify(existing.healthCheck) === JSON.stringify(hc);
        if (!same) throw elbError.duplicateTg();
        return { TargetGroups: [renderTg(existing)] };
      }
      const id = cloud.hex(16);
      const tg: TargetGroup = {
        arn: arn(`targetgroup/${name}/${id}`),
        name,
        id,
        protocol: protocol as TargetGroup["protocol"],
        protocolVersion,
        port,
        vpcId,
        targetType: "instance",
        ipAddressType: p.str("IpAddressType") ?? "ipv4",
        healthCheck: hc,
        attributes: new Map(),
        targets: new Map(),
        tags: readTags(p),
        rr: 0,
      };
      b.tgs.set(tg.arn, tg);
      return { TargetGroups: [renderTg(tg)] };
    },

    DescribeTargetGroups: (input, ctx) => {
      const p = P(input, ctx);
      const lbArn = p.str("LoadBalancerArn");
      const arns = p.list<string>("TargetGroupArns");
      const names = p.list<string>("Names");
      if ([lbArn, arns.length, names.length].filter(Boolean).length > 1)
        throw elbError.validation(
          "Target group names, target group ARNs, and a load balancer ARN cannot be specified at the same time",
        );
      let tgs = [...b.tgs.values()];
      if (lbArn) {
        getLb(lbArn);
        tgs = tgs.filter((t) => b.lbOfTargetGroup(t.arn) === lbArn);
      } else if (arns.length) tgs = arns.map(getTg);
      else if (names.length)
        tgs = names.map((n) => {
          const t = tgs.find((x) => x.name === n);
          if (!t) throw elbError.tgNotFound();
          return t;
        });
      return page(tgs.map(renderTg), p, "TargetGroups");
    },

    ModifyTargetGroup: (input, ctx) => {
      const p = P(input, ctx);
      const tg = getTg(p.str("TargetGroupArn", { required: true }));
      tg.healthCheck = readHealthCheck(p, tg.healthCheck);
      b.healthSettingsChanged(tg);
      return { TargetGroups: [renderTg(tg)] };
    },

    DeleteTargetGroup: (input, ctx) => {
      const tg = b.tgs.get(P(input, ctx).str("TargetGroupArn", { required: true }));
      if (!tg) return {};
      if (b.inUse(tg)) throw elbError.inUse(tg.arn);
      b.dropTargetGroup(tg);
      return {};
    },

    DescribeTargetGroupAttributes: (input, ctx) => {
      const tg = getTg(P(input, ctx).str("TargetGroupArn", { required: true }));
      return { Attributes: Object.keys(TARGET_GROUP_ATTRIBUTE_DEFAULTS).map((Key) => ({ Key, Value: b.attribute(tg, Key) })) };
    },

    ModifyTargetGroupAttributes: (input, ctx) => {
      const p = P(input, ctx);
      const tg = getTg(p.str("TargetGroupArn", { required: true }));
      const updates = p
        .list("Attributes", { required: true })
        .map((a) => ({ key: String(a?.Key ?? ""), value: String(a?.Value ?? "") }));
      for (const { key, value } of updates) {
        if (!(key in TARGET_GROUP_ATTRIBUTE_DEFAULTS))
          throw elbError.validation(`Target group attribute key '${key}' is not recognized`);
        const rule = TARGET_GROUP_ATTRIBUTE_RULES[key];
        if (Array.isArray(rule) && typeof rule[0] === "string" && !(rule as string[]).includes(value))
          throw elbError.validation(`Target group attribute '${key}' must be one of ${(rule as string[]).join(", ")}`);
        if (Array.isArray(rule) && typeof rule[0] === "number") {
          const [lo, hi] = rule as [number, number];
          if (!/^\d+$/.test(value) || Number(value) < lo || Number(value) > hi)
            throw elbError.validation(`Target group attribute '${key}' must be an integer between ${lo} and ${hi}`);
        }
        if (
          key === "slow_start.duration_seconds" &&
          !(value === "0" || (/^\d+$/.test(value) && Number(value) >= 30 && Number(value) <= 900))
        ) {
          throw elbError.validation("Slow start duration must be 0 or between 30 and 900 seconds");
        }
      }
      for (const { key, value } of updates) tg.attributes.set(key, value);
      if (
        b.attribute(tg, "slow_start.duration_seconds") !== "0" &&
        b.attribute(tg, "load_balancing.algorithm.type") === "least_outstanding_requests"
      ) {
        throw elbError.validation("Slow start cannot be combined with the least outstanding requests algorithm");
      }
      return { Attributes: Object.keys(TARGET_GROUP_ATTRIBUTE_DEFAULTS).map((Key) => ({ Key, Value: b.attribute(tg, Key) })) };
    },

    RegisterTargets: (input, ctx) => {
      const p = P(input, ctx);
      const tg = getTg(p.str("TargetGroupArn", { required: true }));
      const targets = p
        .list("Targets", { required: true })
        .map((t) => ({ id: String(t?.Id ?? ""), port: t?.Port === undefined ? tg.port : Number(t.Port) }));
      const ec2 = b.ec2();
      const notRunning: string[] = [];
      for (const t of targets) {
        if (!t.id) throw elbError.validation("A target ID must be specified");
        if (!(t.port >= 1 && t.port <= 65535)) throw elbError.validation("Target port must be between 1 and 65535");
        if (!ec2) continue;
        const inst = ec2.instance(t.id);
        if (!inst || inst.state === "terminated") throw elbError.invalidTarget();
        if (inst.state !== "running") notRunning.push(t.id);
      }
      if (notRunning.length)
        throw elbError.invalidTarget(
          `The following targets are not in a running state and cannot be registered: '${notRunning.join("', '")}'`,
        );
      const fresh = targets.filter((t) => !tg.targets.has(t.id) || tg.targets.get(t.id)?.drain).length;
      if ([...tg.targets.values()].filter((t) => !t.drain).length + fresh > cloud.setting("elbv2.maxTargetsPerGroup", 1000))
        throw elbError.tooManyTargets();
      for (const t of targets) b.register(tg, t.id, t.port);
      return {};
    },

    DeregisterTargets: (input, ctx) => {
      const p = P(input, ctx);
      const tg = getTg(p.str("TargetGroupArn", { required: true }));
      const ids = p.list("Targets", { required: true }).map((t) => String(t?.Id ?? ""));
      for (const id of ids) void b.deregister(tg, id);
      return {};
    },

    DescribeTargetHealth: (input, ctx) => {
      const p = P(input, ctx);
      const tg = getTg(p.str("TargetGroupArn", { required: true }));
      const asked = p
        .list("Targets")
        .map((t) => ({ id: String(t?.Id ?? ""), port: t?.Port === undefined ? undefined : Number(t.Port) }));
      const list = asked.length ? asked : [...tg.targets.values()].map((t) => ({ id: t.id, port: t.port }));
      const ec2 = b.ec2();
      return {
        TargetHealthDescriptions: list.map(({ id, port }) => {
          const t = tg.targets.get(id);
          const hcPort = tg.healthCheck.port === "traffic-port" ? String(t?.port ?? port ?? tg.port) : tg.healthCheck.port;
          if (!t) {
            if (ec2 && !ec2.instance(id)) throw elbError.invalidTarget();
            return {
              Target: { Id: id, Port: port ?? tg.port },
              HealthCheckPort: hcPort,
              TargetHealth: {
                State: "unused",
                Reason: "Target.NotRegistered",
                Description: describeReason("Target.NotRegistered"),
              },
            };
          }
          return {
            Target: { Id: t.id, Port: t.port },
            HealthCheckPort: hcPort,
            TargetHealth: { State: t.state, Reason: t.reason, Description: t.description },
          };
        }),
      };
    },

    CreateListener: async (input, ctx) => {
      const p = P(input, ctx);
      const lb = getLb(p.str("LoadBalancerArn", { required: true }));
      const protocol = p.str("Protocol") ?? "HTTP";
      if (protocol !== "HTTP") throw elbError.validation(`Listener protocol '${protocol}' is not simulated (HTTP only)`);
      const port = p.int("Port", { required: true });
      if (port < 1 || port > 65535) throw elbError.validation("Port must be between 1 and 65535");
      const actions = readActions(p.list("DefaultActions", { required: true }), "DefaultActions", lb.arn);
      const existing = b.listenersOf(lb.arn).find((l) => l.port === port);
      if (existing) {
        if (JSON.stringify(existing.defaultRule.actions) === JSON.stringify(actions))
          return { Listeners: [renderListener(existing)] };
        throw elbError.duplicateListener();
      }
      if (b.listenersOf(lb.arn).length >= 50)
        throw new AwsError("TooManyListeners", "You've reached the limit on the number of listeners per load balancer");
      const id = cloud.hex(16);
      const lArn = arn(`listener/app/${lb.name}/${lb.id}/${id}`);
      const l: Listener = {
        arn: lArn,
        lbArn: lb.arn,
        port,
        protocol: "HTTP",
        defaultRule: {
          arn: arn(`listener-rule/app/${lb.name}/${lb.id}/${id}/${cloud.hex(16)}`),
          listenerArn: lArn,
          priority: "default",
          conditions: [],
          actions,
          tags: [],
        },
        rules: [],
        tags: readTags(p),
      };
      b.listeners.set(l.arn, l);
      b.rules.set(l.defaultRule.arn, l.defaultRule);
      b.refreshUse();
      await b.servers?.open(l);
      return { Listeners: [renderListener(l)] };
    },

    DescribeListeners: (input, ctx) => {
      const p = P(input, ctx);
      const lbArn = p.str("LoadBalancerArn");
      const arns = p.list<string>("ListenerArns");
      if (!lbArn && !arns.length) throw elbError.validation("You must specify either listener ARNs or a load balancer ARN");
      if (lbArn && arns.length)
        throw elbError.validation("Listener ARNs and a load balancer ARN cannot be specified at the same time");
      if (lbArn) getLb(lbArn);
      const ls = lbArn ? b.listenersOf(lbArn) : arns.map(getListener);
      return page(ls.map(renderListener), p, "Listeners");
    },

    ModifyListener: (input, ctx) => {
      const p = P(input, ctx);
      const l = getListener(p.str("ListenerArn", { required: true }));
      const port = p.int("Port");
      const protocol = p.str("Protocol");
      if (protocol !== undefined && protocol !== "HTTP")
        throw elbError.validation(`Listener protocol '${protocol}' is not simulated (HTTP only)`);
      if (port !== undefined) {
        if (port < 1 || port > 65535) throw elbError.validation("Port must be between 1 and 65535");
        if (b.listenersOf(l.lbArn).some((x) => x !== l && x.port === port)) throw elbError.duplicateListener();
      }
      // A supplied list replaces the whole list (reference §4.4); omitted members stay.
      const actions = p.has("DefaultActions") ? readActions(p.list("DefaultActions"), "DefaultActions", l.lbArn) : undefined;
      if (port !== undefined) l.port = port;
      if (actions) l.defaultRule.actions = actions;
      b.refreshUse();
      return { Listeners: [renderListener(l)] };
    },

    DeleteListener: async (input, ctx) => {
      const l = getListener(P(input, ctx).str("ListenerArn", { required: true }));
      await removeListener(l);
      b.refreshUse();
      return {};
    },

    CreateRule: (input, ctx) => {
      const p = P(input, ctx);
      const l = getListener(p.str("ListenerArn", { required: true }));
      const conditions = readConditions(p.list("Conditions", { required: true }));
      if (conditions.length === 0) throw elbError.validation("A rule must have at least one condition");
      const priority = p.int("Priority", { required: true });
      if (priority < 1 || priority > 50000) throw elbError.validation("Priority must be between 1 and 50000");
      const actions = readActions(p.list("Actions", { required: true }), "Actions", l.lbArn);
      if (l.rules.some((r) => r.priority === priority)) throw elbError.priorityInUse(priority);
      const lb = getLb(l.lbArn);
      if ([...b.listenersOf(lb.arn)].reduce((n, x) => n + x.rules.length, 0) >= 100)
        throw new AwsError("TooManyRules", "You've reached the limit on the number of rules per load balancer");
      const lid = l.arn.split("/").pop();
      const r: Rule = {
        arn: arn(`listener-rule/app/${lb.name}/${lb.id}/${lid}/${cloud.hex(16)}`),
        listenerArn: l.arn,
        priority,
        conditions,
        actions,
        tags: readTags(p),
      };
      l.rules.push(r);
      b.rules.set(r.arn, r);
      b.refreshUse();
      return { Rules: [renderRule(r)] };
    },

    DescribeRules: (input, ctx) => {
      const p = P(input, ctx);
      const lArn = p.str("ListenerArn");
      const arns = p.list<string>("RuleArns");
      if (!lArn && !arns.length) throw elbError.validation("You must specify either listener ARN or rule ARNs");
      if (lArn && arns.length) throw elbError.validation("Listener ARN and rule ARNs cannot be specified at the same time");
      let rules: Rule[];
      if (lArn) {
        const l = getListener(lArn);
        rules = [...[...l.rules].sort((a, c) => (a.priority as number) - (c.priority as number)), l.defaultRule];
      } else rules = arns.map(getRule);
      return page(rules.map(renderRule), p, "Rules");
    },

    ModifyRule: (input, ctx) => {
      const p = P(input, ctx);
      const r = getRule(p.str("RuleArn", { required: true }));
      const l = getListener(r.listenerArn);
      const conditions = p.has("Conditions") ? readConditions(p.list("Conditions")) : undefined;
      if (conditions && r.priority === "default")
        throw elbError.operationNotPermitted("Conditions cannot be added to a default rule");
      // Changing the default rule's actions is allowed here (what ModifyListener DefaultActions does; reference §4.4 UNSURE).
      const actions = p.has("Actions") ? readActions(p.list("Actions"), "Actions", l.lbArn) : undefined;
      if (conditions) r.conditions = conditions;
      if (actions) r.actions = actions;
      b.refreshUse();
      return { Rules: [renderRule(r)] };
    },

    SetRulePriorities: (input, ctx) => {
      const p = P(input, ctx);
      const pairs = p
        .list("RulePriorities", { required: true })
        .map((x) => ({ rule: getRule(String(x?.RuleArn ?? "")), priority: Number(x?.Priority) }));
      for (const { rule, priority } of pairs) {
        if (rule.priority === "default") throw elbError.operationNotPermitted("The default rule's priority cannot be changed");
        if (!(Number.isInteger(priority) && priority >= 1 && priority <= 50000))
          throw elbError.validation("Priority must be between 1 and 50000");
        const l = getListener(rule.listenerArn);
        const moving = new Set(pairs.map((x) => x.rule));
        if (l.rules.some((o) => !moving.has(o) && o.priority === priority)) throw elbError.priorityInUse(priority);
      }
      for (const { rule, priority } of pairs) rule.priority = priority;
      return { Rules: pairs.map((x) => renderRule(x.rule)) };
    },

    DeleteRule: (input, ctx) => {
      const r = getRule(P(input, ctx).str("RuleArn", { required: true }));
      if (r.priority === "default") throw elbError.operationNotPermitted("Default rules cannot be deleted");
      const l = b.listeners.get(r.listenerArn);
      if (l) l.rules = l.rules.filter((x) => x !== r);
      b.rules.delete(r.arn);
      b.refreshUse();
      return {};
    },

    AddTags: (input, ctx) => {
      const p = P(input, ctx);
      const arns = p.list<string>("ResourceArns", { required: true });
      const tags = readTags(p);
      if (tags.length === 0) throw p.missing("Tags");
      const resources = arns.map(tagged);
      for (const r of resources) {
        const merged = new Map(r.tags.map((t) => [t.Key, t.Value]));
        for (const t of tags) merged.set(t.Key, t.Value);
        if (merged.size > MAX_TAGS) throw elbError.tooManyTags();
      }
      for (const r of resources) {
        const merged = new Map(r.tags.map((t) => [t.Key, t.Value]));
        for (const t of tags) merged.set(t.Key, t.Value);
        r.tags = [...merged.entries()].map(([Key, Value]) => ({ Key, Value }));
      }
      return {};
    },

    RemoveTags: (input, ctx) => {
      const p = P(input, ctx);
      const keys = new Set(p.list<string>("TagKeys", { required: true }));
      for (const r of p.list<string>("ResourceArns", { required: true }).map(tagged))
        r.tags = r.tags.filter((t) => !keys.has(t.Key));
      return {};
    },

    DescribeTags: (input, ctx) => {
      const p = P(input, ctx);
      const arns = p.list<string>("ResourceArns", { required: true });
      if (arns.length > 20) throw elbError.validation("You can specify up to 20 resource ARNs");
      return { TagDescriptions: arns.map((a) => ({ ResourceArn: a, Tags: tagged(a).tags })) };
    },
  };

  async function removeListener(l: Listener): Promise<void> {
    await b.servers?.close(l);
    for (const r of [l.defaultRule, ...l.rules]) b.rules.delete(r.arn);
    b.listeners.delete(l.arn);
  }
}
