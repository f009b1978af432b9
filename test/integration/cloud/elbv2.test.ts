/**
 * The simulated ELBv2 through the real SDK client, on the virtual clock, with the real simulated EC2
 * (instances run the sample app; `app.realServers` off, health checks go through `app.request`).
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { EC2Client, StopInstancesCommand } from "@aws-sdk/client-ec2";
import {
  AddTagsCommand,
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DeleteListenerCommand,
  DeleteLoadBalancerCommand,
  DeleteRuleCommand,
  DeleteTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyListenerCommand,
  ModifyRuleCommand,
  ModifyTargetGroupAttributesCommand,
  ModifyTargetGroupCommand,
  RegisterTargetsCommand,
  RemoveTagsCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../../../lib/clock.ts";
import { APP_PATHS } from "../../../local/app/server.ts";
import { Cloud } from "../../../local/cloud/cloud.ts";
import type { SimInstance } from "../../../local/cloud/contracts.ts";
import { type CloudWatchBackend, registerCloudWatch } from "../../../local/cloud/services/cloudwatch/index.ts";
import { type Ec2Backend, registerEc2 } from "../../../local/cloud/services/ec2/index.ts";
import { type Elbv2, registerElbv2 } from "../../../local/cloud/services/elbv2/index.ts";

interface World {
  cloud: Cloud;
  ec2: Ec2Backend;
  elb: Elbv2;
  cw: CloudWatchBackend;
  client: ElasticLoadBalancingV2Client;
  vpcId: string;
  subnets: string[];
}

async function world(settings: Record<string, number | string | boolean> = {}): Promise<World> {
  const cloud = new Cloud({ seed: 7, settings: { "app.realServers": false, "elbv2.listen": false, ...settings } });
  const ec2 = registerEc2(cloud);
  const elb = registerElbv2(cloud);
  const cw = registerCloudWatch(cloud);
  await cloud.start({ port: false });
  const subnets = ec2.subnets();
  return {
    cloud,
    ec2,
    elb,
    cw,
    client: new ElasticLoadBalancingV2Client(cloud.clientConfig()),
    vpcId: subnets[0]!.vpcId,
    subnets: subnets.map((s) => s.id),
  };
}

/** Polls `fn` on the clock until it returns a value, at most `limitMs` of clock time. */
async function until<T>(
  clock: Clock,
  fn: () => Promise<T | undefined> | T | undefined,
  limitMs = 600_000,
  stepMs = 1_000,
): Promise<T> {
  const deadline = clock.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (clock.now() >= deadline) throw new Error(`condition not met within ${limitMs} ms of clock time`);
    await clock.sleep(stepMs);
  }
}

