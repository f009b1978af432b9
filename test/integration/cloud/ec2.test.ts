import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  CreateImageCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DeleteLaunchTemplateVersionsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeregisterImageCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  type DescribeImagesCommandInput,
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  type Instance,
  ModifyLaunchTemplateCommand,
  paginateDescribeImages,
  paginateDescribeInstances,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  waitUntilImageAvailable,
  waitUntilInstanceRunning,
} from "@aws-sdk/client-ec2";
import { afterEach, describe, expect, it } from "vitest";
import { APP_PATHS } from "../../../local/app/server.ts";
import { Cloud, type CloudEvent } from "../../../local/cloud/cloud.ts";
import type { InstanceStateEvent } from "../../../local/cloud/contracts.ts";
import { type Ec2Backend, registerEc2 } from "../../../local/cloud/services/ec2/index.ts";

const run = promisify(execFile);

interface Env {
  cloud: Cloud;
  backend: Ec2Backend;
  ec2: EC2Client;
  events: CloudEvent[];
  states: InstanceStateEvent[];
}

let current: Cloud | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

async function setup(opts: { settings?: Record<string, number | string | boolean>; http?: boolean } = {}): Promise<Env> {
  // Real servers are exercised in the bake-flow test; elsewhere the in-process app is enough.
  const cloud = new Cloud({ seed: 7, settings: { "app.realServers": false, ...opts.settings } });
  current = cloud;
  const backend = registerEc2(cloud);
  const events: CloudEvent[] = [];
  const states: InstanceStateEvent[] = [];
  cloud.bus.on("event", (e: CloudEvent) => events.push(e));
  cloud.bus.on("instance-state", (e: InstanceStateEvent) => states.push(e));
  await cloud.start({ port: opts.http ? 0 : false });
  return { cloud, backend, ec2: new EC2Client(cloud.clientConfig({ http: opts.http })), events, states };
}

/** Polls `probe` every `everyMs` of cloud time until it returns a value, within `withinMs`. */
async function until<T>(
  cloud: Cloud,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  withinMs = 30 * 60_000,
  everyMs = 5_000,
): Promise<T> {
  const deadline = cloud.clock.now() + withinMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (cloud.clock.now() >= deadline) throw new Error(`condition not met within ${withinMs} ms of cloud time`);
    await cloud.clock.sleep(everyMs);
  }
}

async function baseImage(env: Env, arch: "x86_64" | "arm64" = "x86_64"): Promise<string> {
  const r = await env.ec2.send(
    new DescribeImagesCommand({ Owners: ["amazon"], Filters: [{ Name: "architecture", Values: [arch] }] }),
  );
  return r.Images![0]!.ImageId!;
}

async function describe1(env: Env, id: string): Promise<Instance> {
  const r = await env.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return r.Reservations![0]!.Instances![0]!;
}

async function launch(env: Env, extra: Partial<RunInstancesCommandInput> = {}): Promise<string[]> {
  const r = await env.ec2.send(
    new RunInstancesCommand({ ImageId: await baseImage(env), InstanceType: "t3.micro", MinCount: 1, MaxCount: 1, ...extra }),
  );
  return r.Instances!.map((i) => i.InstanceId!);
}

async function running(env: Env, id: string): Promise<Instance> {
  return until(env.cloud, async () => {
    const i = await describe1(env, id);
    return i.State?.Name === "running" && i;
  });
}

/** Runs the instance's sample-app CLI the way SSM would (bash in the sandbox), holding the clock. */
async function sampleApp(env: Env, id: string, command: string, vars: Record<string, string> = {}) {
  const inst = env.backend.instance(id)!;
  return env.cloud.clock.hold(
    run("bash", [join(inst.rootDir, APP_PATHS.cli), command], { env: { PATH: process.env.PATH ?? "", ...vars } }),
  );
}

describe("EC2: default VPC", () => {
  it("looks like a new account: one default VPC, a default subnet per AZ, the default group", async () => {
    const env = await setup();
    const vpcs = await env.ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "is-default", Values: ["true"] }] }));
    expect(vpcs.Vpcs).toHaveLength(1);
    const vpcId = vpcs.Vpcs![0]!.VpcId!;
    expect(vpcs.Vpcs![0]).toMatchObject({ CidrBlock: "172.31.0.0/16", IsDefault: true, State: "available" });

    const subnets = await env.ec2.send(
      new DescribeSubnetsCommand({
        Filters: [
          { Name: "vpc-id", Values: [vpcId] },
          { Name: "default-for-az", Values: ["true"] },
        ],
      }),
    );
    expect(subnets.Subnets?.map((s) => s.AvailabilityZone).sort()).toEqual(["us-east-1a", "us-east-1b", "us-east-1c"]);
    const oneAz = await env.ec2.send(
      new DescribeSubnetsCommand({ Filters: [{ Name: "availability-zone", Values: ["us-east-1b"] }] }),
    );
    expect(oneAz.Subnets).toHaveLength(1);
    expect(oneAz.Subnets![0]).toMatchObject({
      CidrBlock: "172.31.16.0/20",
      DefaultForAz: true,
      MapPublicIpOnLaunch: true,
      VpcId: vpcId,
    });
    expect(env.backend.subnets()).toHaveLength(3);

    const sgs = await env.ec2.send(
      new DescribeSecurityGroupsCommand({
        Filters: [
          { Name: "group-name", Values: ["default"] },
          { Name: "vpc-id", Values: [vpcId] },
        ],
      }),
    );
    expect(sgs.SecurityGroups).toHaveLength(1);
    expect(sgs.SecurityGroups![0]!.GroupId).toMatch(/^sg-[0-9a-f]{17}$/);

    const azs = await env.ec2.send(new DescribeAvailabilityZonesCommand({}));
    expect(azs.AvailabilityZones?.map((z) => [z.ZoneName, z.ZoneId, z.State])).toEqual([
      ["us-east-1a", "use1-az1", "available"],
      ["us-east-1b", "use1-az2", "available"],
      ["us-east-1c", "use1-az3", "available"],
    ]);
  });

  it.each([
    [
      "DescribeSubnets of an unknown subnet",
      "InvalidSubnetID.NotFound",
      new DescribeSubnetsCommand({ SubnetIds: ["subnet-0123456789abcdef0"] }),
    ],
    ["DescribeVpcs of an unknown VPC", "InvalidVpcID.NotFound", new DescribeVpcsCommand({ VpcIds: ["vpc-0123456789abcdef0"] })],
    [
      "DescribeSecurityGroups of an unknown group",
      "InvalidGroup.NotFound",
      new DescribeSecurityGroupsCommand({ GroupIds: ["sg-0123456789abcdef0"] }),
    ],
    [
      "DescribeSubnets with an unknown filter",
      "InvalidParameterValue",
      new DescribeSubnetsCommand({ Filters: [{ Name: "no-such-filter", Values: ["x"] }] }),
    ],
  ] as const)("%s fails with %s", async (_what, name, command) => {
    const env = await setup();
    // The commands differ in type; `send` is overloaded per command.
    await expect(env.ec2.send(command as DescribeSubnetsCommand)).rejects.toMatchObject({ name });
  });
});

