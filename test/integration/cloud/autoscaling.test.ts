/**
 * Simulated EC2 Auto Scaling through the real @aws-sdk/client-auto-scaling, in virtual time, with
 * small EC2 and ELBv2 fakes implementing the in-process contracts (local/cloud/contracts.ts).
 */
import {
  AttachLoadBalancerTargetGroupsCommand,
  AttachTrafficSourcesCommand,
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  CreateAutoScalingGroupCommand,
  type CreateAutoScalingGroupCommandInput,
  CreateOrUpdateTagsCommand,
  DeleteAutoScalingGroupCommand,
  DeleteLifecycleHookCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  DescribeLifecycleHookTypesCommand,
  DescribeLoadBalancerTargetGroupsCommand,
  DescribeScalingActivitiesCommand,
  DescribeScalingProcessTypesCommand,
  DescribeTagsCommand,
  DescribeTrafficSourcesCommand,
  DetachLoadBalancerTargetGroupsCommand,
  DetachTrafficSourcesCommand,
  EnterStandbyCommand,
  ExitStandbyCommand,
  type Instance,
  PutLifecycleHookCommand,
  RecordLifecycleActionHeartbeatCommand,
  ResumeProcessesCommand,
  SetDesiredCapacityCommand,
  SetInstanceHealthCommand,
  SetInstanceProtectionCommand,
  SuspendProcessesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  UpdateAutoScalingGroupCommand,
} from "@aws-sdk/client-auto-scaling";
import { afterEach, describe, expect, it } from "vitest";
import { Cloud, type CloudEvent } from "../../../local/cloud/cloud.ts";
import type {
  Ec2Api,
  ElbApi,
  InstanceStateName,
  LaunchRequest,
  SimInstance,
  TargetHealthState,
} from "../../../local/cloud/contracts.ts";
import type { FaultRule } from "../../../local/cloud/faults.ts";
import { AwsError } from "../../../local/cloud/protocol/errors.ts";
import { registerAutoScaling } from "../../../local/cloud/services/autoscaling/index.ts";

const LT_ID = "lt-0123456789abcdef0";
const TG_BLUE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/0123456789abcdef";
const TG_GREEN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/fedcba9876543210";
const BOOT_MS = 20_000;
const SHUTDOWN_MS = 5_000;

/** EC2 as Auto Scaling sees it: instances boot after BOOT_MS, shut down in SHUTDOWN_MS; template "web" has 3 versions, default 2. */
class FakeEc2 implements Ec2Api {
  readonly all = new Map<string, SimInstance>();
  readonly launches: LaunchRequest[] = [];
  readonly transitions: { at: number; id: string; to: InstanceStateName }[] = [];
  /** How many of the next launches fail to boot (EC2 terminates them instead of running them). */
  failBoots = 0;
  constructor(private readonly cloud: Cloud) {}

  snapshot() {
    return { instances: this.instances().map((i) => ({ id: i.id, state: i.state })) };
  }
  instance(id: string) {
    return this.all.get(id);
  }
  instances() {
    return [...this.all.values()];
  }
  launch(req: LaunchRequest): SimInstance[] {
    this.launches.push(req);
    const subnet = this.subnets().find((s) => s.id === req.subnetId) ?? this.subnets()[0]!;
    const inst: SimInstance = {
      id: `i-${this.cloud.hex(17)}`,
      state: "pending",
      imageId: `ami-v${req.launchTemplate?.version ?? 0}`,
      instanceType: req.instanceType ?? "t3.micro",
      privateIp: "10.0.0.10",
      subnetId: subnet.id,
      az: subnet.az,
      tags: new Map(Object.entries(req.tags)),
      launchTime: this.cloud.clock.date(),
      rootDir: "/nonexistent",
    };
    this.all.set(inst.id, inst);
    const fail = this.failBoots > 0;
    if (fail) this.failBoots--;
    this.cloud.clock.setTimeout(() => this.set(inst, fail ? "terminated" : "running"), BOOT_MS);
    return [inst];
  }
  terminate(ids: string[]): void {
    for (const id of ids) {
      const i = this.all.get(id);
      if (!i || i.state === "terminated" || i.state === "shutting-down") continue;
      this.set(i, "shutting-down");
      this.cloud.clock.setTimeout(() => this.set(i, "terminated"), SHUTDOWN_MS);
    }
  }
  set(i: SimInstance, to: InstanceStateName): void {
    const from = i.state;
    i.state = to;
    this.transitions.push({ at: this.cloud.clock.now(), id: i.id, to });
    this.cloud.bus.emit("instance-state", { instance: i, from, to });
  }
  resolveLaunchTemplate(spec: { id?: string; name?: string; version?: string }) {
    if (spec.id && spec.name)
      throw new AwsError(
        "InvalidParameterCombination",
        "Specify either the launch template ID or the launch template name, not both.",
      );
    if ((spec.id && spec.id !== LT_ID) || (spec.name && spec.name !== "web")) {
      throw new AwsError(
        "InvalidLaunchTemplateId.NotFound",
        `The specified launch template, with template ID ${spec.id ?? spec.name}, does not exist.`,
      );
    }
    const v = spec.version === "$Latest" ? 3 : spec.version === "$Default" || !spec.version ? 2 : Number(spec.version);
    if (!(v >= 1 && v <= 3))
      throw new AwsError("InvalidLaunchTemplateId.VersionNotFound", `Could not find launch template version ${spec.version}`);
    return { id: LT_ID, name: "web", version: v, imageId: `ami-v${v}`, instanceType: "t3.micro" };
  }
  subnets() {
    return [
      { id: "subnet-a", az: "us-east-1a", vpcId: "vpc-1", cidr: "10.0.0.0/24" },
      { id: "subnet-b", az: "us-east-1b", vpcId: "vpc-1", cidr: "10.0.1.0/24" },
      { id: "subnet-c", az: "us-east-1c", vpcId: "vpc-1", cidr: "10.0.2.0/24" },
    ];
  }
}

/** ELBv2 as Auto Scaling sees it: targets turn healthy HEALTHY_MS after registration and drain for the group's delay. */
class FakeElb implements ElbApi {
  readonly groups = new Map<string, { delayMs: number; targets: Map<string, TargetHealthState> }>();
  readonly log: { at: number; tg: string; id: string; what: "register" | "deregister" | "drained" }[] = [];
  static readonly HEALTHY_MS = 15_000;
  constructor(private readonly cloud: Cloud) {}

  addTargetGroup(arn: string, delayMs: number): void {
    this.groups.set(arn, { delayMs, targets: new Map() });
  }
  snapshot() {
    return { targetGroups: [...this.groups.keys()] };
  }
  hasTargetGroup(arn: string) {
    return this.groups.has(arn);
  }
  registerTargets(arn: string, targets: { id: string }[]): void {
    const g = this.groups.get(arn);
    if (!g) throw new AwsError("TargetGroupNotFound", "One or more target groups not found");
    for (const t of targets) {
      if (g.targets.get(t.id) && g.targets.get(t.id) !== "draining") continue;
      g.targets.set(t.id, "initial");
      this.log.push({ at: this.cloud.clock.now(), tg: arn, id: t.id, what: "register" });
      this.cloud.clock.setTimeout(() => {
        if (g.targets.get(t.id) === "initial") g.targets.set(t.id, "healthy");
      }, FakeElb.HEALTHY_MS);
    }
  }
  async deregisterTargets(arn: string, targets: { id: string }[]): Promise<void> {
    const g = this.groups.get(arn);
    if (!g) return;
    await Promise.all(
      targets.map(async (t) => {
        if (!g.targets.has(t.id)) return;
        g.targets.set(t.id, "draining");
        this.log.push({ at: this.cloud.clock.now(), tg: arn, id: t.id, what: "deregister" });
        await this.cloud.clock.sleep(g.delayMs);
        if (g.targets.get(t.id) === "draining") g.targets.delete(t.id);
        this.log.push({ at: this.cloud.clock.now(), tg: arn, id: t.id, what: "drained" });
      }),
    );
  }
  targetHealth(arn: string, id: string) {
    return this.groups.get(arn)?.targets.get(id);
  }
  setHealth(arn: string, id: string, state: TargetHealthState): void {
    this.groups.get(arn)?.targets.set(id, state);
  }
}

