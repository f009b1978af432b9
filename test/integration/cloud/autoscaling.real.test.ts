/**
 * Simulated Auto Scaling with the real simulated EC2 and ELBv2 (sample app answering health checks
 * in process), in virtual time, through the real SDK clients: the blue/green-relevant paths end to end.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeScalingActivitiesCommand,
  type Instance,
  SetDesiredCapacityCommand,
} from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateCommand, DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { afterEach, describe, expect, it } from "vitest";
import { APP_PATHS } from "../../../local/app/server.ts";
import { Cloud } from "../../../local/cloud/cloud.ts";
import type { InstanceStateEvent } from "../../../local/cloud/contracts.ts";
import { registerAutoScaling } from "../../../local/cloud/services/autoscaling/index.ts";
import { registerCloudWatch } from "../../../local/cloud/services/cloudwatch/index.ts";
import { registerEc2 } from "../../../local/cloud/services/ec2/index.ts";
import { registerElbv2 } from "../../../local/cloud/services/elbv2/index.ts";

let cloud: Cloud | undefined;
afterEach(async () => {
  await cloud?.stop();
  cloud = undefined;
});

function writeAppFile(rootDir: string, path: string, value: string): void {
  const file = join(rootDir, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${value}\n`);
}

async function until<T>(
  c: Cloud,
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  withinMs = 900_000,
): Promise<T> {
  const deadline = c.clock.now() + withinMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (c.clock.now() >= deadline) throw new Error(`timed out after ${withinMs} ms of virtual time waiting for ${what}`);
    await c.clock.sleep(1_000);
  }
}

describe("Auto Scaling with the simulated EC2 and ELBv2", () => {
  it("launches from a launch template, serves through the target group, drains on scale-in, replaces ELB-unhealthy instances", async () => {
    cloud = new Cloud({ seed: 11, settings: { "app.realServers": false, "elbv2.listen": false } });
    const c = cloud;
    const ec2 = registerEc2(c);
    registerElbv2(c);
    registerCloudWatch(c);
    registerAutoScaling(c);
    await c.start({ port: false });
    const cfg = c.clientConfig();
    const ec2c = new EC2Client(cfg);
    const elb = new ElasticLoadBalancingV2Client(cfg);
    const asg = new AutoScalingClient(cfg);

    // "User data": every instance of the group installs the app and services itself in once running.
    const events: { at: number; id: string; to: string }[] = [];
    c.bus.on("instance-state", (e: InstanceStateEvent) => {
      events.push({ at: c.clock.now(), id: e.instance.id, to: e.to });
      if (e.to === "running" && e.instance.tags.get("aws:autoscaling:groupName") === "web") {
        writeAppFile(e.instance.rootDir, APP_PATHS.commit, "abc1234");
        writeAppFile(e.instance.rootDir, APP_PATHS.service, "web");
        writeAppFile(e.instance.rootDir, APP_PATHS.inService, "");
      }
    });

    const subnets = ec2.subnets();
    const lt = await ec2c.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "web",
        LaunchTemplateData: { ImageId: ec2.baseImages()[0]!.imageId, InstanceType: "t3.micro" },
      }),
    );
    const lb = (await elb.send(new CreateLoadBalancerCommand({ Name: "web", Subnets: subnets.map((s) => s.id) })))
      .LoadBalancers![0]!;
    const tg = (
      await elb.send(
        new CreateTargetGroupCommand({
          Name: "web-green",
          Protocol: "HTTP",
          Port: 80,
          VpcId: subnets[0]!.vpcId,
          HealthCheckPath: "/health",
          HealthCheckIntervalSeconds: 10,
        }),
      )
    ).TargetGroups![0]!;
    const tgArn = tg.TargetGroupArn!;
    await elb.send(
      new ModifyTargetGroupAttributesCommand({
        TargetGroupArn: tgArn,
        Attributes: [{ Key: "deregistration_delay.timeout_seconds", Value: "60" }],
      }),
    );
    await elb.send(
      new CreateListenerCommand({
        LoadBalancerArn: lb.LoadBalancerArn,
        Protocol: "HTTP",
        Port: 80,
        DefaultActions: [{ Type: "forward", TargetGroupArn: tgArn }],
      }),
    );

    await asg.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: "web",
        LaunchTemplate: { LaunchTemplateId: lt.LaunchTemplate!.LaunchTemplateId, Version: "$Latest" },
        MinSize: 0,
        MaxSize: 4,
        DesiredCapacity: 2,
        VPCZoneIdentifier: subnets.map((s) => s.id).join(","),
        TargetGroupARNs: [tgArn],
        HealthCheckType: "ELB",
        HealthCheckGracePeriod: 60,
        Tags: [{ Key: "kiln:service", Value: "web", PropagateAtLaunch: true }],
      }),
    );
    const group = async () =>
      (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["web"] }))).AutoScalingGroups![0]!;
    const inService = (n: number) => async () => {
      const list: Instance[] = (await group()).Instances ?? [];
      return list.length === n && list.every((i) => i.LifecycleState === "InService") ? list : undefined;
    };
    const targets = async () =>
      Object.fromEntries(
        ((await elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }))).TargetHealthDescriptions ?? []).map((d) => [
          d.Target!.Id!,
          d.TargetHealth!.State!,
        ]),
      );

    const two = await until(c, "two InService", inService(2));
    expect(new Set(two.map((i) => i.AvailabilityZone)).size).toBe(2);
    await until(c, "both targets healthy", async () => {
      const t = await targets();
      return two.every((i) => t[i.InstanceId!] === "healthy");
    });
    // Provenance tags on the EC2 side, found by the tag Run Command targets use.
    const described = await ec2c.send(
      new DescribeInstancesCommand({ Filters: [{ Name: "tag:aws:autoscaling:groupName", Values: ["web"] }] }),
    );
    const tagged = (described.Reservations ?? []).flatMap((r) => r.Instances ?? []);
    expect(tagged.map((i) => i.InstanceId).sort()).toEqual(two.map((i) => i.InstanceId).sort());
    expect(Object.fromEntries((tagged[0]!.Tags ?? []).map((t) => [t.Key, t.Value]))).toMatchObject({
      "aws:ec2launchtemplate:id": lt.LaunchTemplate!.LaunchTemplateId,
      "aws:ec2launchtemplate:version": "1",
      "kiln:service": "web",
    });

    // Scale-in: the victim drains for the 60 s deregistration delay before EC2 terminates it.
    const t0 = c.clock.now();
    await asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 1 }));
    const victim = await until(
      c,
      "a Terminating instance",
      async () => (await group()).Instances?.find((i) => i.LifecycleState === "Terminating")?.InstanceId,
    );
    expect((await targets())[victim]).toBe("draining");
    const [survivor] = await until(c, "one InService", inService(1));
    const shutdown = events.find((e) => e.id === victim && e.to === "shutting-down")!;
    expect(shutdown.at - t0).toBeGreaterThanOrEqual(60_000);
    expect(shutdown.at - t0).toBeLessThan(60_000 + 1_000);
    expect(ec2.instance(victim)?.state).toBe("terminated");

    // The survivor stops serving: ELB marks it unhealthy, Auto Scaling replaces it (grace period long past).
    rmSync(join(ec2.instance(survivor!.InstanceId!)!.rootDir, APP_PATHS.inService));
    await until(c, "survivor unhealthy in ELB", async () => (await targets())[survivor!.InstanceId!] === "unhealthy");
    const [replacement] = await until(c, "a replacement InService", async () => {
      const list = await inService(1)();
      return list && list[0]!.InstanceId !== survivor!.InstanceId ? list : undefined;
    });
    await until(c, "replacement healthy", async () => (await targets())[replacement!.InstanceId!] === "healthy");
    const acts = (await asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }))).Activities ?? [];
    expect(acts.find((a) => a.Description === `Terminating EC2 instance: ${survivor!.InstanceId}`)?.Cause).toMatch(
      /ELB system health check failure/,
    );
    expect(acts.every((a) => a.StatusCode === "Successful")).toBe(true);
    const world = c.world() as { autoscaling: { groups: { name: string; instances: unknown[] }[] } };
    expect(world.autoscaling.groups[0]).toMatchObject({
      name: "web",
      desiredCapacity: 1,
      instances: [{ id: replacement!.InstanceId, lifecycleState: "InService", health: "Healthy" }],
    });
  });
});