describe("EC2: public base images", () => {
  it("seeds Amazon Linux 2023 for both architectures, owned by amazon, each with a root snapshot", async () => {
    const env = await setup();
    const r = await env.ec2.send(
      new DescribeImagesCommand({ Owners: ["amazon"], Filters: [{ Name: "name", Values: ["al2023-ami-2023.*-kernel-6.1-*"] }] }),
    );
    expect(r.Images?.map((i) => i.Architecture).sort()).toEqual(["arm64", "x86_64"]);
    for (const i of r.Images!) {
      expect(i).toMatchObject({
        OwnerId: "137112412989",
        ImageOwnerAlias: "amazon",
        Public: true,
        State: "available",
        RootDeviceType: "ebs",
      });
      expect(i.Name).toMatch(/^al2023-ami-2023\.6\.\d{8}\.0-kernel-6\.1-(x86_64|arm64)$/);
      expect(i.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId).toMatch(/^snap-/);
    }
    expect(
      env.backend
        .baseImages()
        .map((b) => b.imageId)
        .sort(),
    ).toEqual(r.Images!.map((i) => i.ImageId).sort());
    const single = await env.ec2.send(
      new DescribeImagesCommand({
        Owners: ["amazon"],
        Filters: [{ Name: "name", Values: ["al2023-ami-2023.6.????????.0-kernel-6.1-arm64"] }],
      }),
    );
    expect(single.Images).toHaveLength(1);
    // Own images only: none yet.
    expect((await env.ec2.send(new DescribeImagesCommand({ Owners: ["self"] }))).Images).toEqual([]);
  });

  it("publishes a newer base image through the admin API and announces it on the bus", async () => {
    const env = await setup();
    const published: unknown[] = [];
    env.cloud.bus.on("base-image-published", (e) => published.push(e));
    const before = env.backend.baseImages().find((b) => b.arch === "arm64")!;
    const res = await env.cloud.router.handle({
      method: "POST",
      url: "/_kiln/ec2/publish-base-image",
      headers: {},
      body: Buffer.from('{"arch":"arm64"}'),
    });
    expect(res.status).toBe(200);
    const body = JSON.parse(String(res.body)) as { published: { imageId: string; name: string; arch: string }[] };
    expect(body.published).toHaveLength(1);
    const fresh = body.published[0]!;
    expect(fresh.arch).toBe("arm64");
    expect(fresh.name > before.name).toBe(true);
    expect(published).toEqual([{ imageId: fresh.imageId, name: fresh.name, arch: "arm64" }]);
    // Twice on one day: the build number goes up, the names stay unique.
    const again = env.backend.publishBaseImage("arm64")[0]!;
    expect(again.name).toBe(fresh.name.replace(/\.0-kernel/, ".1-kernel"));
    const all = await env.ec2.send(
      new DescribeImagesCommand({ Owners: ["amazon"], Filters: [{ Name: "architecture", Values: ["arm64"] }] }),
    );
    expect(all.Images).toHaveLength(3);
  });
});