interface World {
  cloud: Cloud;
  asg: AutoScalingClient;
  ec2: FakeEc2;
  elb: FakeElb;
  events: CloudEvent[];
}

let world: World | undefined;

async function setup(opts: { http?: boolean; faults?: FaultRule[] } = {}): Promise<World> {
  const cloud = new Cloud({ seed: 7, ...(opts.faults ? { faults: opts.faults } : {}) });
  const ec2 = new FakeEc2(cloud);
  const elb = new FakeElb(cloud);
  cloud.register("ec2", ec2);
  cloud.register("elasticloadbalancing", elb);
  elb.addTargetGroup(TG_BLUE, 120_000);
  elb.addTargetGroup(TG_GREEN, 30_000);
  registerAutoScaling(cloud);
  const events: CloudEvent[] = [];
  cloud.bus.on("event", (e: CloudEvent) => events.push(e));
  await cloud.start({ port: opts.http ? 0 : false });
  world = { cloud, asg: new AutoScalingClient(cloud.clientConfig({ http: opts.http })), ec2, elb, events };
  return world;
}

afterEach(async () => {
  world?.asg.destroy();
  await world?.cloud.stop();
  world = undefined;
});

const baseGroup = (over: Partial<CreateAutoScalingGroupCommandInput> = {}): CreateAutoScalingGroupCommandInput => ({
  AutoScalingGroupName: "web",
  LaunchTemplate: { LaunchTemplateId: LT_ID, Version: "$Latest" },
  MinSize: 0,
  MaxSize: 4,
  DesiredCapacity: 2,
  VPCZoneIdentifier: "subnet-a,subnet-b",
  ...over,
});

async function describe1(w: World, name = "web") {
  const r = await w.asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }));
  return r.AutoScalingGroups?.[0];
}

async function instances(w: World, name = "web"): Promise<Instance[]> {
  return (await describe1(w, name))?.Instances ?? [];
}

/** Polls `probe` every `stepMs` of virtual time until it returns a truthy value; fails after `withinMs`. */
async function until<T>(
  w: World,
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  withinMs = 600_000,
  stepMs = 5_000,
): Promise<T> {
  const deadline = w.cloud.clock.now() + withinMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (w.cloud.clock.now() >= deadline) throw new Error(`timed out after ${withinMs} ms of virtual time waiting for ${what}`);
    await w.cloud.clock.sleep(stepMs);
  }
}

const states = (list: Instance[]) => list.map((i) => i.LifecycleState).sort();
const allInService = (n: number) => async () => {
  const list = await instances(world!);
  return list.length === n && list.every((i) => i.LifecycleState === "InService") ? list : undefined;
};

