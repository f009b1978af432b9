import { CreateAutoScalingGroupCommand } from "@aws-sdk/client-auto-scaling";
import {
  CreateImageCommand,
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  RunInstancesCommand,
} from "@aws-sdk/client-ec2";
import { CreateStateMachineCommand, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { afterEach, describe, expect, it } from "vitest";
import { janitor, launchBuilder, pruneImages, waitBuilderReady } from "../../../lib/bake/index.ts";
import type { BakePlan } from "../../../lib/bake/types.ts";
import { attempt, type Bed, bed, instancesTagged, makePlan, poll } from "./harness.ts";

let b: Bed | undefined;
afterEach(async () => {
  await b?.stop();
  b = undefined;
});

async function readyBuilder(bb: Bed, plan: BakePlan): Promise<string> {
  const a = attempt(bb);
  const { builderId } = await launchBuilder({ plan, attempt: a }, bb.deps);
  await poll(bb, () => waitBuilderReady({ plan, attempt: a, builderId }, bb.deps));
  return builderId;
}

/** An AMI from `builderId` tagged as a complete bake of `plan` (or an incomplete one). */
async function bakedImage(bb: Bed, plan: BakePlan, builderId: string, n: number, complete = true): Promise<string> {
  const tags = [
    { Key: "kiln:service", Value: "web" },
    { Key: "kiln:role", Value: "image" },
    { Key: "kiln:execution", Value: `${plan.execution.name}-${n}` },
    { Key: "kiln:execution-arn", Value: plan.execution.arn },
    ...(complete ? [{ Key: "kiln:complete", Value: "true" }] : []),
  ];
  const r = await bb.deps.ec2.send(
    new CreateImageCommand({
      InstanceId: builderId,
      Name: `test-${n}`,
      NoReboot: true,
      TagSpecifications: [
        { ResourceType: "image", Tags: tags },
        {
          ResourceType: "snapshot",
          Tags: [
            ...tags.filter((t) => t.Key !== "kiln:role" && t.Key !== "kiln:complete"),
            { Key: "kiln:role", Value: "snapshot" },
          ],
        },
      ],
    }),
  );
  await bb.cloud.clock.sleep(60_000); // distinct creation dates
  return r.ImageId!;
}

async function registered(bb: Bed, ids: string[]): Promise<string[]> {
  const r = await bb.deps.ec2.send(new DescribeImagesCommand({ Owners: ["self"] }));
  return (r.Images ?? []).filter((i) => ids.includes(i.ImageId!) && i.State !== "deregistered").map((i) => i.ImageId!);
}

describe("PruneImages against the simulated cloud", () => {
  it.each([
    ["no group uses the launch template", false],
    ["an Auto Scaling group uses the launch template", true],
  ])("keeps the newest N, images in use and this execution's; deletes snapshots (%s)", async (_w, withGroup) => {
    b = await bed();
    const plan = { ...(await makePlan(b)), image: { ...(await makePlan(b)).image, retain: 2 } };
    const builderId = await readyBuilder(b, plan);
    const ids: string[] = [];
    for (let n = 1; n <= 6; n++) ids.push(await bakedImage(b, plan, builderId, n));
    await poll(b, async () => {
      const r = await b!.deps.ec2.send(new DescribeImagesCommand({ ImageIds: ids }));
      const done = (r.Images ?? []).every((i) => i.State === "available");
      return { status: done ? "done" : "pending", waitSeconds: 60, detail: "" } as const;
    });
    const [i1, i2, i3, i4, i5, i6] = ids as [string, string, string, string, string, string];
    await b.deps.ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "web-lt",
        LaunchTemplateData: { ImageId: i1, InstanceType: "t3.micro" },
      }),
    );
    await b.deps.ec2.send(new RunInstancesCommand({ ImageId: i2, InstanceType: "t3.micro", MinCount: 1, MaxCount: 1 }));
    if (withGroup)
      await b.deps.autoscaling.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: "web-blue",
          LaunchTemplate: { LaunchTemplateName: "web-lt", Version: "1" },
          MinSize: 0,
          MaxSize: 0,
          DesiredCapacity: 0,
          AvailabilityZones: ["us-east-1a"],
        }),
      );
    const before = await b.deps.ec2.send(
      new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: "tag:kiln:role", Values: ["snapshot"] }] }),
    );
    const r = await pruneImages({ plan, imageId: i3 }, b.deps);
    // A launch template alone protects nothing; one an Auto Scaling group uses does.
    const removed = withGroup ? [i4] : [i1, i4];
    expect(r.remove.sort()).toEqual(removed.sort());
    if (withGroup) expect(r.keep).toContainEqual({ imageId: i1, why: "used by launch template web-lt version 1" });
    expect(r.keep).toContainEqual({ imageId: i2, why: expect.stringMatching(/^run by instance i-/) });
    expect(r.keep).toContainEqual({ imageId: i3, why: "this deployment's image" });
    expect(r.keep.map((k) => k.imageId)).toEqual(expect.arrayContaining([i5, i6]));
    expect((await registered(b, ids)).sort()).toEqual(ids.filter((i) => !removed.includes(i)).sort());
    expect(r.deletedSnapshots.length).toBe(removed.length);
    const after = await b.deps.ec2.send(
      new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: "tag:kiln:role", Values: ["snapshot"] }] }),
    );
    expect((after.Snapshots ?? []).length).toBe((before.Snapshots ?? []).length - removed.length);
    // Running it again changes nothing.
    expect((await pruneImages({ plan, imageId: i3 }, b.deps)).remove).toEqual([]);
  });
});