describe("EC2: instances", () => {
  it("boots pending → running on the cloud clock, announces every transition, and terminates", async () => {
    const env = await setup();
    const t0 = env.cloud.clock.now();
    const [id] = await launch(env, { TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "Name", Value: "web" }] }] });
    const pending = await describe1(env, id!);
    expect(pending.State).toEqual({ Code: 0, Name: "pending" });
    expect(pending.PrivateIpAddress).toMatch(/^172\.31\.(0|16|32)\.\d+$/);
    expect(pending.Tags).toEqual([{ Key: "Name", Value: "web" }]);

    await running(env, id!);
    const bootMs = env.cloud.clock.now() - t0;
    expect(bootMs).toBeGreaterThanOrEqual(10_000);
    expect(bootMs).toBeLessThanOrEqual(35_000); // 20 s ± 50 %, seen by a 5 s poll
    const inst = env.backend.instance(id!)!;
    expect(inst.app).toBeDefined();
    expect(existsSync(join(inst.rootDir, APP_PATHS.cli))).toBe(true);
    expect(readFileSync(join(inst.rootDir, "etc/kiln-base-image"), "utf8")).toMatch(/^al2023-ami-/);

    const term = await env.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id!] }));
    expect(term.TerminatingInstances?.[0]).toMatchObject({
      PreviousState: { Name: "running", Code: 16 },
      CurrentState: { Name: "shutting-down", Code: 32 },
    });
    expect(inst.app).toBeUndefined();
    await until(env.cloud, async () => (await describe1(env, id!)).State?.Name === "terminated");
    const gone = await describe1(env, id!);
    expect(gone.StateReason?.Code).toBe("Client.UserInitiatedShutdown");
    expect(gone.StateTransitionReason).toMatch(/^User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)$/);
    await env.cloud.clock.sleep(1_000); // the removal is held on the clock: time moves once it is done
    expect(existsSync(inst.rootDir)).toBe(false);
    // Terminating again is a no-op that still succeeds.
    const again = await env.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id!] }));
    expect(again.TerminatingInstances?.[0]?.CurrentState?.Name).toBe("terminated");

    expect(env.states.map((s) => `${s.from}→${s.to}`)).toEqual([
      "pending→running",
      "running→shutting-down",
      "shutting-down→terminated",
    ]);
    const notifications = env.events
      .filter((e) => e.detailType === "EC2 Instance State-change Notification")
      .map((e) => e.detail.state);
    expect(notifications).toEqual(["pending", "running", "shutting-down", "terminated"]);
    expect(env.events[0]).toMatchObject({ source: "aws.ec2", detail: { "instance-id": id } });

    // Listed for about an hour, then gone.
    await env.cloud.clock.sleep(3_600_000);
    await expect(describe1(env, id!)).rejects.toMatchObject({ name: "InvalidInstanceID.NotFound" });
  });

  it("keeps sandboxes of terminated instances when ec2.keepSandboxes is set", async () => {
    const env = await setup({ settings: { "ec2.keepSandboxes": true } });
    const [id] = await launch(env);
    const root = env.backend.instance(id!)!.rootDir;
    await env.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id!] }));
    await until(env.cloud, () => env.backend.instance(id!)!.state === "terminated");
    expect(existsSync(root)).toBe(true);
  });

  it("hands out unique private IPs from the subnet's CIDR", async () => {
    const env = await setup();
    const subnet = env.backend.subnets()[2]!;
    const ids = await launch(env, { MinCount: 20, MaxCount: 20, SubnetId: subnet.id });
    const ips = ids.map((id) => env.backend.instance(id)!.privateIp);
    expect(new Set(ips).size).toBe(20);
    for (const ip of ips) expect(ip).toMatch(/^172\.31\.(3[2-9]|4[0-7])\.\d+$/);
    const r = await env.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "subnet-id", Values: [subnet.id] }] }));
    expect(r.Reservations).toHaveLength(1);
    expect(r.Reservations![0]!.Instances).toHaveLength(20);
  });

  it("stops and starts: the app goes down with the instance and comes back on start", async () => {
    const env = await setup();
    const [id] = await launch(env);
    await running(env, id!);
    const stop = await env.ec2.send(new StopInstancesCommand({ InstanceIds: [id!] }));
    expect(stop.StoppingInstances?.[0]?.CurrentState?.Name).toBe("stopping");
    expect(env.backend.instance(id!)!.app).toBeUndefined();
    await until(env.cloud, async () => (await describe1(env, id!)).State?.Name === "stopped");
    const ip = env.backend.instance(id!)!.privateIp;
    const start = await env.ec2.send(new StartInstancesCommand({ InstanceIds: [id!] }));
    expect(start.StartingInstances?.[0]).toMatchObject({ PreviousState: { Name: "stopped" }, CurrentState: { Name: "pending" } });
    await running(env, id!);
    expect(env.backend.instance(id!)!.app).toBeDefined();
    expect(env.backend.instance(id!)!.privateIp).toBe(ip);
    const status = await env.ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [id!] }));
    expect(status.InstanceStatuses?.[0]?.InstanceStatus?.Status).toBe("ok");
  });

  it.each([
    ["slow", { mode: "slow", delayMs: 120_000 }, "running"],
    ["fail", { mode: "fail" }, "terminated"],
  ])("boot fault %s", async (_mode, rule, finalState) => {
    const env = await setup();
    env.cloud.faults.add({ kind: "boot", ...rule });
    const t0 = env.cloud.clock.now();
    const [id] = await launch(env);
    const inst = await until(env.cloud, async () => {
      const i = await describe1(env, id!);
      return (i.State?.Name === "running" || i.State?.Name === "terminated") && i;
    });
    expect(inst.State?.Name).toBe(finalState);
    if (finalState === "running") expect(env.cloud.clock.now() - t0).toBeGreaterThanOrEqual(120_000);
    else {
      expect(inst.StateReason?.Code).toBe("Server.InternalError");
      expect(env.states.map((s) => s.to)).toEqual(["shutting-down", "terminated"]);
    }
  });

  it.each([
    [
      "an unknown AMI",
      { ImageId: "ami-0123456789abcdef0" },
      "InvalidAMIID.NotFound",
      /The image id '\[ami-0123456789abcdef0\]' does not exist/,
    ],
    ["a malformed AMI id", { ImageId: "ami-xyz" }, "InvalidAMIID.Malformed", /expecting "ami-/],
    ["an unknown subnet", { SubnetId: "subnet-0123456789abcdef0" }, "InvalidSubnetID.NotFound", /subnet-0123456789abcdef0/],
    [
      "an unknown security group",
      { SecurityGroupIds: ["sg-0123456789abcdef0"] },
      "InvalidGroup.NotFound",
      /sg-0123456789abcdef0/,
    ],
    ["an arm64 type for an x86_64 AMI", { InstanceType: "t4g.micro" }, "InvalidParameterValue", /architecture 'arm64'/],
    ["MinCount above MaxCount", { MinCount: 3, MaxCount: 2 }, "InvalidParameterValue", /MinCount/],
    [
      "a reserved tag key",
      { TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "aws:x", Value: "y" }] }] },
      "InvalidParameterValue",
      /reserved/,
    ],
    [
      "an unknown launch template",
      { ImageId: undefined, LaunchTemplate: { LaunchTemplateName: "nope" } },
      "InvalidLaunchTemplateName.NotFoundException",
      /nope/,
    ],
  ] as [string, Partial<RunInstancesCommandInput>, string, RegExp][])(
    "RunInstances with %s fails",
    async (_what, params, name, message) => {
      const env = await setup();
      const image = await baseImage(env);
      await expect(
        env.ec2.send(new RunInstancesCommand({ ImageId: image, InstanceType: "t3.micro", MinCount: 1, MaxCount: 1, ...params })),
      ).rejects.toMatchObject({ name, message: expect.stringMatching(message) });
      expect(env.backend.instances()).toEqual([]);
    },
  );

  it.each([
    [
      { InstanceIds: ["i-0123456789abcdef0"] },
      "InvalidInstanceID.NotFound",
      "The instance ID 'i-0123456789abcdef0' does not exist",
    ],
    [
      { InstanceIds: ["i-0123456789abcdef0", "i-0123456789abcdef1"] },
      "InvalidInstanceID.NotFound",
      "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist",
    ],
    [{ InstanceIds: ["bogus"] }, "InvalidInstanceID.Malformed", 'Invalid id: "bogus"'],
    [
      { InstanceIds: ["i-0123456789abcdef0"], MaxResults: 5 },
      "InvalidParameterCombination",
      "The parameter instancesSet cannot be used with the parameter maxResults",
    ],
    [{ Filters: [{ Name: "no-such-filter", Values: ["x"] }] }, "InvalidParameterValue", "The filter 'no-such-filter' is invalid"],
    [
      { MaxResults: 2 },
      "InvalidParameterValue",
      "Value ( 2 ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.",
    ],
  ])("DescribeInstances %j fails with %s", async (input, name, message) => {
    const env = await setup();
    await expect(env.ec2.send(new DescribeInstancesCommand(input))).rejects.toMatchObject({ name, message });
  });

  it("TerminateInstances with one unknown id terminates nothing; StopInstances refuses a terminated instance", async () => {
    const env = await setup();
    const [id] = await launch(env);
    await expect(
      env.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id!, "i-0123456789abcdef0"] })),
    ).rejects.toMatchObject({ name: "InvalidInstanceID.NotFound" });
    expect(env.backend.instance(id!)!.state).toBe("pending");
    env.backend.terminate([id!]);
    await expect(env.ec2.send(new StopInstancesCommand({ InstanceIds: [id!] }))).rejects.toMatchObject({
      name: "IncorrectInstanceState",
      message: `This instance '${id}' is not in a state from which it can be stopped.`,
    });
  });

  it("filters DescribeInstances by id, state, tags, image and subnet", async () => {
    const env = await setup();
    const image = await baseImage(env);
    const [a] = await launch(env, {
      TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "kiln:role", Value: "builder" }] }],
    });
    const [b] = await launch(env, {
      TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "kiln:role", Value: "green" }] }],
    });
    const [c] = await launch(env, { SubnetId: env.backend.subnets()[0]!.id });
    env.backend.terminate([c!]);
    const ids = async (Filters: { Name: string; Values: string[] }[]) =>
      (await env.ec2.send(new DescribeInstancesCommand({ Filters })))
        .Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId))
        .sort();
    expect(await ids([{ Name: "tag:kiln:role", Values: ["builder"] }])).toEqual([a]);
    expect(await ids([{ Name: "tag:kiln:role", Values: ["b*", "green"] }])).toEqual([a, b].sort());
    expect(await ids([{ Name: "tag-key", Values: ["kiln:role"] }])).toEqual([a, b].sort());
    expect(await ids([{ Name: "instance-state-name", Values: ["pending"] }])).toEqual([a, b].sort());
    expect(await ids([{ Name: "instance-state-name", Values: ["shutting-down", "terminated"] }])).toEqual([c]);
    expect(await ids([{ Name: "instance-id", Values: [b!] }])).toEqual([b]);
    expect(await ids([{ Name: "image-id", Values: [image] }])).toEqual([a, b, c].sort());
    expect(
      await ids([
        { Name: "subnet-id", Values: [env.backend.subnets()[0]!.id] },
        { Name: "instance-id", Values: [c!] },
      ]),
    ).toEqual([c]);
    expect(await ids([{ Name: "tag:kiln:role", Values: ["nobody"] }])).toEqual([]);
  });

  it("paginates with the SDK paginator, grouping instances under their reservations", async () => {
    const env = await setup();
    const first = await launch(env, { MinCount: 7, MaxCount: 7 });
    const second = await launch(env, { MinCount: 5, MaxCount: 5 });
    const pages: string[][] = [];
    for await (const page of paginateDescribeInstances({ client: env.ec2, pageSize: 5 }, {})) {
      pages.push(page.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId!)));
    }
    expect(pages.map((p) => p.length)).toEqual([5, 5, 2]);
    expect(pages.flat()).toEqual([...first, ...second]);
  });

  it("honours ClientToken: same token and parameters give the same reservation, other parameters a mismatch", async () => {
    const env = await setup();
    const image = await baseImage(env);
    const token = "deploy-web-abc1234-bake";
    const params: RunInstancesCommandInput = {
      ImageId: image,
      InstanceType: "t3.micro",
      MinCount: 2,
      MaxCount: 2,
      ClientToken: token,
    };
    const one = await env.ec2.send(new RunInstancesCommand(params));
    await env.cloud.clock.sleep(60_000);
    const two = await env.ec2.send(new RunInstancesCommand(params));
    expect(two.ReservationId).toBe(one.ReservationId);
    expect(two.Instances?.map((i) => i.InstanceId)).toEqual(one.Instances?.map((i) => i.InstanceId));
    // Only the state moved on.
    expect(two.Instances?.map((i) => i.State?.Name)).toEqual(["running", "running"]);
    expect(env.backend.instances()).toHaveLength(2);
    await expect(env.ec2.send(new RunInstancesCommand({ ...params, InstanceType: "t3.small" }))).rejects.toMatchObject({
      name: "IdempotentParameterMismatch",
    });
    const byToken = await env.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "client-token", Values: [token] }] }));
    expect(byToken.Reservations?.[0]?.Instances).toHaveLength(2);
  });

  it("can lag behind RunInstances and CreateImage like AWS's eventual consistency (opt-in)", async () => {
    const env = await setup({ settings: { "ec2.describeDelayMs": 2_000, "ec2.imageDescribeDelayMs": 3_000 } });
    const [id] = await launch(env);
    await expect(describe1(env, id!)).rejects.toMatchObject({ name: "InvalidInstanceID.NotFound" });
    await expect(
      env.ec2.send(new CreateTagsCommand({ Resources: [id!], Tags: [{ Key: "a", Value: "b" }] })),
    ).rejects.toMatchObject({
      name: "InvalidInstanceID.NotFound",
    });
    expect((await env.ec2.send(new DescribeInstancesCommand({}))).Reservations).toEqual([]);
    await env.cloud.clock.sleep(2_000);
    expect((await describe1(env, id!)).InstanceId).toBe(id);
    await running(env, id!);
    const { ImageId } = await env.ec2.send(new CreateImageCommand({ InstanceId: id!, Name: "lagging", NoReboot: true }));
    await expect(env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).rejects.toMatchObject({
      name: "InvalidAMIID.NotFound",
    });
    await env.cloud.clock.sleep(3_000);
    expect((await env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images?.[0]?.State).toBe("pending");
  });

  it("absorbs throttling with the SDK's retries", async () => {
    const env = await setup();
    env.cloud.faults.add({ kind: "api", service: "ec2", action: "DescribeInstances", times: 2 });
    const r = await env.ec2.send(new DescribeInstancesCommand({}));
    expect(r.$metadata.attempts).toBe(3);
    expect(env.cloud.faults.list()[0]?.fired).toBe(2);
  });

  it("satisfies the SDK waiter's acceptors (success and failure) without it having to sleep", async () => {
    const env = await setup();
    const [ok, doomed] = await launch(env, { MinCount: 2, MaxCount: 2 });
    await running(env, ok!);
    const w = await waitUntilInstanceRunning({ client: env.ec2, maxWaitTime: 60 }, { InstanceIds: [ok!] });
    expect(w.state).toBe("SUCCESS");
    env.backend.terminate([doomed!]);
    await expect(waitUntilInstanceRunning({ client: env.ec2, maxWaitTime: 60 }, { InstanceIds: [doomed!] })).rejects.toThrow(
      /FAILURE/,
    );
  });
});