describe("Auto Scaling API shapes", () => {
  it.each([false, true])("creates and describes a group as AWS does (http=%s)", async (overHttp) => {
    const w = await setup({ http: overHttp });
    await w.asg.send(
      new CreateAutoScalingGroupCommand(
        baseGroup({
          MinSize: 1,
          DesiredCapacity: undefined,
          LaunchTemplate: { LaunchTemplateName: "web" },
          HealthCheckType: "ELB",
          TargetGroupARNs: [TG_BLUE],
          Tags: [
            { Key: "kiln:service", Value: "web", PropagateAtLaunch: true },
            { Key: "team", Value: "sre", PropagateAtLaunch: false },
          ],
        }),
      ),
    );
    const g = await describe1(w);
    expect(g).toMatchObject({
      AutoScalingGroupName: "web",
      MinSize: 1,
      MaxSize: 4,
      DesiredCapacity: 1, // defaults to MinSize
      DefaultCooldown: 300,
      HealthCheckType: "ELB",
      HealthCheckGracePeriod: 0, // the API default, not the console's 300
      AvailabilityZones: ["us-east-1a", "us-east-1b"],
      VPCZoneIdentifier: "subnet-a,subnet-b",
      TargetGroupARNs: [TG_BLUE],
      TrafficSources: [{ Identifier: TG_BLUE, Type: "elbv2" }],
      TerminationPolicies: ["Default"],
      NewInstancesProtectedFromScaleIn: false,
      SuspendedProcesses: [],
      LoadBalancerNames: [],
      Tags: [
        { ResourceId: "web", ResourceType: "auto-scaling-group", Key: "kiln:service", Value: "web", PropagateAtLaunch: true },
        { ResourceId: "web", ResourceType: "auto-scaling-group", Key: "team", Value: "sre", PropagateAtLaunch: false },
      ],
    });
    // Version omitted at create is not echoed back; the template id is filled in.
    expect(g?.LaunchTemplate).toEqual({ LaunchTemplateId: LT_ID, LaunchTemplateName: "web" });
    expect(g?.AutoScalingGroupARN).toMatch(
      /^arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:[0-9a-f-]{36}:autoScalingGroupName\/web$/,
    );
    expect(g?.CreatedTime).toEqual(w.cloud.clock.date());
    expect(g?.Status).toBeUndefined();
  });

  it.each<[string, Partial<CreateAutoScalingGroupCommandInput>, RegExp]>([
    ["desired above max", { DesiredCapacity: 5 }, /^Desired capacity:5 must be between the specified min size:0 and max size:4$/],
    [
      "min above max",
      { MinSize: 3, MaxSize: 2, DesiredCapacity: 2 },
      /^Max bound, 2, must be greater than or equal to min bound, 3$/,
    ],
    [
      "no launch source",
      { LaunchTemplate: undefined },
      /must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy/,
    ],
    [
      "template id and name",
      { LaunchTemplate: { LaunchTemplateId: LT_ID, LaunchTemplateName: "web" } },
      /either launchTemplateId or LaunchTemplateName/,
    ],
    [
      "unknown template",
      { LaunchTemplate: { LaunchTemplateId: "lt-0000000000000000f" } },
      /^You must use a valid fully-formed launch template\. .*lt-0000000000000000f/,
    ],
    [
      "unknown template version",
      { LaunchTemplate: { LaunchTemplateId: LT_ID, Version: "9" } },
      /valid fully-formed launch template/,
    ],
    ["unknown subnet", { VPCZoneIdentifier: "subnet-a,subnet-zz" }, /^The subnet ID 'subnet-zz' does not exist$/],
    ["no subnet nor AZ", { VPCZoneIdentifier: undefined }, /^At least one Availability Zone or VPC Subnet is required\.$/],
    ["bad health check type", { HealthCheckType: "HTTP" }, /HealthCheckType/],
    ["unknown target group", { TargetGroupARNs: [`${TG_BLUE}x`] }, /^Provided Target Groups may not be valid/],
    [
      "hook without transition",
      { LifecycleHookSpecificationList: [{ LifecycleHookName: "h", LifecycleTransition: undefined as unknown as string }] },
      /LifecycleTransition/,
    ],
  ])("rejects a create with %s (ValidationError)", async (_case, over, message) => {
    const w = await setup();
    const err = await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup(over))).catch((e: Error) => e);
    expect(err).toMatchObject({ name: "ValidationError" });
    expect((err as Error).message).toMatch(message);
    expect(await describe1(w)).toBeUndefined();
  });

  it("answers AlreadyExistsFault for a second create with the same name", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup()));
    await expect(w.asg.send(new CreateAutoScalingGroupCommand(baseGroup()))).rejects.toMatchObject({
      name: "AlreadyExistsFault",
      message: "AutoScalingGroup by this name already exists - A group with the name web already exists",
    });
  });

  it.each<[string, (w: World) => Promise<unknown>]>([
    [
      "UpdateAutoScalingGroup",
      (w) => w.asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: "nope", MaxSize: 3 })),
    ],
    [
      "SetDesiredCapacity",
      (w) => w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "nope", DesiredCapacity: 1 })),
    ],
    ["DeleteAutoScalingGroup", (w) => w.asg.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: "nope" }))],
    [
      "PutLifecycleHook",
      (w) =>
        w.asg.send(
          new PutLifecycleHookCommand({
            AutoScalingGroupName: "nope",
            LifecycleHookName: "h",
            LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
          }),
        ),
    ],
    ["DescribeLifecycleHooks", (w) => w.asg.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: "nope" }))],
    ["SuspendProcesses", (w) => w.asg.send(new SuspendProcessesCommand({ AutoScalingGroupName: "nope" }))],
    [
      "AttachTrafficSources",
      (w) =>
        w.asg.send(
          new AttachTrafficSourcesCommand({
            AutoScalingGroupName: "nope",
            TrafficSources: [{ Identifier: TG_BLUE, Type: "elbv2" }],
          }),
        ),
    ],
    [
      "CreateOrUpdateTags",
      (w) =>
        w.asg.send(
          new CreateOrUpdateTagsCommand({
            Tags: [{ ResourceId: "nope", ResourceType: "auto-scaling-group", Key: "k", Value: "v" }],
          }),
        ),
    ],
  ])("%s on an unknown group is a ValidationError", async (_op, call) => {
    const w = await setup();
    const err = await call(w).catch((e: Error) => e);
    expect(err).toMatchObject({
      name: "ValidationError",
      message: "AutoScalingGroup name not found - AutoScalingGroup: nope not found",
    });
  });

  it("DescribeAutoScalingGroups omits unknown names, paginates, filters by tag", async () => {
    const w = await setup();
    for (const n of ["a", "b", "c", "d", "e"]) {
      await w.asg.send(
        new CreateAutoScalingGroupCommand(
          baseGroup({ AutoScalingGroupName: n, DesiredCapacity: 0, Tags: [{ Key: "env", Value: n < "c" ? "prod" : "dev" }] }),
        ),
      );
    }
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await w.asg.send(new DescribeAutoScalingGroupsCommand({ MaxRecords: 2, NextToken: token }));
      names.push(...(r.AutoScalingGroups ?? []).map((g) => g.AutoScalingGroupName!));
      token = r.NextToken;
      pages++;
    } while (token && pages < 10);
    expect(names).toEqual(["a", "b", "c", "d", "e"]);
    expect(pages).toBe(3);
    const some = await w.asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["b", "zz"] }));
    expect(some.AutoScalingGroups?.map((g) => g.AutoScalingGroupName)).toEqual(["b"]);
    const prod = await w.asg.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: "tag:env", Values: ["prod"] }] }));
    expect(prod.AutoScalingGroups?.map((g) => g.AutoScalingGroupName)).toEqual(["a", "b"]);
    const byValue = await w.asg.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: "tag-value", Values: ["dev"] }] }));
    expect(byValue.AutoScalingGroups).toHaveLength(3);
    await expect(w.asg.send(new DescribeAutoScalingGroupsCommand({ NextToken: "garbage" }))).rejects.toMatchObject({
      name: "InvalidNextToken",
    });
    const many = Array.from({ length: 51 }, (_, i) => `g${i}`);
    await expect(w.asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: many }))).rejects.toMatchObject({
      name: "ValidationError",
      message: "The number of group names that may be passed in is limited to 50.",
    });
  });

  it("UpdateAutoScalingGroup and SetDesiredCapacity enforce and adjust sizes", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 1 })));
    await expect(
      w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 5 })),
    ).rejects.toMatchObject({
      name: "ValidationError",
      message: "New SetDesiredCapacity value 5 is above max value 4 for the AutoScalingGroup.",
    });
    // A new minimum above the current desired raises it.
    await w.asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: "web", MinSize: 2 }));
    expect((await describe1(w))?.DesiredCapacity).toBe(2);
    await expect(
      w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 1 })),
    ).rejects.toMatchObject({
      message: "New SetDesiredCapacity value 1 is below min value 2 for the AutoScalingGroup.",
    });
    // A new maximum below it lowers it.
    await w.asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: "web", MinSize: 0, MaxSize: 1 }));
    expect((await describe1(w))?.DesiredCapacity).toBe(1);
    await expect(
      w.asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: "web", DesiredCapacity: 3 })),
    ).rejects.toMatchObject({
      name: "ValidationError",
      message: "Desired capacity:3 must be between the specified min size:0 and max size:1",
    });
    await w.asg.send(
      new UpdateAutoScalingGroupCommand({
        AutoScalingGroupName: "web",
        LaunchTemplate: { LaunchTemplateId: LT_ID, Version: "1" },
        HealthCheckType: "ELB",
        HealthCheckGracePeriod: 60,
      }),
    );
    expect(await describe1(w)).toMatchObject({
      LaunchTemplate: { LaunchTemplateId: LT_ID, LaunchTemplateName: "web", Version: "1" },
      HealthCheckType: "ELB",
      HealthCheckGracePeriod: 60,
    });
    // HonorCooldown refuses while the launch is in progress.
    await w.cloud.clock.sleep(1);
    await expect(
      w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 0, HonorCooldown: true })),
    ).rejects.toMatchObject({
      name: "ScalingActivityInProgressFault",
    });
  });

  it("creates, updates, filters and deletes tags", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 0 })));
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ AutoScalingGroupName: "api", DesiredCapacity: 0 })));
    await w.asg.send(
      new CreateOrUpdateTagsCommand({
        Tags: [
          { ResourceId: "web", ResourceType: "auto-scaling-group", Key: "color", Value: "blue", PropagateAtLaunch: true },
          { ResourceId: "api", ResourceType: "auto-scaling-group", Key: "color", Value: "green", PropagateAtLaunch: false },
        ],
      }),
    );
    await w.asg.send(
      new CreateOrUpdateTagsCommand({
        Tags: [{ ResourceId: "web", ResourceType: "auto-scaling-group", Key: "color", Value: "green", PropagateAtLaunch: true }],
      }),
    );
    const all = await w.asg.send(new DescribeTagsCommand({}));
    expect(all.Tags).toEqual([
      { ResourceId: "api", ResourceType: "auto-scaling-group", Key: "color", Value: "green", PropagateAtLaunch: false },
      { ResourceId: "web", ResourceType: "auto-scaling-group", Key: "color", Value: "green", PropagateAtLaunch: true },
    ]);
    const webOnly = await w.asg.send(new DescribeTagsCommand({ Filters: [{ Name: "auto-scaling-group", Values: ["web"] }] }));
    expect(webOnly.Tags?.map((t) => t.ResourceId)).toEqual(["web"]);
    const propagated = await w.asg.send(
      new DescribeTagsCommand({ Filters: [{ Name: "propagate-at-launch", Values: ["true"] }] }),
    );
    expect(propagated.Tags?.map((t) => t.ResourceId)).toEqual(["web"]);
    const paged = await w.asg.send(new DescribeTagsCommand({ MaxRecords: 1 }));
    expect(paged.Tags).toHaveLength(1);
    expect(paged.NextToken).toBeDefined();
    await w.asg.send(new DeleteTagsCommand({ Tags: [{ ResourceId: "web", ResourceType: "auto-scaling-group", Key: "color" }] }));
    expect((await describe1(w))?.Tags).toEqual([]);
  });

  it("lists process and hook types and rejects unknown process names", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 0 })));
    const types = await w.asg.send(new DescribeLifecycleHookTypesCommand({}));
    expect(types.LifecycleHookTypes).toEqual(["autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"]);
    const procs = await w.asg.send(new DescribeScalingProcessTypesCommand({}));
    expect(procs.Processes?.map((p) => p.ProcessName)).toContain("AddToLoadBalancer");
    await expect(
      w.asg.send(new SuspendProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: ["Launch", "Nap"] })),
    ).rejects.toMatchObject({ name: "ValidationError" });
    await w.asg.send(new SuspendProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: ["Launch", "AZRebalance"] }));
    const g = await describe1(w);
    expect(g?.SuspendedProcesses?.map((p) => p.ProcessName)).toEqual(["Launch", "AZRebalance"]);
    expect(g?.SuspendedProcesses?.[0]?.SuspensionReason).toBe("User suspended at 2026-01-05T09:00:00Z");
    // No names: every process.
    await w.asg.send(new ResumeProcessesCommand({ AutoScalingGroupName: "web" }));
    await w.asg.send(new SuspendProcessesCommand({ AutoScalingGroupName: "web" }));
    expect((await describe1(w))?.SuspendedProcesses).toHaveLength(9);
  });
});