describe("Janitor against the simulated cloud", () => {
  it("removes builders and incomplete AMIs of ended executions, never a running execution's", async () => {
    b = await bed();
    // A running execution (a long Wait) whose builder must survive.
    const sm = await b.deps.sfn.send(
      new CreateStateMachineCommand({
        name: "slow",
        roleArn: "arn:aws:iam::123456789012:role/x",
        definition: JSON.stringify({ StartAt: "W", States: { W: { Type: "Wait", Seconds: 864_000, End: true } } }),
      }),
    );
    const running = await b.deps.sfn.send(
      new StartExecutionCommand({ stateMachineArn: sm.stateMachineArn, name: "web-running" }),
    );
    const live = await makePlan(b, {}, "web-running");
    const livePlan = { ...live, tags: { ...live.tags, "kiln:execution-arn": running.executionArn! } };
    const liveBuilder = await launchBuilder({ plan: livePlan, attempt: attempt(b) }, b.deps);

    const gone = await makePlan(b, {}, "web-ended"); // an execution Step Functions does not know: ended
    const builderId = await readyBuilder(b, gone);
    const incomplete = await bakedImage(b, gone, builderId, 1, false);
    const complete = await bakedImage(b, gone, builderId, 2, true);

    const dry = await janitor({ afterHours: 0, dryRun: true }, b.deps);
    expect(dry.removed.map((a) => a.resource).sort()).toEqual([builderId, incomplete].sort());
    expect((await instancesTagged(b, "web-ended", ["running"])).length).toBe(1);

    const report = await janitor({ afterHours: 0 }, b.deps);
    expect(report.removed.map((a) => [a.kind, a.resource]).sort()).toEqual(
      [
        ["builder", builderId],
        ["image", incomplete],
      ].sort(),
    );
    expect(report.kept).toContainEqual(expect.objectContaining({ resource: liveBuilder.builderId, why: "execution is running" }));
    expect(await registered(b, [incomplete, complete])).toEqual([complete]);
    expect((await instancesTagged(b, "web-ended", ["pending", "running"])).length).toBe(0);
    expect((await instancesTagged(b, "web-running", ["pending", "running"])).length).toBe(1);

    // With a 24 h limit, a just-ended execution's leftovers stay.
    const fresh = await makePlan(b, {}, "web-fresh");
    await launchBuilder({ plan: fresh, attempt: attempt(b) }, b.deps);
    const r2 = await janitor({ afterHours: 24 }, b.deps);
    expect(r2.removed).toEqual([]);
  });
});