describe("EC2: images and snapshots", () => {
  async function runningInstance(env: Env): Promise<string> {
    const [id] = await launch(env);
    await running(env, id!);
    return id!;
  }

  it("bakes an image: pending → available with its snapshot, tags, and AMI state events", async () => {
    const env = await setup();
    const id = await runningInstance(env);
    const t0 = env.cloud.clock.now();
    const { ImageId } = await env.ec2.send(
      new CreateImageCommand({
        InstanceId: id,
        Name: "web-abc1234-20260105",
        Description: "web at abc1234",
        TagSpecifications: [
          { ResourceType: "image", Tags: [{ Key: "kiln:service", Value: "web" }] },
          { ResourceType: "snapshot", Tags: [{ Key: "kiln:service", Value: "web" }] },
        ],
      }),
    );
    const pending = (await env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!;
    expect(pending).toMatchObject({
      State: "pending",
      OwnerId: env.cloud.accountId,
      Public: false,
      SourceInstanceId: id,
      Architecture: "x86_64",
    });
    expect(pending.Tags).toEqual([{ Key: "kiln:service", Value: "web" }]);
    const snapId = pending.BlockDeviceMappings![0]!.Ebs!.SnapshotId!;
    const snap = (await env.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapId] }))).Snapshots![0]!;
    expect(snap).toMatchObject({
      State: "pending",
      Description: `Created by CreateImage(${id}) for ${ImageId}`,
      Tags: [{ Key: "kiln:service", Value: "web" }],
    });

    await until(
      env.cloud,
      async () => (await env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!.State === "available",
      30 * 60_000,
      15_000,
    );
    const took = env.cloud.clock.now() - t0;
    // 60 s reboot (NoReboot false) + 5 min ± 20 %, seen by a 15 s poll.
    expect(took).toBeGreaterThanOrEqual(60_000 + 240_000);
    expect(took).toBeLessThanOrEqual(60_000 + 360_000 + 15_000);
    const done = (await env.ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }))).Snapshots!;
    expect(done.map((s) => [s.SnapshotId, s.State, s.Progress])).toEqual([[snapId, "completed", "100%"]]);
    const amiEvents = env.events.filter((e) => e.detailType === "EC2 AMI State Change").map((e) => e.detail);
    expect(amiEvents).toEqual([
      expect.objectContaining({ ImageId, State: "pending" }),
      expect.objectContaining({ ImageId, State: "available" }),
    ]);
    const w = await waitUntilImageAvailable({ client: env.ec2, maxWaitTime: 60 }, { ImageIds: [ImageId!] });
    expect(w.state).toBe("SUCCESS");
  });

  it.each([
    ["a duplicate name", "dup", "InvalidAMIName.Duplicate", /^AMI name web-1 is already in use by AMI ami-[0-9a-f]{17}$/],
    ["a pending instance", "pending", "IncorrectInstanceState", /not in a state from which it can be imaged/],
    ["an unknown instance", "unknown", "InvalidInstanceID.NotFound", /does not exist/],
    ["a malformed name", "badname", "InvalidAMIName.Malformed", /between 3 and 128/],
  ])("CreateImage with %s fails", async (_what, kind, name, message) => {
    const env = await setup();
    const id = await runningInstance(env);
    await env.ec2.send(new CreateImageCommand({ InstanceId: id, Name: "web-1" }));
    const input =
      kind === "dup"
        ? { InstanceId: id, Name: "web-1" }
        : kind === "pending"
          ? { InstanceId: (await launch(env))[0]!, Name: "web-2" }
          : kind === "unknown"
            ? { InstanceId: "i-0123456789abcdef0", Name: "web-3" }
            : { InstanceId: id, Name: "no*stars" };
    await expect(env.ec2.send(new CreateImageCommand(input))).rejects.toMatchObject({
      name,
      message: expect.stringMatching(message),
    });
  });

  it("fails the image when the ami fault matches (snapshot in error), and the waiter reports the failure", async () => {
    const env = await setup();
    env.cloud.faults.add({ kind: "ami", mode: "fail", times: 1 });
    const id = await runningInstance(env);
    const { ImageId } = await env.ec2.send(new CreateImageCommand({ InstanceId: id, Name: "web-broken", NoReboot: true }));
    const image = await until(env.cloud, async () => {
      const i = (await env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!;
      return i.State !== "pending" && i;
    });
    expect(image.State).toBe("failed");
    expect(image.StateReason?.Code).toBe("Server.InternalError");
    const snap = (await env.ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }))).Snapshots![0]!;
    expect(snap.State).toBe("error");
    expect(env.events.filter((e) => e.detailType === "EC2 AMI State Change").at(-1)?.detail).toMatchObject({
      ImageId,
      State: "failed",
      ErrorMessage: expect.any(String),
    });
    await expect(waitUntilImageAvailable({ client: env.ec2, maxWaitTime: 60 }, { ImageIds: [ImageId!] })).rejects.toThrow(
      /FAILURE/,
    );
  });

  it("fails the image when the source is terminated during the reboot", async () => {
    const env = await setup();
    const id = await runningInstance(env);
    const { ImageId } = await env.ec2.send(new CreateImageCommand({ InstanceId: id, Name: "web-interrupted" }));
    await env.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    const image = await until(env.cloud, async () => {
      const i = (await env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!;
      return i.State !== "pending" && i;
    });
    expect(image).toMatchObject({ State: "failed", StateReason: { Code: "Client.InstanceTerminated" } });
  });

  it("describes own images by owner, tag, state and name, and paginates", async () => {
    const env = await setup();
    const id = await runningInstance(env);
    const made: string[] = [];
    for (let n = 0; n < 8; n++) {
      const { ImageId } = await env.ec2.send(new CreateImageCommand({ InstanceId: id, Name: `web-${n}`, NoReboot: true }));
      made.push(ImageId!);
    }
    await env.ec2.send(new CreateTagsCommand({ Resources: [made[3]!], Tags: [{ Key: "kiln:commit", Value: "abc1234" }] }));
    const names = async (input: DescribeImagesCommandInput) =>
      (await env.ec2.send(new DescribeImagesCommand(input))).Images!.map((i) => i.Name).sort();
    expect(await names({ Owners: ["self"], Filters: [{ Name: "tag:kiln:commit", Values: ["abc1234"] }] })).toEqual(["web-3"]);
    expect(
      await names({
        Owners: [env.cloud.accountId],
        Filters: [
          { Name: "name", Values: ["web-?"] },
          { Name: "state", Values: ["pending"] },
        ],
      }),
    ).toHaveLength(8);
    expect(await names({ Owners: ["self"], Filters: [{ Name: "state", Values: ["available"] }] })).toEqual([]);
    const pages: number[] = [];
    for await (const page of paginateDescribeImages({ client: env.ec2, pageSize: 6 }, { Owners: ["self"] }))
      pages.push(page.Images!.length);
    expect(pages).toEqual([6, 2]);
    await expect(
      env.ec2.send(new DescribeImagesCommand({ ImageIds: ["ami-0123456789abcdef0", made[0]!] })),
    ).rejects.toMatchObject({
      name: "InvalidAMIID.NotFound",
      message: "The image id '[ami-0123456789abcdef0]' does not exist",
    });
  });

  it("deregisters images but keeps their snapshots; a snapshot in use cannot be deleted", async () => {
    const env = await setup();
    const id = await runningInstance(env);
    const { ImageId } = await env.ec2.send(new CreateImageCommand({ InstanceId: id, Name: "web-old", NoReboot: true }));
    await until(env.cloud, () => env.events.some((e) => e.detail.ImageId === ImageId && e.detail.State === "available"));
    const snapId = (await env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!.BlockDeviceMappings![0]!
      .Ebs!.SnapshotId!;
    await expect(env.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapId }))).rejects.toMatchObject({
      name: "InvalidSnapshot.InUse",
      message: `The snapshot ${snapId} is currently in use by ${ImageId}`,
    });
    await env.ec2.send(new DeregisterImageCommand({ ImageId }));
    await expect(env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).rejects.toMatchObject({
      name: "InvalidAMIID.NotFound",
    });
    expect((await env.ec2.send(new DescribeImagesCommand({ Owners: ["self"] }))).Images).toEqual([]);
    await expect(env.ec2.send(new DeregisterImageCommand({ ImageId }))).rejects.toMatchObject({ name: "InvalidAMIID.NotFound" });
    expect(
      (
        await env.ec2.send(
          new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: "status", Values: ["completed"] }] }),
        )
      ).Snapshots?.map((s) => s.SnapshotId),
    ).toEqual([snapId]);
    // The name is free again.
    await env.ec2.send(new CreateImageCommand({ InstanceId: id, Name: "web-old", NoReboot: true }));
    await env.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapId }));
    await expect(env.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapId] }))).rejects.toMatchObject({
      name: "InvalidSnapshot.NotFound",
    });
    await expect(env.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapId }))).rejects.toMatchObject({
      name: "InvalidSnapshot.NotFound",
    });
    expect(env.events.filter((e) => e.detail.ImageId === ImageId).map((e) => e.detail.State)).toEqual([
      "pending",
      "available",
      "deregistered",
    ]);
  });
});