describe("Auto Scaling API shapes (more)", () => {
  it("throttles through the api fault with the awsQuery Throttling code", async () => {
    const w = await setup();
    const once = new AutoScalingClient({ ...w.cloud.clientConfig(), maxAttempts: 1 });
    w.cloud.faults.add({ kind: "api", service: "autoscaling", action: "DescribeAutoScalingGroups", times: 1 });
    await expect(once.send(new DescribeAutoScalingGroupsCommand({}))).rejects.toMatchObject({
      name: "Throttling",
      message: "Rate exceeded",
    });
    await expect(once.send(new DescribeAutoScalingGroupsCommand({}))).resolves.toMatchObject({ AutoScalingGroups: [] });
    once.destroy();
  });

  it("launches a MixedInstancesPolicy group from its template with the first override's type", async () => {
    const w = await setup();
    await w.asg.send(
      new CreateAutoScalingGroupCommand(
        baseGroup({
          LaunchTemplate: undefined,
          DesiredCapacity: 1,
          MixedInstancesPolicy: {
            LaunchTemplate: {
              LaunchTemplateSpecification: { LaunchTemplateName: "web", Version: "1" },
              Overrides: [{ InstanceType: "t3.small" }, { InstanceType: "t3a.small" }],
            },
            InstancesDistribution: { OnDemandBaseCapacity: 0, OnDemandPercentageAboveBaseCapacity: 100 },
          },
        }),
      ),
    );
    const g = await describe1(w);
    expect(g?.LaunchTemplate).toBeUndefined();
    expect(g?.MixedInstancesPolicy).toMatchObject({
      LaunchTemplate: {
        LaunchTemplateSpecification: { LaunchTemplateId: LT_ID, LaunchTemplateName: "web", Version: "1" },
        Overrides: [{ InstanceType: "t3.small" }, { InstanceType: "t3a.small" }],
      },
      InstancesDistribution: { OnDemandBaseCapacity: 0, OnDemandPercentageAboveBaseCapacity: 100 },
    });
    const [i] = await until(w, "InService", allInService(1));
    expect(i).toMatchObject({ InstanceType: "t3.small", LaunchTemplate: { LaunchTemplateId: LT_ID, Version: "1" } });
    expect(w.ec2.launches[0]).toMatchObject({ instanceType: "t3.small", launchTemplate: { id: LT_ID, version: 1 } });
  });

  it("DescribeAutoScalingInstances pages across groups", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ AutoScalingGroupName: "a", DesiredCapacity: 2 })));
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ AutoScalingGroupName: "b", DesiredCapacity: 1 })));
    await w.cloud.clock.sleep(1);
    const first = await w.asg.send(new DescribeAutoScalingInstancesCommand({ MaxRecords: 2 }));
    expect(first.AutoScalingInstances?.map((i) => i.AutoScalingGroupName)).toEqual(["a", "a"]);
    const second = await w.asg.send(new DescribeAutoScalingInstancesCommand({ MaxRecords: 2, NextToken: first.NextToken }));
    expect(second.AutoScalingInstances?.map((i) => [i.AutoScalingGroupName, i.LifecycleState, i.HealthStatus])).toEqual([
      ["b", "Pending", "HEALTHY"],
    ]);
    expect(second.NextToken).toBeUndefined();
  });
});