function writeAppFile(inst: SimInstance, path: string, value: string): void {
  const file = join(inst.rootDir, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${value}\n`);
}

/** Launches `n` instances, waits until running, installs the sample app and services it in. */
async function instances(w: World, n: number, commit = "abc1234"): Promise<SimInstance[]> {
  const launched = w.ec2.launch({ imageId: w.ec2.baseImages()[0]!.imageId, tags: {}, count: n });
  await until(w.cloud.clock, () => launched.every((i) => i.state === "running"));
  for (const i of launched) {
    writeAppFile(i, APP_PATHS.commit, commit);
    writeAppFile(i, APP_PATHS.service, "web");
    writeAppFile(i, APP_PATHS.inService, "");
  }
  return launched;
}

async function stack(w: World, opts: { interval?: number; delay?: number } = {}) {
  const lb = (await w.client.send(new CreateLoadBalancerCommand({ Name: "web", Subnets: w.subnets }))).LoadBalancers![0]!;
  const mk = async (name: string) =>
    (
      await w.client.send(
        new CreateTargetGroupCommand({
          Name: name,
          Protocol: "HTTP",
          Port: 80,
          VpcId: w.vpcId,
          HealthCheckPath: "/health",
          HealthCheckIntervalSeconds: opts.interval ?? 30,
        }),
      )
    ).TargetGroups![0]!;
  const blue = await mk("web-blue");
  const green = await mk("web-green");
  for (const tg of [blue, green]) {
    await w.client.send(
      new ModifyTargetGroupAttributesCommand({
        TargetGroupArn: tg.TargetGroupArn,
        Attributes: [{ Key: "deregistration_delay.timeout_seconds", Value: String(opts.delay ?? 60) }],
      }),
    );
  }
  const listener = (
    await w.client.send(
      new CreateListenerCommand({
        LoadBalancerArn: lb.LoadBalancerArn,
        Protocol: "HTTP",
        Port: 80,
        DefaultActions: [{ Type: "forward", TargetGroupArn: blue.TargetGroupArn }],
      }),
    )
  ).Listeners![0]!;
  await until(w.cloud.clock, () => w.elb.lb("web")?.state === "active");
  return {
    lb,
    blue,
    green,
    listener,
    lbArn: lb.LoadBalancerArn!,
    blueArn: blue.TargetGroupArn!,
    greenArn: green.TargetGroupArn!,
    listenerArn: listener.ListenerArn!,
  };
}

async function health(w: World, tgArn: string, id?: string) {
  const r = await w.client.send(
    new DescribeTargetHealthCommand({ TargetGroupArn: tgArn, ...(id ? { Targets: [{ Id: id }] } : {}) }),
  );
  return r.TargetHealthDescriptions ?? [];
}

async function stateOf(w: World, tgArn: string, id: string): Promise<string> {
  const h = (await health(w, tgArn, id))[0]?.TargetHealth;
  return `${h?.State}${h?.Reason ? `/${h.Reason}` : ""}`;
}

describe("ELBv2 API", () => {
  let w: World | undefined;
  afterEach(async () => {
    await w?.cloud.stop();
    w = undefined;
  });

  it("creates load balancers idempotently, provisions them, pages and deletes them", async () => {
    w = await world();
    const a = (
      await w.client.send(
        new CreateLoadBalancerCommand({ Name: "alb-a", Subnets: w.subnets, Tags: [{ Key: "kiln:service", Value: "web" }] }),
      )
    ).LoadBalancers![0]!;
    expect(a).toMatchObject({
      LoadBalancerName: "alb-a",
      Type: "application",
      Scheme: "internet-facing",
      State: { Code: "provisioning" },
      VpcId: w.vpcId,
    });
    expect(a.LoadBalancerArn).toMatch(
      /^arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer\/app\/alb-a\/[0-9a-f]{16}$/,
    );
    expect(a.DNSName).toMatch(/^alb-a-\d+\.us-east-1\.elb\.amazonaws\.com$/);
    const again = (await w.client.send(new CreateLoadBalancerCommand({ Name: "alb-a", Subnets: w.subnets }))).LoadBalancers![0]!;
    expect(again.LoadBalancerArn).toBe(a.LoadBalancerArn);
    await expect(
      w.client.send(new CreateLoadBalancerCommand({ Name: "alb-a", Subnets: w.subnets, Scheme: "internal" })),
    ).rejects.toMatchObject({ name: "DuplicateLoadBalancerNameException" });
    await expect(
      w.client.send(new CreateLoadBalancerCommand({ Name: "alb-x", Subnets: w.subnets.slice(0, 1) })),
    ).rejects.toMatchObject({ name: "ValidationError" });
    await expect(w.client.send(new CreateLoadBalancerCommand({ Name: "-bad" }))).rejects.toMatchObject({
      name: "ValidationError",
    });
    for (const n of ["alb-b", "alb-c"]) await w.client.send(new CreateLoadBalancerCommand({ Name: n, Subnets: w.subnets }));

    await w.cloud.clock.sleep(29_000);
    expect((await w.client.send(new DescribeLoadBalancersCommand({ Names: ["alb-a"] }))).LoadBalancers![0]!.State?.Code).toBe(
      "provisioning",
    );
    await w.cloud.clock.sleep(1_000);
    expect((await w.client.send(new DescribeLoadBalancersCommand({ Names: ["alb-a"] }))).LoadBalancers![0]!.State?.Code).toBe(
      "active",
    );

    const names: string[] = [];
    let marker: string | undefined;
    for (let pages = 0; pages < 5; pages++) {
      const page = await w.client.send(new DescribeLoadBalancersCommand({ PageSize: 2, Marker: marker }));
      names.push(...(page.LoadBalancers ?? []).map((l) => l.LoadBalancerName!));
      marker = page.NextMarker;
      if (!marker) break;
    }
    expect(names).toEqual(["alb-a", "alb-b", "alb-c"]);
    await expect(w.client.send(new DescribeLoadBalancersCommand({ Names: ["nope"] }))).rejects.toMatchObject({
      name: "LoadBalancerNotFoundException",
    });

    await w.client.send(new DeleteLoadBalancerCommand({ LoadBalancerArn: a.LoadBalancerArn }));
    await w.client.send(new DeleteLoadBalancerCommand({ LoadBalancerArn: a.LoadBalancerArn })); // already gone: success
    expect((await w.client.send(new DescribeLoadBalancersCommand({}))).LoadBalancers!.map((l) => l.LoadBalancerName)).toEqual([
      "alb-b",
      "alb-c",
    ]);
  });

  it("creates target groups with ALB defaults, idempotently, and validates settings and attributes", async () => {
    w = await world();
    const input = { Name: "tg-a", Protocol: "HTTP" as const, Port: 8080, VpcId: w.vpcId };
    const tg = (await w.client.send(new CreateTargetGroupCommand(input))).TargetGroups![0]!;
    expect(tg).toMatchObject({
      TargetGroupName: "tg-a",
      HealthCheckProtocol: "HTTP",
      HealthCheckPort: "traffic-port",
      HealthCheckPath: "/",
      HealthCheckIntervalSeconds: 30,
      HealthCheckTimeoutSeconds: 5,
      HealthyThresholdCount: 5,
      UnhealthyThresholdCount: 2,
      Matcher: { HttpCode: "200" },
      LoadBalancerArns: [],
      TargetType: "instance",
    });
    expect((await w.client.send(new CreateTargetGroupCommand(input))).TargetGroups![0]!.TargetGroupArn).toBe(tg.TargetGroupArn);
    await expect(w.client.send(new CreateTargetGroupCommand({ ...input, HealthCheckPath: "/other" }))).rejects.toMatchObject({
      name: "DuplicateTargetGroupNameException",
    });
    for (const bad of [
      { ...input, Name: "bad_name" },
      { ...input, Name: "tg-b", HealthCheckIntervalSeconds: 5, HealthCheckTimeoutSeconds: 5 },
      { ...input, Name: "tg-b", HealthyThresholdCount: 11 },
      { ...input, Name: "tg-b", Matcher: { HttpCode: "600" } },
      { ...input, Name: "tg-b", VpcId: undefined },
    ]) {
      await expect(w.client.send(new CreateTargetGroupCommand(bad)), JSON.stringify(bad)).rejects.toMatchObject({
        name: "ValidationError",
      });
    }
    const modified = (
      await w.client.send(
        new ModifyTargetGroupCommand({
          TargetGroupArn: tg.TargetGroupArn,
          HealthCheckPath: "/health",
          HealthCheckIntervalSeconds: 10,
          Matcher: { HttpCode: "200-299" },
        }),
      )
    ).TargetGroups![0]!;
    expect(modified).toMatchObject({
      HealthCheckPath: "/health",
      HealthCheckIntervalSeconds: 10,
      Matcher: { HttpCode: "200-299" },
    });

    const attrs = async () =>
      Object.fromEntries(
        (
          (await w!.client.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: tg.TargetGroupArn }))).Attributes ?? []
        ).map((a) => [a.Key, a.Value]),
      );
    expect(await attrs()).toMatchObject({
      "deregistration_delay.timeout_seconds": "300",
      "slow_start.duration_seconds": "0",
      "stickiness.enabled": "false",
      "stickiness.type": "lb_cookie",
    });
    await w.client.send(
      new ModifyTargetGroupAttributesCommand({
        TargetGroupArn: tg.TargetGroupArn,
        Attributes: [
          { Key: "deregistration_delay.timeout_seconds", Value: "30" },
          { Key: "slow_start.duration_seconds", Value: "60" },
          { Key: "stickiness.enabled", Value: "true" },
        ],
      }),
    );
    expect(await attrs()).toMatchObject({
      "deregistration_delay.timeout_seconds": "30",
      "slow_start.duration_seconds": "60",
      "stickiness.enabled": "true",
    });
    for (const [Key, Value] of [
      ["deregistration_delay.timeout_seconds", "3601"],
      ["slow_start.duration_seconds", "10"],
      ["no.such.key", "1"],
    ] as const) {
      await expect(
        w.client.send(
          new ModifyTargetGroupAttributesCommand({ TargetGroupArn: tg.TargetGroupArn, Attributes: [{ Key, Value }] }),
        ),
      ).rejects.toMatchObject({ name: "ValidationError" });
    }
    await expect(w.client.send(new DescribeTargetGroupsCommand({ Names: ["tg-a", "missing"] }))).rejects.toMatchObject({
      name: "TargetGroupNotFoundException",
    });
    await expect(
      w.client.send(new DescribeTargetHealthCommand({ TargetGroupArn: `${tg.TargetGroupArn}0` })),
    ).rejects.toMatchObject({ name: "TargetGroupNotFoundException" });
    await w.client.send(new DeleteTargetGroupCommand({ TargetGroupArn: tg.TargetGroupArn }));
    expect((await w.client.send(new DescribeTargetGroupsCommand({}))).TargetGroups).toEqual([]);
  });

  it("forwards by weight, echoes forward actions like AWS, and enforces listener rules", async () => {
    w = await world();
    const s = await stack(w);
    const single = (await w.client.send(new DescribeListenersCommand({ LoadBalancerArn: s.lbArn }))).Listeners![0]!
      .DefaultActions![0]!;
    // A single-group forward comes back as both TargetGroupArn and a weight-1 ForwardConfig (reference §4.4).
    expect(single).toMatchObject({
      Type: "forward",
      TargetGroupArn: s.blueArn,
      ForwardConfig: {
        TargetGroups: [{ TargetGroupArn: s.blueArn, Weight: 1 }],
        TargetGroupStickinessConfig: { Enabled: false },
      },
    });
    expect(
      (await w.client.send(new DescribeTargetGroupsCommand({ LoadBalancerArn: s.lbArn }))).TargetGroups!.map(
        (t) => t.TargetGroupName,
      ),
    ).toEqual(["web-blue"]);

    const weighted = (
      await w.client.send(
        new ModifyListenerCommand({
          ListenerArn: s.listenerArn,
          DefaultActions: [
            {
              Type: "forward",
              ForwardConfig: {
                TargetGroups: [
                  { TargetGroupArn: s.blueArn, Weight: 90 },
                  { TargetGroupArn: s.greenArn, Weight: 0 },
                ],
              },
            },
          ],
        }),
      )
    ).Listeners![0]!.DefaultActions![0]!;
    expect(weighted.TargetGroupArn).toBeUndefined();
    expect(weighted.ForwardConfig?.TargetGroups).toEqual([
      { TargetGroupArn: s.blueArn, Weight: 90 },
      { TargetGroupArn: s.greenArn, Weight: 0 },
    ]);
    // Weight 0 still associates the group with the load balancer (reference §8.3).
    expect(
      (await w.client.send(new DescribeTargetGroupsCommand({ Names: ["web-green"] }))).TargetGroups![0]!.LoadBalancerArns,
    ).toEqual([s.lbArn]);
    await expect(w.client.send(new DeleteTargetGroupCommand({ TargetGroupArn: s.greenArn }))).rejects.toMatchObject({
      name: "ResourceInUseException",
    });

    const fwd = (groups: { TargetGroupArn: string; Weight: number }[]) => [
      { Type: "forward" as const, ForwardConfig: { TargetGroups: groups } },
    ];
    await expect(
      w.client.send(
        new ModifyListenerCommand({
          ListenerArn: s.listenerArn,
          DefaultActions: fwd([{ TargetGroupArn: s.blueArn, Weight: 1000 }]),
        }),
      ),
    ).rejects.toMatchObject({ name: "ValidationError" });
    const extra = [];
    for (let i = 0; i < 5; i++)
      extra.push(
        (await w.client.send(new CreateTargetGroupCommand({ Name: `x${i}`, Port: 80, Protocol: "HTTP", VpcId: w.vpcId })))
          .TargetGroups![0]!.TargetGroupArn!,
      );
    await expect(
      w.client.send(
        new ModifyListenerCommand({
          ListenerArn: s.listenerArn,
          DefaultActions: fwd([s.blueArn, ...extra].map((a) => ({ TargetGroupArn: a, Weight: 1 }))),
        }),
      ),
    ).rejects.toMatchObject({ name: "TooManyTargetGroupsException" });
    await expect(
      w.client.send(
        new ModifyListenerCommand({
          ListenerArn: s.listenerArn,
          DefaultActions: fwd([{ TargetGroupArn: `${s.blueArn}x`, Weight: 1 }]),
        }),
      ),
    ).rejects.toMatchObject({ name: "TargetGroupNotFoundException" });

    const other = (await w.client.send(new CreateLoadBalancerCommand({ Name: "other", Subnets: w.subnets }))).LoadBalancers![0]!;
    await expect(
      w.client.send(
        new CreateListenerCommand({
          LoadBalancerArn: other.LoadBalancerArn,
          Port: 80,
          Protocol: "HTTP",
          DefaultActions: [{ Type: "forward", TargetGroupArn: s.blueArn }],
        }),
      ),
    ).rejects.toMatchObject({ name: "TargetGroupAssociationLimitException" });
    await expect(
      w.client.send(
        new CreateListenerCommand({
          LoadBalancerArn: s.lbArn,
          Port: 80,
          Protocol: "HTTP",
          DefaultActions: [{ Type: "forward", TargetGroupArn: extra[0] }],
        }),
      ),
    ).rejects.toMatchObject({ name: "DuplicateListenerException" });
    await expect(w.client.send(new DescribeListenersCommand({}))).rejects.toMatchObject({ name: "ValidationError" });
    await expect(w.client.send(new ModifyListenerCommand({ ListenerArn: `${s.listenerArn}0` }))).rejects.toMatchObject({
      name: "ListenerNotFoundException",
    });

    const rule = (
      await w.client.send(
        new CreateRuleCommand({
          ListenerArn: s.listenerArn,
          Priority: 10,
          Conditions: [{ Field: "path-pattern", Values: ["/api/*"] }],
          Actions: [{ Type: "forward", TargetGroupArn: s.greenArn }],
        }),
      )
    ).Rules![0]!;
    expect(rule).toMatchObject({
      Priority: "10",
      IsDefault: false,
      Conditions: [{ Field: "path-pattern", Values: ["/api/*"], PathPatternConfig: { Values: ["/api/*"] } }],
    });
    await expect(
      w.client.send(
        new CreateRuleCommand({
          ListenerArn: s.listenerArn,
          Priority: 10,
          Conditions: [{ Field: "host-header", Values: ["a.example.com"] }],
          Actions: [{ Type: "forward", TargetGroupArn: s.greenArn }],
        }),
      ),
    ).rejects.toMatchObject({ name: "PriorityInUseException" });
    await w.client.send(
      new CreateRuleCommand({
        ListenerArn: s.listenerArn,
        Priority: 5,
        Conditions: [{ Field: "host-header", HostHeaderConfig: { Values: ["*.example.com"] } }],
        Actions: [{ Type: "fixed-response", FixedResponseConfig: { StatusCode: "418", MessageBody: "teapot" } }],
      }),
    );
    const rules = (await w.client.send(new DescribeRulesCommand({ ListenerArn: s.listenerArn }))).Rules!;
    expect(rules.map((r) => [r.Priority, r.IsDefault])).toEqual([
      ["5", false],
      ["10", false],
      ["default", true],
    ]);
    const paged = await w.client.send(new DescribeRulesCommand({ ListenerArn: s.listenerArn, PageSize: 2 }));
    expect(paged.Rules).toHaveLength(2);
    expect(
      (await w.client.send(new DescribeRulesCommand({ ListenerArn: s.listenerArn, Marker: paged.NextMarker }))).Rules!.map(
        (r) => r.Priority,
      ),
    ).toEqual(["default"]);
    await expect(w.client.send(new DeleteRuleCommand({ RuleArn: rules[2]!.RuleArn }))).rejects.toMatchObject({
      name: "OperationNotPermittedException",
    });
    await expect(w.client.send(new ModifyRuleCommand({ RuleArn: `${rule.RuleArn}0`, Conditions: [] }))).rejects.toMatchObject({
      name: "RuleNotFoundException",
    });
    const moved = (
      await w.client.send(
        new ModifyRuleCommand({ RuleArn: rule.RuleArn, Conditions: [{ Field: "path-pattern", Values: ["/v2/*"] }] }),
      )
    ).Rules![0]!;
    expect(moved.Conditions![0]!.Values).toEqual(["/v2/*"]);

    // Routing order: host rule (5), then path rule (10), then the default action.
    w.elb.registerTargets(
      s.blueArn,
      (await instances(w, 1)).map((i) => ({ id: i.id })),
    );
    w.elb.registerTargets(
      s.greenArn,
      (await instances(w, 1)).map((i) => ({ id: i.id })),
    );
    await w.cloud.clock.sleep(15_000);
    expect(await w.elb.request("web", "/", { host: "shop.example.com" })).toMatchObject({
      status: 418,
      body: "teapot",
      source: "elb",
    });
    expect(await w.elb.request("web", "/v2/x")).toMatchObject({ targetGroupArn: s.greenArn });
    expect(await w.elb.request("web", "/api/x")).toMatchObject({ targetGroupArn: s.blueArn });

    await w.client.send(new DeleteRuleCommand({ RuleArn: rule.RuleArn }));
    await w.client.send(new DeleteListenerCommand({ ListenerArn: s.listenerArn }));
    await expect(w.client.send(new DescribeRulesCommand({ ListenerArn: s.listenerArn }))).rejects.toMatchObject({
      name: "ListenerNotFoundException",
    });
    expect(
      (await w.client.send(new DescribeTargetGroupsCommand({ Names: ["web-green"] }))).TargetGroups![0]!.LoadBalancerArns,
    ).toEqual([]);
  });

  it("adds, describes and removes tags on every resource type", async () => {
    w = await world();
    const s = await stack(w);
    const arns = [s.lbArn, s.blueArn, s.listenerArn];
    await w.client.send(
      new AddTagsCommand({
        ResourceArns: arns,
        Tags: [
          { Key: "kiln:service", Value: "web" },
          { Key: "team", Value: "sre" },
        ],
      }),
    );
    await w.client.send(new RemoveTagsCommand({ ResourceArns: [s.blueArn], TagKeys: ["team"] }));
    const d = (await w.client.send(new DescribeTagsCommand({ ResourceArns: arns }))).TagDescriptions!;
    expect(d.map((x) => [x.ResourceArn, x.Tags?.map((t) => t.Key)])).toEqual([
      [s.lbArn, ["kiln:service", "team"]],
      [s.blueArn, ["kiln:service"]],
      [s.listenerArn, ["kiln:service", "team"]],
    ]);
    await expect(w.client.send(new DescribeTagsCommand({ ResourceArns: [`${s.blueArn}0`] }))).rejects.toMatchObject({
      name: "TargetGroupNotFoundException",
    });
    await expect(
      w.client.send(
        new AddTagsCommand({
          ResourceArns: [s.lbArn],
          Tags: Array.from({ length: 51 }, (_, i) => ({ Key: `k${i}`, Value: "v" })),
        }),
      ),
    ).rejects.toMatchObject({ name: "TooManyTagsException" });
  });
});

describe("ELBv2 target health", () => {
  let w: World | undefined;
  afterEach(async () => {
    await w?.cloud.stop();
    w = undefined;
  });

  it("registers only running instances and reports targets that are not registered", async () => {
    w = await world();
    const s = await stack(w);
    await expect(
      w.client.send(new RegisterTargetsCommand({ TargetGroupArn: s.blueArn, Targets: [{ Id: "i-0000000000000dead" }] })),
    ).rejects.toMatchObject({ name: "InvalidTargetException" });
    const [pending] = w.ec2.launch({ imageId: w.ec2.baseImages()[0]!.imageId, tags: {}, count: 1 });
    await expect(
      w.client.send(new RegisterTargetsCommand({ TargetGroupArn: s.blueArn, Targets: [{ Id: pending!.id }] })),
    ).rejects.toMatchObject({
      name: "InvalidTargetException",
      message: `The following targets are not in a running state and cannot be registered: '${pending!.id}'`,
    });
    expect(await stateOf(w, s.blueArn, pending!.id)).toBe("unused/Target.NotRegistered");
    await expect(health(w, s.blueArn, "i-0000000000000dead")).rejects.toMatchObject({ name: "InvalidTargetException" });
  });

  it("walks initial → healthy → unhealthy → healthy with the group's interval and thresholds", async () => {
    w = await world();
    const s = await stack(w, { interval: 30 });
    const [i] = await instances(w, 1);
    const t0 = w.cloud.clock.now();
    await w.client.send(new RegisterTargetsCommand({ TargetGroupArn: s.blueArn, Targets: [{ Id: i!.id }] }));
    const at = async (sec: number) => {
      await w!.cloud.clock.sleep(t0 + sec * 1000 - w!.cloud.clock.now());
      return stateOf(w!, s.blueArn, i!.id);
    };
    expect(await at(0)).toBe("initial/Elb.RegistrationInProgress");
    expect(await at(9)).toBe("initial/Elb.RegistrationInProgress");
    // First check at elbv2.firstCheckMs (10 s); one pass makes an ALB target healthy (reference §4.2).
    expect(await at(11)).toBe("healthy");
    rmSync(join(i!.rootDir, APP_PATHS.inService)); // service-out: /health answers 503
    expect(await at(41)).toBe("healthy"); // 1 failure (checks at 10, 40, 70 …)
    expect(await at(71)).toBe("unhealthy/Target.ResponseCodeMismatch"); // UnhealthyThresholdCount = 2
    expect((await health(w, s.blueArn, i!.id))[0]!.TargetHealth!.Description).toBe(
      "Health checks failed with these codes: [503]",
    );
    writeAppFile(i!, APP_PATHS.inService, "");
    expect(await at(191)).toBe("unhealthy/Target.ResponseCodeMismatch"); // 4 passes (100 … 190)
    expect(await at(221)).toBe("healthy"); // HealthyThresholdCount = 5
  });

  it.each([
    ["a group no listener uses", "unused/Target.NotInUse"],
    ["a stopped instance", "unused/Target.InvalidState"],
    ["a slow app (latency above the timeout)", "unhealthy/Target.Timeout"],
    ["a health-flap fault", "unhealthy/Target.ResponseCodeMismatch"],
    ["a disabled matcher code", "unhealthy/Target.ResponseCodeMismatch"],
  ])("reports %s as %s", async (situation, expected) => {
    w = await world();
    const s = await stack(w, { interval: 10 });
    const [i] = await instances(w, 1);
    let tg = s.blueArn;
    if (situation === "a group no listener uses") tg = s.greenArn;
    if (situation === "a slow app (latency above the timeout)") {
      w.cloud.faults.add({ kind: "bad-commit", commit: "abc1234", mode: "slow", latencyMs: 9_000 });
      await w.client.send(new ModifyTargetGroupCommand({ TargetGroupArn: tg, HealthCheckPath: "/" }));
    }
    if (situation === "a health-flap fault")
      w.cloud.faults.add({ kind: "health-flap", targetGroup: "web-blue", periodMs: 60_000 });
    if (situation === "a disabled matcher code")
      await w.client.send(new ModifyTargetGroupCommand({ TargetGroupArn: tg, Matcher: { HttpCode: "204" } }));
    w.elb.registerTargets(tg, [{ id: i!.id }]);
    if (situation === "a stopped instance")
      await new EC2Client(w.cloud.clientConfig()).send(new StopInstancesCommand({ InstanceIds: [i!.id] }));
    // Reached within five minutes of clock time (a flapping target goes back and forth).
    await until(w.cloud.clock, async () => (await stateOf(w!, tg, i!.id)) === expected, 300_000);
  });

  it("drains a deregistered target for the deregistration delay, then forgets it", async () => {
    w = await world();
    const s = await stack(w, { delay: 120 });
    const [a, b] = await instances(w, 2);
    w.elb.registerTargets(s.blueArn, [{ id: a!.id }, { id: b!.id }]);
    await w.cloud.clock.sleep(15_000);
    expect((await health(w, s.blueArn)).map((h) => h.TargetHealth!.State)).toEqual(["healthy", "healthy"]);

    const t0 = w.cloud.clock.now();
    let drainedAt = 0;
    const drained = w.elb.deregisterTargets(s.blueArn, [{ id: a!.id }]).then(() => {
      drainedAt = w!.cloud.clock.now();
    });
    expect(await stateOf(w, s.blueArn, a!.id)).toBe("draining/Target.DeregistrationInProgress");
    // No new request reaches a draining target.
    for (let n = 0; n < 20; n++) expect((await w.elb.request("web", "/")).targetId).toBe(b!.id);
    await w.cloud.clock.sleep(119_000 - (w.cloud.clock.now() - t0));
    expect(await stateOf(w, s.blueArn, a!.id)).toBe("draining/Target.DeregistrationInProgress");
    await drained;
    expect(drainedAt - t0).toBe(120_000);
    expect((await health(w, s.blueArn)).map((h) => h.Target!.Id)).toEqual([b!.id]);
    expect(await stateOf(w, s.blueArn, a!.id)).toBe("unused/Target.NotRegistered");

    // The API path drains the same way; an instance that starts terminating drains on its own.
    await w.client.send(new DeregisterTargetsCommand({ TargetGroupArn: s.blueArn, Targets: [{ Id: b!.id }] }));
    expect(await stateOf(w, s.blueArn, b!.id)).toBe("draining/Target.DeregistrationInProgress");
    expect(await w.elb.request("web", "/")).toMatchObject({ status: 503, source: "elb" });
    const [c] = await instances(w, 1);
    w.elb.registerTargets(s.blueArn, [{ id: c!.id }]);
    await w.cloud.clock.sleep(15_000);
    w.ec2.terminate([c!.id]);
    expect(await stateOf(w, s.blueArn, c!.id)).toBe("draining/Target.DeregistrationInProgress");
  });

  it("splits traffic by weight, health-checks a weight-0 group, and fails open when all targets are unhealthy", async () => {
    w = await world();
    const s = await stack(w, { interval: 10 });
    const [blue1, blue2, green1] = await instances(w, 3);
    w.elb.registerTargets(s.blueArn, [{ id: blue1!.id }, { id: blue2!.id }]);
    w.elb.registerTargets(s.greenArn, [{ id: green1!.id }]);
    expect(await stateOf(w, s.greenArn, green1!.id)).toBe("unused/Target.NotInUse");
    const setWeights = (blue: number, green: number) =>
      w!.client.send(
        new ModifyListenerCommand({
          ListenerArn: s.listenerArn,
          DefaultActions: [
            {
              Type: "forward",
              ForwardConfig: {
                TargetGroups: [
                  { TargetGroupArn: s.blueArn, Weight: blue },
                  { TargetGroupArn: s.greenArn, Weight: green },
                ],
              },
            },
          ],
        }),
      );
    await setWeights(100, 0);
    expect(await stateOf(w, s.greenArn, green1!.id)).toBe("initial/Elb.RegistrationInProgress");
    await w.cloud.clock.sleep(15_000);
    expect(await stateOf(w, s.greenArn, green1!.id)).toBe("healthy");

    const count = async (n: number) => {
      const hits: Record<string, number> = {};
      for (let k = 0; k < n; k++) {
        const r = await w!.elb.request("web", "/");
        expect(r.status).toBe(200);
        hits[r.targetId!] = (hits[r.targetId!] ?? 0) + 1;
      }
      return hits;
    };
    expect(await count(100)).toEqual({ [blue1!.id]: 50, [blue2!.id]: 50 }); // round robin, green at weight 0 gets nothing
    await setWeights(80, 20);
    const split = await count(1000);
    expect(split[green1!.id]! / 1000).toBeGreaterThan(0.15);
    expect(split[green1!.id]! / 1000).toBeLessThan(0.25);
    await setWeights(0, 100);
    expect(await count(10)).toEqual({ [green1!.id]: 10 });

    // Fail-open: every green target unhealthy → the ALB still routes to them (reference §4.2).
    rmSync(join(green1!.rootDir, APP_PATHS.inService));
    await w.cloud.clock.sleep(30_000);
    expect(await stateOf(w, s.greenArn, green1!.id)).toBe("unhealthy/Target.ResponseCodeMismatch");
    expect(await count(3)).toEqual({ [green1!.id]: 3 });
  });

  it("publishes the ALB metrics with AWS's dimensions", async () => {
    w = await world();
    const s = await stack(w, { interval: 10 });
    const [i] = await instances(w, 1);
    w.elb.registerTargets(s.blueArn, [{ id: i!.id }]);
    await w.cloud.clock.sleep(15_000);
    const bad = w.cloud.faults.add({ kind: "bad-commit", commit: "abc1234", mode: "500" });
    for (let n = 0; n < 3; n++) expect((await w.elb.request("web", "/")).status).toBe(500);
    w.cloud.faults.remove(bad);
    for (let n = 0; n < 2; n++) expect((await w.elb.request("web", "/")).status).toBe(200);
    await w.client.send(new DeregisterTargetsCommand({ TargetGroupArn: s.blueArn, Targets: [{ Id: i!.id }] }));
    await w.elb.request("web", "/"); // no target: 503 from the load balancer itself
    await w.cloud.clock.sleep(60_000);
    const lbDim = `app/web/${s.lbArn.split("/").pop()}`;
    const tgDim = `targetgroup/web-blue/${s.blueArn.split("/").pop()}`;
    const sum = (name: string, dims: Record<string, string>) => {
      const m = w!.cw.store.get(
        "AWS/ApplicationELB",
        name,
        Object.entries(dims).map(([Name, Value]) => ({ Name, Value })),
      );
      return [...(m?.buckets.values() ?? [])].reduce((a, b) => a + b.sum, 0);
    };
    expect(sum("RequestCount", { LoadBalancer: lbDim })).toBe(5);
    expect(sum("RequestCount", { LoadBalancer: lbDim, TargetGroup: tgDim })).toBe(5);
    expect(sum("HTTPCode_Target_5XX_Count", { LoadBalancer: lbDim, TargetGroup: tgDim })).toBe(3);
    expect(sum("HTTPCode_Target_2XX_Count", { LoadBalancer: lbDim })).toBe(2);
    expect(sum("HTTPCode_ELB_5XX_Count", { LoadBalancer: lbDim })).toBe(1);
    expect(sum("HTTPCode_ELB_503_Count", { LoadBalancer: lbDim })).toBe(1);
    expect(
      w.cw.store.get("AWS/ApplicationELB", "HealthyHostCount", [
        { Name: "LoadBalancer", Value: lbDim },
        { Name: "TargetGroup", Value: tgDim },
      ]),
    ).toBeDefined();
    expect(
      w.cw.store.get("AWS/ApplicationELB", "TargetResponseTime", [{ Name: "LoadBalancer", Value: lbDim }])?.buckets.size,
    ).toBeGreaterThan(0);
  });
});