describe("EC2: tags", () => {
  it("tags and untags instances, volumes, images, snapshots and launch templates", async () => {
    const env = await setup();
    const [id] = await launch(env);
    await running(env, id!);
    const { ImageId } = await env.ec2.send(new CreateImageCommand({ InstanceId: id!, Name: "tagged", NoReboot: true }));
    const image = (await env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!;
    const snapId = image.BlockDeviceMappings![0]!.Ebs!.SnapshotId!;
    const volId = (await describe1(env, id!)).BlockDeviceMappings![0]!.Ebs!.VolumeId!;
    const lt = await env.ec2.send(
      new CreateLaunchTemplateCommand({ LaunchTemplateName: "tagged", LaunchTemplateData: { ImageId: image.ImageId } }),
    );
    const ltId = lt.LaunchTemplate!.LaunchTemplateId!;
    const resources = [id!, volId, ImageId!, snapId, ltId];
    await env.ec2.send(
      new CreateTagsCommand({
        Resources: resources,
        Tags: [
          { Key: "kiln:execution", Value: "e1" },
          { Key: "keep", Value: "" },
        ],
      }),
    );
    expect((await describe1(env, id!)).Tags).toEqual([
      { Key: "kiln:execution", Value: "e1" },
      { Key: "keep", Value: "" },
    ]);
    expect(
      (await env.ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: "tag:kiln:execution", Values: ["e1"] }] }))).Snapshots,
    ).toHaveLength(1);
    expect(
      (await env.ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [ltId] }))).LaunchTemplates![0]!.Tags,
    ).toHaveLength(2);
    // Overwrite, then delete only when the value matches.
    await env.ec2.send(new CreateTagsCommand({ Resources: [id!], Tags: [{ Key: "kiln:execution", Value: "e2" }] }));
    await env.ec2.send(new DeleteTagsCommand({ Resources: [id!], Tags: [{ Key: "kiln:execution", Value: "e1" }] }));
    expect((await describe1(env, id!)).Tags).toContainEqual({ Key: "kiln:execution", Value: "e2" });
    await env.ec2.send(new DeleteTagsCommand({ Resources: resources, Tags: [{ Key: "kiln:execution" }] }));
    expect((await env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!.Tags).toEqual([
      { Key: "keep", Value: "" },
    ]);
  });

  it.each([
    ["i-0123456789abcdef0", "InvalidInstanceID.NotFound"],
    ["ami-0123456789abcdef0", "InvalidAMIID.NotFound"],
    ["snap-0123456789abcdef0", "InvalidSnapshot.NotFound"],
    ["lt-0123456789abcdef0", "InvalidLaunchTemplateId.NotFound"],
    ["vol-0123456789abcdef0", "InvalidVolume.NotFound"],
    ["bogus-id", "InvalidID"],
  ])("CreateTags on %s fails with %s", async (resource, name) => {
    const env = await setup();
    await expect(
      env.ec2.send(new CreateTagsCommand({ Resources: [resource], Tags: [{ Key: "a", Value: "b" }] })),
    ).rejects.toMatchObject({ name });
  });

  it("refuses aws: keys and more than 50 tags", async () => {
    const env = await setup();
    const [id] = await launch(env);
    await expect(
      env.ec2.send(new CreateTagsCommand({ Resources: [id!], Tags: [{ Key: "aws:foo", Value: "x" }] })),
    ).rejects.toMatchObject({ name: "InvalidParameterValue" });
    const many = Array.from({ length: 51 }, (_, n) => ({ Key: `k${n}`, Value: "v" }));
    await expect(env.ec2.send(new CreateTagsCommand({ Resources: [id!], Tags: many }))).rejects.toMatchObject({
      name: "TagLimitExceeded",
    });
    expect(env.backend.instance(id!)!.tags.size).toBe(0);
  });
});