describe("Auto Scaling capacity over time", () => {
  it("launches toward desired capacity, balanced across AZs, registers with target groups before InService", async () => {
    const w = await setup();
    const t0 = w.cloud.clock.now();
    await w.asg.send(
      new CreateAutoScalingGroupCommand(
        baseGroup({
          TargetGroupARNs: [TG_BLUE],
          Tags: [
            { Key: "kiln:service", Value: "web", PropagateAtLaunch: true },
            { Key: "private", Value: "x" },
          ],
        }),
      ),
    );
    const pending = await until(w, "two Pending instances", async () => {
      const l = await instances(w);
      return l.length === 2 ? l : undefined;
    });
    expect(states(pending)).toEqual(["Pending", "Pending"]);
    expect(pending.map((i) => i.AvailabilityZone).sort()).toEqual(["us-east-1a", "us-east-1b"]);
    const list = await until(w, "InService", allInService(2));
    for (const i of list) {
      expect(i).toMatchObject({
        HealthStatus: "Healthy",
        ProtectedFromScaleIn: false,
        LaunchTemplate: { LaunchTemplateId: LT_ID, LaunchTemplateName: "web", Version: "3" },
      });
      const running = w.ec2.transitions.find((t) => t.id === i.InstanceId && t.to === "running")!;
      const registered = w.elb.log.find((l) => l.id === i.InstanceId && l.what === "register")!;
      expect(running.at).toBe(t0 + BOOT_MS);
      expect(registered.at).toBe(running.at);
      expect(w.elb.targetHealth(TG_BLUE, i.InstanceId!)).toBeDefined();
    }
    // Launch tags: group name, the resolved template version, PropagateAtLaunch tags only.
    expect(w.ec2.launches[0]).toMatchObject({
      launchTemplate: { id: LT_ID, version: 3 },
      tags: {
        "aws:autoscaling:groupName": "web",
        "aws:ec2launchtemplate:id": LT_ID,
        "aws:ec2launchtemplate:version": "3",
        "kiln:service": "web",
      },
    });
    expect(w.ec2.launches[0]?.tags.private).toBeUndefined();
    const acts = await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }));
    expect(acts.Activities).toHaveLength(2);
    for (const a of acts.Activities ?? []) {
      expect(a).toMatchObject({
        StatusCode: "Successful",
        Progress: 100,
        Description: expect.stringMatching(/^Launching a new EC2 instance: i-[0-9a-f]{17}$/),
      });
      expect(a.Cause).toBe(
        "At 2026-01-05T09:00:00Z a user request created an AutoScalingGroup changing the desired capacity from 0 to 2.  At 2026-01-05T09:00:00Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 0 to 2.",
      );
      expect(JSON.parse(a.Details ?? "{}")).toHaveProperty("Subnet ID");
    }
    const inst = await w.asg.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [list[0]!.InstanceId!] }));
    expect(inst.AutoScalingInstances?.[0]).toMatchObject({
      AutoScalingGroupName: "web",
      HealthStatus: "HEALTHY",
      LifecycleState: "InService",
    });
    expect(w.events.filter((e) => e.detailType === "EC2 Instance Launch Successful")).toHaveLength(2);
  });

  it("scale-in deregisters, waits for the deregistration delay, then terminates", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ TargetGroupARNs: [TG_BLUE] })));
    const before = await until(w, "InService", allInService(2));
    await w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 1 }));
    const draining = await until(w, "an instance Terminating", async () =>
      (await instances(w)).find((i) => i.LifecycleState === "Terminating"),
    );
    const victim = draining.InstanceId!;
    const dereg = w.elb.log.find((l) => l.id === victim && l.what === "deregister")!;
    const activity = (await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web", MaxRecords: 1 })))
      .Activities?.[0];
    expect(activity).toMatchObject({
      Description: `Terminating EC2 instance: ${victim}`,
      StatusCode: "WaitingForELBConnectionDraining",
    });
    expect(activity?.Cause).toMatch(
      /a user request explicitly set group desired capacity changing the desired capacity from 2 to 1\. {2}At .* an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from 2 to 1\. {2}At .* instance i-\w+ was selected for termination\./,
    );
    await until(w, "the victim gone", async () => ((await instances(w)).some((i) => i.InstanceId === victim) ? undefined : true));
    const shutdown = w.ec2.transitions.find((t) => t.id === victim && t.to === "shutting-down")!;
    // EC2 TerminateInstances only after the 120 s deregistration delay of TG_BLUE.
    expect(shutdown.at - dereg.at).toBe(120_000);
    expect(w.ec2.transitions.find((t) => t.id === victim && t.to === "terminated")?.at).toBe(shutdown.at + SHUTDOWN_MS);
    const left = await instances(w);
    expect(left.map((i) => i.InstanceId)).toEqual(before.map((i) => i.InstanceId).filter((id) => id !== victim));
    const done = (await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web", MaxRecords: 1 })))
      .Activities?.[0];
    expect(done).toMatchObject({ StatusCode: "Successful", EndTime: new Date(shutdown.at + SHUTDOWN_MS) });
  });

  it("termination policy: Default prefers the oldest launch template version, never a protected instance", async () => {
    const w = await setup();
    await w.asg.send(
      new CreateAutoScalingGroupCommand(
        baseGroup({
          LaunchTemplate: { LaunchTemplateId: LT_ID, Version: "1" },
          DesiredCapacity: 1,
          VPCZoneIdentifier: "subnet-a",
        }),
      ),
    );
    const [old] = await until(w, "InService", allInService(1));
    await w.asg.send(
      new UpdateAutoScalingGroupCommand({
        AutoScalingGroupName: "web",
        LaunchTemplate: { LaunchTemplateId: LT_ID, Version: "$Latest" },
        DesiredCapacity: 3,
      }),
    );
    const three = await until(w, "three InService", allInService(3));
    expect(three.map((i) => i.LaunchTemplate?.Version).sort()).toEqual(["1", "3", "3"]);
    const newer = three.filter((i) => i.InstanceId !== old!.InstanceId).map((i) => i.InstanceId!);
    await w.asg.send(
      new SetInstanceProtectionCommand({ AutoScalingGroupName: "web", InstanceIds: [newer[0]!], ProtectedFromScaleIn: true }),
    );
    await w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 1 }));
    const remaining = await until(w, "one instance left", async () => {
      const l = await instances(w);
      return l.length === 1 ? l : undefined;
    });
    expect(remaining[0]).toMatchObject({ InstanceId: newer[0], ProtectedFromScaleIn: true });
    await expect(
      w.asg.send(
        new SetInstanceProtectionCommand({
          AutoScalingGroupName: "web",
          InstanceIds: ["i-00000000000000000"],
          ProtectedFromScaleIn: true,
        }),
      ),
    ).rejects.toMatchObject({
      name: "ValidationError",
    });
  });

  it("TerminateInstanceInAutoScalingGroup decrements or replaces", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ MinSize: 1 })));
    const [a, b] = await until(w, "InService", allInService(2));
    const r = await w.asg.send(
      new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: a!.InstanceId!, ShouldDecrementDesiredCapacity: true }),
    );
    expect(r.Activity).toMatchObject({ Description: `Terminating EC2 instance: ${a!.InstanceId}`, StatusCode: "InProgress" });
    expect(r.Activity?.Cause).toMatch(
      /was taken out of service in response to a user request, shrinking the capacity from 2 to 1\.$/,
    );
    expect((await describe1(w))?.DesiredCapacity).toBe(1);
    await expect(
      w.asg.send(
        new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: b!.InstanceId!, ShouldDecrementDesiredCapacity: true }),
      ),
    ).rejects.toMatchObject({
      name: "ValidationError",
      message: expect.stringContaining("Currently, desiredSize equals minSize (1)"),
    });
    await w.asg.send(
      new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: b!.InstanceId!, ShouldDecrementDesiredCapacity: false }),
    );
    const after = await until(w, "a replacement InService", async () => {
      const l = await instances(w);
      return l.length === 1 && l[0]!.LifecycleState === "InService" ? l : undefined;
    });
    expect(after[0]!.InstanceId).not.toBe(b!.InstanceId);
    await expect(
      w.asg.send(
        new TerminateInstanceInAutoScalingGroupCommand({
          InstanceId: "i-00000000000000000",
          ShouldDecrementDesiredCapacity: false,
        }),
      ),
    ).rejects.toMatchObject({
      name: "ValidationError",
      message: "Instance Id not found - No managed instance found for instance ID: i-00000000000000000",
    });
  });

  it("records a failed launch activity and retries", async () => {
    const w = await setup();
    w.ec2.launch = () => {
      throw new AwsError("InvalidAMIID.NotFound", "The image id '[ami-gone]' does not exist.");
    };
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 1 })));
    const failed = await until(w, "a failed activity", async () => {
      const acts = (await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }))).Activities ?? [];
      return acts.length >= 2 ? acts : undefined;
    });
    expect(failed[0]).toMatchObject({
      StatusCode: "Failed",
      StatusMessage: "The image id '[ami-gone]' does not exist. Launching EC2 instance failed.",
      Description:
        "Launching a new EC2 instance.  Status Reason: The image id '[ami-gone]' does not exist. Launching EC2 instance failed.",
    });
    // Retried with backoff: the second attempt comes later than the first by at least one reconcile period.
    expect(failed[0]!.StartTime!.getTime() - failed[1]!.StartTime!.getTime()).toBeGreaterThanOrEqual(10_000);
  });

  it("DeleteAutoScalingGroup: ResourceInUse with instances, ScalingActivityInProgress while busy, ForceDelete drains then removes", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ TargetGroupARNs: [TG_GREEN] })));
    await w.cloud.clock.sleep(1);
    await expect(w.asg.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: "web" }))).rejects.toMatchObject({
      name: "ScalingActivityInProgressFault",
    });
    await until(w, "InService", allInService(2));
    await expect(w.asg.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: "web" }))).rejects.toMatchObject({
      name: "ResourceInUseFault",
      message:
        "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
    });
    const t0 = w.cloud.clock.now();
    await w.asg.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: "web", ForceDelete: true }));
    const g = await describe1(w);
    expect(g?.Status).toBe("Delete in progress");
    await expect(w.asg.send(new CreateAutoScalingGroupCommand(baseGroup()))).rejects.toMatchObject({
      name: "AlreadyExistsFault",
    });
    await until(w, "the group gone", async () => ((await describe1(w)) ? undefined : true));
    // Draining (30 s) and shutdown (5 s) happened before the group vanished.
    expect(w.cloud.clock.now() - t0).toBeGreaterThanOrEqual(35_000);
    expect(w.ec2.instances().every((i) => i.state === "terminated")).toBe(true);
    // An empty group deletes at once; its activities remain visible with IncludeDeletedGroups.
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 0 })));
    await w.asg.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: "web" }));
    expect(await describe1(w)).toBeUndefined();
    const old = await w.asg.send(
      new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web", IncludeDeletedGroups: true }),
    );
    expect(old.Activities?.length).toBeGreaterThanOrEqual(4);
    const current = await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }));
    expect(current.Activities).toEqual([]);
  });
});

describe("Auto Scaling lifecycle hooks", () => {
  const launchHook = {
    LifecycleHookName: "bootstrap",
    LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
    HeartbeatTimeout: 300,
    DefaultResult: "ABANDON",
  };

  it("holds launches in Pending:Wait until CompleteLifecycleAction (by token or instance id)", async () => {
    const w = await setup();
    await w.asg.send(
      new CreateAutoScalingGroupCommand(baseGroup({ TargetGroupARNs: [TG_BLUE], LifecycleHookSpecificationList: [launchHook] })),
    );
    const hooks = await w.asg.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: "web" }));
    expect(hooks.LifecycleHooks).toEqual([
      {
        LifecycleHookName: "bootstrap",
        AutoScalingGroupName: "web",
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout: 300,
        GlobalTimeout: 30_000,
        DefaultResult: "ABANDON",
      },
    ]);
    const waiting = await until(w, "two Pending:Wait", async () => {
      const l = await instances(w);
      return l.length === 2 && l.every((i) => i.LifecycleState === "Pending:Wait") ? l : undefined;
    });
    // Still waiting long after EC2 says running, and not registered with the target group.
    await w.cloud.clock.sleep(BOOT_MS + 60_000);
    expect(states(await instances(w))).toEqual(["Pending:Wait", "Pending:Wait"]);
    expect(w.elb.log).toEqual([]);
    const notices = w.events.filter((e) => e.detailType === "EC2 Instance-launch Lifecycle Action");
    expect(notices).toHaveLength(2);
    const [first, second] = waiting;
    const token = notices.find((n) => n.detail.EC2InstanceId === first!.InstanceId)!.detail.LifecycleActionToken as string;
    expect(token).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await w.asg.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: "web",
        LifecycleHookName: "bootstrap",
        LifecycleActionToken: token,
        LifecycleActionResult: "CONTINUE",
      }),
    );
    await until(w, "first InService", async () =>
      (await instances(w)).find((i) => i.InstanceId === first!.InstanceId && i.LifecycleState === "InService"),
    );
    expect(w.elb.log.filter((l) => l.what === "register").map((l) => l.id)).toEqual([first!.InstanceId]);
    // The action is gone: completing it again is AWS's ValidationError.
    await expect(
      w.asg.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: "web",
          LifecycleHookName: "bootstrap",
          LifecycleActionToken: token,
          LifecycleActionResult: "CONTINUE",
        }),
      ),
    ).rejects.toMatchObject({ name: "ValidationError", message: `No active Lifecycle Action found with token ${token}` });
    await expect(
      w.asg.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: "web",
          LifecycleHookName: "bootstrap",
          InstanceId: first!.InstanceId,
          LifecycleActionResult: "CONTINUE",
        }),
      ),
    ).rejects.toMatchObject({
      name: "ValidationError",
      message: `No active Lifecycle Action found with instance ID ${first!.InstanceId}`,
    });
    // ABANDON by instance id: terminated and replaced by a new launch that waits in turn.
    await w.asg.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: "web",
        LifecycleHookName: "bootstrap",
        InstanceId: second!.InstanceId,
        LifecycleActionResult: "ABANDON",
      }),
    );
    const replaced = await until(w, "a replacement waiting", async () => {
      const l = await instances(w);
      return l.some((i) => i.InstanceId === second!.InstanceId) ? undefined : l.find((i) => i.LifecycleState === "Pending:Wait");
    });
    expect(replaced.InstanceId).not.toBe(second!.InstanceId);
    expect(w.ec2.instance(second!.InstanceId!)?.state).toBe("terminated");
  });

  it("applies DefaultResult at the heartbeat timeout; heartbeats push it back", async () => {
    const w = await setup();
    await w.asg.send(
      new CreateAutoScalingGroupCommand(
        baseGroup({
          DesiredCapacity: 1,
          LifecycleHookSpecificationList: [{ ...launchHook, DefaultResult: "CONTINUE", HeartbeatTimeout: 60 }],
        }),
      ),
    );
    const [waiting] = await until(w, "Pending:Wait", async () => {
      const l = await instances(w);
      return l[0]?.LifecycleState === "Pending:Wait" ? l : undefined;
    });
    const t0 = w.cloud.clock.now();
    await w.cloud.clock.sleep(50_000);
    await w.asg.send(
      new RecordLifecycleActionHeartbeatCommand({
        AutoScalingGroupName: "web",
        LifecycleHookName: "bootstrap",
        InstanceId: waiting!.InstanceId,
      }),
    );
    await w.cloud.clock.sleep(50_000);
    expect((await instances(w))[0]?.LifecycleState).toBe("Pending:Wait");
    await until(w, "InService after the timeout", allInService(1));
    const launched = (await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }))).Activities?.[0];
    // Heartbeat at +50 s restarted the 60 s timer: CONTINUE applied at +110 s.
    expect(launched?.EndTime?.getTime()).toBe(t0 + 110_000);
  });

  it("terminate hooks run after draining and before EC2 termination; deleting a hook completes its actions", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 1, TargetGroupARNs: [TG_GREEN] })));
    const [inst] = await until(w, "InService", allInService(1));
    await w.asg.send(
      new PutLifecycleHookCommand({
        AutoScalingGroupName: "web",
        LifecycleHookName: "logs",
        LifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING",
        DefaultResult: "CONTINUE",
      }),
    );
    await expect(
      w.asg.send(
        new PutLifecycleHookCommand({
          AutoScalingGroupName: "web",
          LifecycleHookName: "x",
          LifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING",
          HeartbeatTimeout: 10,
        }),
      ),
    ).rejects.toMatchObject({ name: "ValidationError" });
    // PutLifecycleHook also updates: the transition may be omitted then.
    await w.asg.send(
      new PutLifecycleHookCommand({ AutoScalingGroupName: "web", LifecycleHookName: "logs", HeartbeatTimeout: 900 }),
    );
    expect(
      (await w.asg.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: "web", LifecycleHookNames: ["logs"] })))
        .LifecycleHooks?.[0],
    ).toMatchObject({
      LifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING",
      HeartbeatTimeout: 900,
      DefaultResult: "CONTINUE",
    });
    await w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 0 }));
    await until(w, "Terminating:Wait", async () => (await instances(w))[0]?.LifecycleState === "Terminating:Wait");
    const drained = w.elb.log.find((l) => l.id === inst!.InstanceId && l.what === "drained")!;
    const notice = w.events.find((e) => e.detailType === "EC2 Instance-terminate Lifecycle Action")!;
    expect(notice.detail).toMatchObject({
      EC2InstanceId: inst!.InstanceId,
      LifecycleHookName: "logs",
      Origin: "AutoScalingGroup",
      Destination: "EC2",
    });
    expect(w.ec2.instance(inst!.InstanceId!)?.state).toBe("running");
    await w.cloud.clock.sleep(120_000);
    expect((await instances(w))[0]?.LifecycleState).toBe("Terminating:Wait");
    const t = w.cloud.clock.now();
    await w.asg.send(new DeleteLifecycleHookCommand({ AutoScalingGroupName: "web", LifecycleHookName: "logs" }));
    await until(w, "gone", async () => ((await instances(w)).length === 0 ? true : undefined));
    const shutdown = w.ec2.transitions.find((x) => x.id === inst!.InstanceId && x.to === "shutting-down")!;
    expect(drained.at).toBeLessThan(shutdown.at);
    expect(shutdown.at).toBeGreaterThanOrEqual(t);
    await expect(
      w.asg.send(new DeleteLifecycleHookCommand({ AutoScalingGroupName: "web", LifecycleHookName: "logs" })),
    ).rejects.toMatchObject({ name: "ValidationError" });
  });
});