describe("EC2: launch templates", () => {
  async function template(env: Env) {
    const image = await baseImage(env);
    const lt = await env.ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "web",
        VersionDescription: "first",
        LaunchTemplateData: {
          ImageId: image,
          InstanceType: "t3.micro",
          IamInstanceProfile: { Name: "web-instance" },
          TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "kiln:service", Value: "web" }] }],
          MetadataOptions: { HttpTokens: "required" },
        },
        TagSpecifications: [{ ResourceType: "launch-template", Tags: [{ Key: "kiln:service", Value: "web" }] }],
      }),
    );
    return { image, id: lt.LaunchTemplate!.LaunchTemplateId!, lt };
  }

  it("creates templates with unique names and honours ClientToken", async () => {
    const env = await setup();
    const { lt, image } = await template(env);
    expect(lt.LaunchTemplate).toMatchObject({
      LaunchTemplateName: "web",
      DefaultVersionNumber: 1,
      LatestVersionNumber: 1,
      Tags: [{ Key: "kiln:service", Value: "web" }],
    });
    await expect(
      env.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: "web", LaunchTemplateData: { ImageId: image } })),
    ).rejects.toMatchObject({
      name: "InvalidLaunchTemplateName.AlreadyExistsException",
    });
    const params = { LaunchTemplateName: "api", LaunchTemplateData: { ImageId: image }, ClientToken: "tok-1" };
    const a = await env.ec2.send(new CreateLaunchTemplateCommand(params));
    const b = await env.ec2.send(new CreateLaunchTemplateCommand(params));
    expect(b.LaunchTemplate?.LaunchTemplateId).toBe(a.LaunchTemplate?.LaunchTemplateId);
    await expect(env.ec2.send(new CreateLaunchTemplateCommand({ ...params, LaunchTemplateName: "api2" }))).rejects.toMatchObject({
      name: "IdempotentParameterMismatch",
    });
    const all = await env.ec2.send(
      new DescribeLaunchTemplatesCommand({ Filters: [{ Name: "launch-template-name", Values: ["a*"] }] }),
    );
    expect(all.LaunchTemplates?.map((t) => t.LaunchTemplateName)).toEqual(["api"]);
    await expect(env.ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: ["nope"] }))).rejects.toMatchObject({
      name: "InvalidLaunchTemplateName.NotFoundException",
    });
  });

  it("versions inherit from SourceVersion, resolve $Latest/$Default, and are idempotent by ClientToken", async () => {
    const env = await setup();
    const { id } = await template(env);
    const arm = await baseImage(env, "arm64");
    // Bake-style: new version from $Latest with only the AMI (and type) changed.
    const v2 = await env.ec2.send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateId: id,
        SourceVersion: "$Latest",
        VersionDescription: "deploy-web-abc1234",
        LaunchTemplateData: { ImageId: arm, InstanceType: "t4g.micro" },
        ClientToken: "deploy-web-abc1234",
      }),
    );
    expect(v2.LaunchTemplateVersion).toMatchObject({
      VersionNumber: 2,
      DefaultVersion: false,
      VersionDescription: "deploy-web-abc1234",
    });
    expect(v2.LaunchTemplateVersion?.LaunchTemplateData).toMatchObject({
      ImageId: arm,
      InstanceType: "t4g.micro",
      IamInstanceProfile: { Name: "web-instance" },
      TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "kiln:service", Value: "web" }] }],
      MetadataOptions: { HttpTokens: "required" },
    });
    const again = await env.ec2.send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateId: id,
        SourceVersion: "$Latest",
        VersionDescription: "deploy-web-abc1234",
        LaunchTemplateData: { ImageId: arm, InstanceType: "t4g.micro" },
        ClientToken: "deploy-web-abc1234",
      }),
    );
    expect(again.LaunchTemplateVersion?.VersionNumber).toBe(2);
    // Without SourceVersion the version holds only what was given.
    const v3 = await env.ec2.send(
      new CreateLaunchTemplateVersionCommand({ LaunchTemplateName: "web", LaunchTemplateData: { InstanceType: "t3.large" } }),
    );
    expect(v3.LaunchTemplateVersion?.LaunchTemplateData).toEqual({ InstanceType: "t3.large" });

    const numbers = async (
      input: Omit<ConstructorParameters<typeof DescribeLaunchTemplateVersionsCommand>[0], "LaunchTemplateId">,
    ) =>
      (
        await env.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, ...input }))
      ).LaunchTemplateVersions!.map((v) => v.VersionNumber);
    expect(await numbers({})).toEqual([3, 2, 1]);
    expect(await numbers({ Versions: ["$Latest"] })).toEqual([3]);
    expect(await numbers({ Versions: ["$Default", "2"] })).toEqual([2, 1]);
    expect(await numbers({ MinVersion: "2", MaxVersion: "2" })).toEqual([2]);
    expect(await numbers({ Filters: [{ Name: "image-id", Values: [arm] }] })).toEqual([2]);
    expect(await numbers({ Filters: [{ Name: "is-default-version", Values: ["true"] }] })).toEqual([1]);
    const accountWide = await env.ec2.send(new DescribeLaunchTemplateVersionsCommand({ Versions: ["$Latest"] }));
    expect(accountWide.LaunchTemplateVersions?.map((v) => v.VersionNumber)).toEqual([3]);
    await expect(numbers({ Versions: ["9"] })).rejects.toMatchObject({ name: "InvalidLaunchTemplateId.VersionNotFound" });

    const mod = await env.ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: id, DefaultVersion: "2" }));
    expect(mod.LaunchTemplate).toMatchObject({ DefaultVersionNumber: 2, LatestVersionNumber: 3 });
    expect(env.backend.resolveLaunchTemplate({ name: "web", version: "$Default" })).toMatchObject({
      id,
      version: 2,
      imageId: arm,
      instanceType: "t4g.micro",
    });
    expect(env.backend.resolveLaunchTemplate({ id, version: "$Latest" })).toMatchObject({ version: 3, instanceType: "t3.large" });
    expect(() => env.backend.resolveLaunchTemplate({ id: "lt-0123456789abcdef0" })).toThrow(
      expect.objectContaining({ code: "InvalidLaunchTemplateId.NotFound" }),
    );
    expect(() => env.backend.resolveLaunchTemplate({ name: "nope" })).toThrow(
      expect.objectContaining({ code: "InvalidLaunchTemplateName.NotFoundException" }),
    );
    expect(() => env.backend.resolveLaunchTemplate({ id, version: "7" })).toThrow(
      expect.objectContaining({ code: "InvalidLaunchTemplateId.VersionNotFound" }),
    );

    const del = await env.ec2.send(new DeleteLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Versions: ["1", "2", "8"] }));
    expect(del.SuccessfullyDeletedLaunchTemplateVersions?.map((v) => v.VersionNumber)).toEqual([1]);
    expect(del.UnsuccessfullyDeletedLaunchTemplateVersions?.map((v) => [v.VersionNumber, v.ResponseError?.Code])).toEqual([
      [2, "unexpectedError"],
      [8, "launchTemplateVersionDoesNotExist"],
    ]);
    expect(await numbers({})).toEqual([3, 2]);
  });

  it("launches from a template: request fields override it, instances carry the template tags", async () => {
    const env = await setup();
    const { id, image } = await template(env);
    const r = await env.ec2.send(
      new RunInstancesCommand({
        LaunchTemplate: { LaunchTemplateId: id, Version: "$Latest" },
        InstanceType: "t3.small",
        MinCount: 1,
        MaxCount: 1,
      }),
    );
    const inst = r.Instances![0]!;
    expect(inst).toMatchObject({
      ImageId: image,
      InstanceType: "t3.small",
      IamInstanceProfile: { Arn: `arn:aws:iam::${env.cloud.accountId}:instance-profile/web-instance` },
    });
    expect(Object.fromEntries(inst.Tags!.map((t) => [t.Key, t.Value]))).toEqual({
      "kiln:service": "web",
      "aws:ec2launchtemplate:id": id,
      "aws:ec2launchtemplate:version": "1",
    });
    // The in-process contract other services use (Auto Scaling launches).
    const [sim] = env.backend.launch({
      launchTemplate: { id, version: 1 },
      subnetId: env.backend.subnets()[1]!.id,
      tags: { "aws:autoscaling:groupName": "web-green" },
      count: 1,
    });
    expect(sim).toMatchObject({ imageId: image, instanceType: "t3.micro", az: "us-east-1b", state: "pending" });
    expect(sim!.tags.get("aws:autoscaling:groupName")).toBe("web-green");
    expect(sim!.tags.get("aws:ec2launchtemplate:version")).toBe("1");
  });
});