describe("Auto Scaling health checks", () => {
  it("ELB health: replaces an unhealthy instance only after the grace period", async () => {
    const w = await setup();
    await w.asg.send(
      new CreateAutoScalingGroupCommand(
        baseGroup({ TargetGroupARNs: [TG_GREEN], HealthCheckType: "ELB", HealthCheckGracePeriod: 300 }),
      ),
    );
    const list = await until(w, "InService", allInService(2));
    const inServiceAt = w.cloud.clock.now();
    const sick = list[0]!.InstanceId!;
    await until(w, "the attachment InService", async () => {
      const ts = await w.asg.send(new DescribeTrafficSourcesCommand({ AutoScalingGroupName: "web" }));
      return ts.TrafficSources?.[0]?.State === "InService";
    });
    w.elb.setHealth(TG_GREEN, sick, "unhealthy");
    await w.cloud.clock.sleep(200_000);
    // Inside the grace period: still Healthy.
    expect((await instances(w)).find((i) => i.InstanceId === sick)).toMatchObject({
      HealthStatus: "Healthy",
      LifecycleState: "InService",
    });
    const marked = await until(w, "marked Unhealthy", async () =>
      (await instances(w)).find((i) => i.InstanceId === sick && i.HealthStatus === "Unhealthy"),
    );
    expect(marked.LifecycleState).toBe("Terminating");
    expect(w.cloud.clock.now()).toBeGreaterThanOrEqual(inServiceAt - BOOT_MS + 300_000);
    expect(w.cloud.clock.now()).toBeLessThanOrEqual(inServiceAt + 300_000 + 15_000);
    const acts = (await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }))).Activities ?? [];
    expect(acts.find((a) => a.Description === `Terminating EC2 instance: ${sick}`)?.Cause).toMatch(
      /an instance was taken out of service in response to an ELB system health check failure\.$/,
    );
    // Terminate first, then launch: no replacement while the sick one drains (30 s).
    expect((await instances(w)).length).toBe(2);
    const healed = await until(w, "replacement InService", allInService(2));
    expect(healed.map((i) => i.InstanceId)).not.toContain(sick);
    expect((await describe1(w))?.DesiredCapacity).toBe(2);
  });

  it("EC2 health: a stopped instance is replaced at once, even inside the grace period", async () => {
    const w = await setup();
    await w.asg.send(
      new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 1, HealthCheckType: "ELB", HealthCheckGracePeriod: 3600 })),
    );
    const [inst] = await until(w, "InService", allInService(1));
    w.ec2.set(w.ec2.instance(inst!.InstanceId!)!, "stopped");
    const t0 = w.cloud.clock.now();
    await until(w, "replaced", async () => {
      const l = await instances(w);
      return l.length === 1 && l[0]!.InstanceId !== inst!.InstanceId && l[0]!.LifecycleState === "InService";
    });
    expect(w.cloud.clock.now() - t0).toBeLessThan(60_000);
    const acts = (await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }))).Activities ?? [];
    expect(acts.find((a) => a.Description === `Terminating EC2 instance: ${inst!.InstanceId}`)?.Cause).toMatch(
      /EC2 instance status check failure/,
    );
  });

  it("SetInstanceHealth: respects the grace period unless told not to; Unhealthy is replaced", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 1, HealthCheckGracePeriod: 600 })));
    const [inst] = await until(w, "InService", allInService(1));
    const id = inst!.InstanceId!;
    await w.asg.send(new SetInstanceHealthCommand({ InstanceId: id, HealthStatus: "Unhealthy" }));
    await w.cloud.clock.sleep(30_000);
    expect((await instances(w))[0]).toMatchObject({ InstanceId: id, HealthStatus: "Healthy" });
    await w.asg.send(
      new SetInstanceHealthCommand({ InstanceId: id, HealthStatus: "Unhealthy", ShouldRespectGracePeriod: false }),
    );
    await until(w, "replaced", async () => {
      const l = await instances(w);
      return l.length === 1 && l[0]!.InstanceId !== id && l[0]!.LifecycleState === "InService";
    });
    const acts = (await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }))).Activities ?? [];
    expect(acts.find((a) => a.Description === `Terminating EC2 instance: ${id}`)?.Cause).toMatch(
      /in response to a user health-check\.$/,
    );
    await expect(w.asg.send(new SetInstanceHealthCommand({ InstanceId: id, HealthStatus: "Healthy" }))).rejects.toMatchObject({
      name: "ValidationError",
    });
  });

  it("a failed boot is replaced", async () => {
    const w = await setup();
    w.ec2.failBoots = 1;
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 1 })));
    const [ok] = await until(w, "a healthy replacement", allInService(1));
    expect(w.ec2.launches).toHaveLength(2);
    expect(w.ec2.instance(ok!.InstanceId!)?.state).toBe("running");
    const acts = (await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }))).Activities ?? [];
    expect(acts.map((a) => a.StatusCode)).toEqual(["Successful", "Successful", "Failed"]);
    expect(acts[2]?.StatusMessage).toBe("Instance became unhealthy while waiting for instance to be in InService state.");
  });
});

describe("Auto Scaling suspended processes", () => {
  it.each([
    ["Launch", "no scale-out"],
    ["Terminate", "no scale-in"],
  ])("%s suspended: %s until resumed", async (proc) => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: proc === "Launch" ? 0 : 2 })));
    if (proc === "Terminate") await until(w, "InService", allInService(2));
    await w.asg.send(new SuspendProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: [proc] }));
    await w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 1 }));
    await w.cloud.clock.sleep(300_000);
    expect((await instances(w)).length).toBe(proc === "Launch" ? 0 : 2);
    await w.asg.send(new ResumeProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: [proc] }));
    await until(w, "converged", allInService(1));
  });

  it("ReplaceUnhealthy suspended: marked Unhealthy but kept until resumed; HealthCheck suspended: not even marked", async () => {
    const w = await setup();
    await w.asg.send(
      new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 1, TargetGroupARNs: [TG_GREEN], HealthCheckType: "ELB" })),
    );
    const [inst] = await until(w, "InService", allInService(1));
    await until(w, "healthy target", () => w.elb.targetHealth(TG_GREEN, inst!.InstanceId!) === "healthy");
    await w.cloud.clock.sleep(10_000);
    await w.asg.send(
      new SuspendProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: ["HealthCheck", "ReplaceUnhealthy"] }),
    );
    w.elb.setHealth(TG_GREEN, inst!.InstanceId!, "unhealthy");
    await w.cloud.clock.sleep(60_000);
    expect((await instances(w))[0]).toMatchObject({
      InstanceId: inst!.InstanceId,
      HealthStatus: "Healthy",
      LifecycleState: "InService",
    });
    await w.asg.send(new ResumeProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: ["HealthCheck"] }));
    await until(w, "marked", async () => (await instances(w))[0]?.HealthStatus === "Unhealthy");
    await w.cloud.clock.sleep(60_000);
    expect((await instances(w))[0]).toMatchObject({
      InstanceId: inst!.InstanceId,
      LifecycleState: "InService",
      HealthStatus: "Unhealthy",
    });
    await w.asg.send(new ResumeProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: ["ReplaceUnhealthy"] }));
    await until(w, "replaced", async () => {
      const l = await instances(w);
      return l.length === 1 && l[0]!.InstanceId !== inst!.InstanceId && l[0]!.LifecycleState === "InService";
    });
  });

  it("AddToLoadBalancer suspended: instances launched meanwhile are never registered, even after resume", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 0, TargetGroupARNs: [TG_BLUE] })));
    await w.asg.send(new SuspendProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: ["AddToLoadBalancer"] }));
    await w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 1 }));
    const [first] = await until(w, "InService", allInService(1));
    await w.asg.send(new ResumeProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: ["AddToLoadBalancer"] }));
    await w.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 2 }));
    const both = await until(w, "two InService", allInService(2));
    const second = both.find((i) => i.InstanceId !== first!.InstanceId)!;
    expect(w.elb.targetHealth(TG_BLUE, first!.InstanceId!)).toBeUndefined();
    expect(w.elb.targetHealth(TG_BLUE, second.InstanceId!)).toBeDefined();
  });
});