describe("EC2: the sample app through a bake", () => {
  it("serves the baked commit on instances launched from the image", async () => {
    const env = await setup({ settings: { "app.realServers": true } });
    const [builder] = await launch(env, {
      TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "kiln:role", Value: "builder" }] }],
    });
    await running(env, builder!);
    await sampleApp(env, builder!, "install", { KILN_COMMIT: "abc1234def", KILN_SERVICE: "web" });
    await sampleApp(env, builder!, "image-test");
    const { ImageId } = await env.ec2.send(new CreateImageCommand({ InstanceId: builder!, Name: "web-abc1234def" }));
    await until(
      env.cloud,
      async () => (await env.ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!.State === "available",
      30 * 60_000,
      15_000,
    );
    await env.ec2.send(new TerminateInstancesCommand({ InstanceIds: [builder!] }));

    const [green] = await launch(env, { ImageId });
    await running(env, green!);
    const inst = env.backend.instance(green!)!;
    // The builder's runtime files (run/ is tmpfs) are not part of the image: the port is green's own.
    expect(readFileSync(join(inst.rootDir, APP_PATHS.port), "utf8").trim()).toBe(String(inst.app!.port));
    expect(JSON.parse((await inst.app!.request("/")).body)).toEqual({ commit: "abc1234def", instance: green, service: "web" });
    const res = await env.cloud.clock.hold(fetch(`http://127.0.0.1:${inst.app!.port}/`));
    expect(await env.cloud.clock.hold(res.json())).toEqual({ commit: "abc1234def", instance: green, service: "web" });
    expect((await inst.app!.request("/health")).status).toBe(503);
    const smoke = await sampleApp(env, green!, "smoke-test");
    expect(smoke.stdout).toContain("smoke-test passed");
    await sampleApp(env, green!, "service-in");
    expect((await inst.app!.request("/health")).status).toBe(200);
  });
});

describe("EC2 over real HTTP", () => {
  it("speaks the EC2 query protocol to an SDK client on a socket", async () => {
    const env = await setup({ http: true });
    const hold = <T>(p: Promise<T>) => env.cloud.clock.hold(p);
    const images = await hold(env.ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] })));
    expect(images.Images).toHaveLength(2);
    const r = await hold(
      env.ec2.send(
        new RunInstancesCommand({
          ImageId: images.Images![0]!.ImageId,
          InstanceType: images.Images![0]!.Architecture === "arm64" ? "t4g.micro" : "t3.micro",
          MinCount: 1,
          MaxCount: 1,
        }),
      ),
    );
    expect(r.Instances?.[0]?.State?.Name).toBe("pending");
    await expect(
      hold(env.ec2.send(new DescribeInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"] }))),
    ).rejects.toMatchObject({
      name: "InvalidInstanceID.NotFound",
      $metadata: { httpStatusCode: 400 },
    });
  });
});