describe("Auto Scaling standby", () => {
  it("EnterStandby drains then parks the instance; ExitStandby re-registers it", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ TargetGroupARNs: [TG_GREEN] })));
    const [a, b] = await until(w, "InService", allInService(2));
    const r = await w.asg.send(
      new EnterStandbyCommand({
        AutoScalingGroupName: "web",
        InstanceIds: [a!.InstanceId!],
        ShouldDecrementDesiredCapacity: true,
      }),
    );
    expect(r.Activities?.[0]).toMatchObject({
      Description: `Moving EC2 instance to Standby: ${a!.InstanceId}`,
      Progress: 50,
      StatusCode: "InProgress",
    });
    expect(r.Activities?.[0]?.Cause).toMatch(
      /was moved to standby in response to a user request, shrinking the capacity from 2 to 1\.$/,
    );
    expect((await describe1(w))?.DesiredCapacity).toBe(1);
    expect((await instances(w)).find((i) => i.InstanceId === a!.InstanceId)?.LifecycleState).toBe("EnteringStandby");
    const t0 = w.cloud.clock.now();
    await until(
      w,
      "Standby",
      async () => (await instances(w)).find((i) => i.InstanceId === a!.InstanceId && i.LifecycleState === "Standby"),
      600_000,
      500,
    );
    expect(w.cloud.clock.now() - t0).toBeGreaterThanOrEqual(30_000); // TG_GREEN's deregistration delay
    expect(w.elb.targetHealth(TG_GREEN, a!.InstanceId!)).toBeUndefined();
    expect(w.ec2.instance(a!.InstanceId!)?.state).toBe("running");
    await expect(
      w.asg.send(
        new EnterStandbyCommand({
          AutoScalingGroupName: "web",
          InstanceIds: [a!.InstanceId!],
          ShouldDecrementDesiredCapacity: true,
        }),
      ),
    ).rejects.toMatchObject({
      name: "ValidationError",
      message: `The instance ${a!.InstanceId} is not in InService.`,
    });
    await w.cloud.clock.sleep(60_000);
    expect((await instances(w)).length).toBe(2); // decremented: no replacement
    await expect(
      w.asg.send(new ExitStandbyCommand({ AutoScalingGroupName: "web", InstanceIds: [b!.InstanceId!] })),
    ).rejects.toMatchObject({ name: "ValidationError" });
    const out = await w.asg.send(new ExitStandbyCommand({ AutoScalingGroupName: "web", InstanceIds: [a!.InstanceId!] }));
    expect(out.Activities?.[0]).toMatchObject({
      Description: `Moving EC2 instance out of Standby: ${a!.InstanceId}`,
      Progress: 30,
      StatusCode: "PreInService",
    });
    await until(w, "back InService", allInService(2));
    expect((await describe1(w))?.DesiredCapacity).toBe(2);
    expect(w.elb.targetHealth(TG_GREEN, a!.InstanceId!)).toBeDefined();
  });

  it("EnterStandby without decrement launches a replacement; decrement below min is refused", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ MinSize: 2 })));
    const [a] = await until(w, "InService", allInService(2));
    await expect(
      w.asg.send(
        new EnterStandbyCommand({
          AutoScalingGroupName: "web",
          InstanceIds: [a!.InstanceId!],
          ShouldDecrementDesiredCapacity: true,
        }),
      ),
    ).rejects.toMatchObject({
      name: "ValidationError",
      message:
        "AutoScalingGroup web has min-size=2, max-size=4, and desired-size=2. To place into standby 1 instances, please update the AutoScalingGroup sizes appropriately.",
    });
    await w.asg.send(
      new EnterStandbyCommand({
        AutoScalingGroupName: "web",
        InstanceIds: [a!.InstanceId!],
        ShouldDecrementDesiredCapacity: false,
      }),
    );
    await until(w, "a replacement InService", async () => {
      const l = await instances(w);
      return l.filter((i) => i.LifecycleState === "InService").length === 2 && l.some((i) => i.LifecycleState === "Standby");
    });
  });
});

describe("Auto Scaling traffic sources", () => {
  it("attaches and detaches target groups through both API families", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup()));
    const list = await until(w, "InService", allInService(2));
    await w.asg.send(
      new AttachTrafficSourcesCommand({ AutoScalingGroupName: "web", TrafficSources: [{ Identifier: TG_GREEN, Type: "elbv2" }] }),
    );
    await w.asg.send(new AttachLoadBalancerTargetGroupsCommand({ AutoScalingGroupName: "web", TargetGroupARNs: [TG_BLUE] }));
    for (const i of list) {
      expect(w.elb.targetHealth(TG_GREEN, i.InstanceId!)).toBe("initial");
      expect(w.elb.targetHealth(TG_BLUE, i.InstanceId!)).toBe("initial");
    }
    const ts = await w.asg.send(new DescribeTrafficSourcesCommand({ AutoScalingGroupName: "web" }));
    expect(ts.TrafficSources).toEqual([
      { TrafficSource: TG_GREEN, Identifier: TG_GREEN, Type: "elbv2", State: "Added" },
      { TrafficSource: TG_BLUE, Identifier: TG_BLUE, Type: "elbv2", State: "Added" },
    ]);
    await until(w, "InService attachments", async () => {
      const r = await w.asg.send(new DescribeLoadBalancerTargetGroupsCommand({ AutoScalingGroupName: "web" }));
      return r.LoadBalancerTargetGroups?.[0]?.State === "InService";
    });
    const g = await describe1(w);
    expect(g?.TargetGroupARNs).toEqual([TG_BLUE]);
    expect(g?.TrafficSources?.map((t) => t.Identifier)).toEqual([TG_GREEN, TG_BLUE]);
    await expect(
      w.asg.send(new DetachLoadBalancerTargetGroupsCommand({ AutoScalingGroupName: "web", TargetGroupARNs: [TG_GREEN] })),
    ).rejects.toMatchObject({ name: "ValidationError" });
    await w.asg.send(
      new DetachTrafficSourcesCommand({ AutoScalingGroupName: "web", TrafficSources: [{ Identifier: TG_GREEN, Type: "elbv2" }] }),
    );
    expect(
      (await w.asg.send(new DescribeTrafficSourcesCommand({ AutoScalingGroupName: "web", TrafficSourceType: "elbv2" })))
        .TrafficSources?.[0],
    ).toMatchObject({
      Identifier: TG_GREEN,
      State: "Removing",
    });
    for (const i of list) expect(w.elb.targetHealth(TG_GREEN, i.InstanceId!)).toBe("draining");
    await w.cloud.clock.sleep(30_000);
    expect(
      (await w.asg.send(new DescribeTrafficSourcesCommand({ AutoScalingGroupName: "web" }))).TrafficSources?.map(
        (t) => t.Identifier,
      ),
    ).toEqual([TG_BLUE]);
    await w.asg.send(new DetachLoadBalancerTargetGroupsCommand({ AutoScalingGroupName: "web", TargetGroupARNs: [TG_BLUE] }));
    await w.cloud.clock.sleep(120_000);
    expect((await describe1(w))?.TargetGroupARNs).toEqual([]);
    await expect(
      w.asg.send(
        new AttachTrafficSourcesCommand({
          AutoScalingGroupName: "web",
          TrafficSources: [{ Identifier: `${TG_GREEN}0`, Type: "elbv2" }],
        }),
      ),
    ).rejects.toMatchObject({
      name: "ValidationError",
    });
  });
});

describe("Auto Scaling scale fault", () => {
  it("forces a desired-capacity change at the given clock time, like a scaling policy", async () => {
    const w = await setup();
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup()));
    await until(w, "InService", allInService(2));
    const t0 = w.cloud.clock.now();
    w.cloud.faults.add({ kind: "scale", group: "web", desired: 4, atMs: 90_000 });
    await w.cloud.clock.sleep(89_000);
    expect((await describe1(w))?.DesiredCapacity).toBe(2);
    await w.cloud.clock.sleep(1_000);
    expect((await describe1(w))?.DesiredCapacity).toBe(4);
    expect(w.cloud.faults.log.find((l) => l.kind === "scale")).toMatchObject({
      at: t0 + 90_000,
      attrs: { group: "web", desired: 4 },
    });
    await until(w, "four InService", allInService(4));
    const act = (await w.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web", MaxRecords: 1 })))
      .Activities?.[0];
    expect(act?.Cause).toMatch(
      /a monitor alarm .* in state ALARM triggered policy .* changing the desired capacity from 2 to 4\./,
    );
  });

  it("waits for its group and for AlarmNotification to be resumed; clamps to max", async () => {
    const w = await setup({ faults: [{ kind: "scale", group: "web", desired: 9, atMs: 60_000 }] });
    await w.cloud.clock.sleep(120_000);
    await w.asg.send(new CreateAutoScalingGroupCommand(baseGroup({ DesiredCapacity: 1 })));
    await w.asg.send(new SuspendProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: ["AlarmNotification"] }));
    await w.cloud.clock.sleep(60_000);
    expect((await describe1(w))?.DesiredCapacity).toBe(1);
    await w.asg.send(new ResumeProcessesCommand({ AutoScalingGroupName: "web", ScalingProcesses: ["AlarmNotification"] }));
    await w.cloud.clock.sleep(1);
    expect((await describe1(w))?.DesiredCapacity).toBe(4);
  });
});
