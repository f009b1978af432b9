import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeImagesCommand, DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { GetParameterCommand } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../../lib/clock.ts";
import { acquireLock, executionArnFor, recordFailure } from "../../../lib/lock/index.ts";
import { type RotationDeps, rotate } from "../../../lib/rotation/index.ts";
import { ABORT_SM, DEPLOY_SM, type Dynamo, FakeSfn, startDynamo } from "../lock/fakes.ts";

const DAY = 86_400_000;
const T0 = Date.parse("2026-01-20T03:00:00Z");
const COMMIT = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
const PARAM = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

interface World {
  fleetBase?: string;
  newestBase: string;
  launchedDaysAgo: number;
  groups: number;
}

function fakes(w: World, now: number) {
  const autoscaling = {
    send: async (cmd: unknown) => {
      if (!(cmd instanceof DescribeAutoScalingGroupsCommand)) throw new Error("unexpected");
      const groups = [
        {
          AutoScalingGroupName: "kiln-web-0d1a26e-abcd",
          DesiredCapacity: 2,
          CreatedTime: new Date(now - w.launchedDaysAgo * DAY),
          Instances: [
            { InstanceId: "i-0aaa", LifecycleState: "InService" },
            { InstanceId: "i-0bbb", LifecycleState: "InService" },
          ],
          Tags: [
            { Key: "kiln:service", Value: "web" },
            { Key: "kiln:commit", Value: COMMIT },
            { Key: "kiln:image", Value: "ami-0fleet000000000" },
          ],
        },
        // Blue kept for fast rollback: scaled to 0, not live.
        {
          AutoScalingGroupName: "kiln-web-old",
          DesiredCapacity: 0,
          Instances: [],
          Tags: [{ Key: "kiln:service", Value: "web" }],
        },
      ];
      return { AutoScalingGroups: groups.slice(0, w.groups === 0 ? 0 : 2) };
    },
  };
  const ec2 = {
    send: async (cmd: unknown) => {
      if (cmd instanceof DescribeInstancesCommand) {
        return {
          Reservations: [
            {
              Instances: [
                { InstanceId: "i-0aaa", ImageId: "ami-0fleet000000000", LaunchTime: new Date(now - w.launchedDaysAgo * DAY) },
                { InstanceId: "i-0bbb", ImageId: "ami-0fleet000000000", LaunchTime: new Date(now - 1 * DAY) },
              ],
            },
          ],
        };
      }
      if (cmd instanceof DescribeImagesCommand) {
        return {
          Images: [{ ImageId: "ami-0fleet000000000", Tags: w.fleetBase ? [{ Key: "kiln:base-ami", Value: w.fleetBase }] : [] }],
        };
      }
      throw new Error("unexpected");
    },
  };
  const ssm = {
    send: async (cmd: unknown) => {
      if (!(cmd instanceof GetParameterCommand)) throw new Error("unexpected");
      return { Parameter: { Name: PARAM, Value: w.newestBase, Type: "String", Version: 7 } };
    },
  };
  return { autoscaling, ec2, ssm };
}

describe("rotation", () => {
  let dyn: Dynamo;
  let sfn: FakeSfn;
  let clock: VirtualClock;
  let table: string;
  beforeAll(async () => {
    dyn = await startDynamo();
  });
  afterAll(async () => dyn?.stop());
  beforeEach(async () => {
    sfn = new FakeSfn();
    clock = new VirtualClock(T0);
    table = await dyn.newTable();
  });
  const deps = (w: World): RotationDeps => ({
    ddb: dyn.ddb,
    table,
    clock,
    sfn,
    deployStateMachineArn: DEPLOY_SM,
    abortStateMachineArn: ABORT_SM,
    ...fakes(w, T0),
    service: { baseAmi: { ssmParameter: PARAM }, maxInstanceAgeDays: 14 },
  });

  it.each<[string, World, RegExp]>([
    [
      "base unchanged, fleet young",
      { fleetBase: "ami-0base1", newestBase: "ami-0base1", launchedDaysAgo: 3, groups: 1 },
      /base AMI unchanged \(ami-0base1\) and the oldest instance is 3 days old \(max 14\)/,
    ],
    ["base unknown, fleet young", { newestBase: "ami-0base1", launchedDaysAgo: 3, groups: 1 }, /no kiln:base-ami tag/],
    ["no live fleet", { newestBase: "ami-0base1", launchedDaysAgo: 3, groups: 0 }, /no live fleet/],
  ])("skips: %s", async (_, w, reason) => {
    const r = await rotate({ service: "web", environment: "production" }, deps(w));
    expect(r).toMatchObject({ action: "skipped", reason: expect.stringMatching(reason) });
    expect(sfn.starts).toHaveLength(0);
  });

  it.each<[string, World, RegExp]>([
    [
      "base AMI changed",
      { fleetBase: "ami-0base1", newestBase: "ami-0base2", launchedDaysAgo: 3, groups: 1 },
      /base AMI changed ami-0base1 → ami-0base2/,
    ],
    [
      "fleet too old",
      { fleetBase: "ami-0base1", newestBase: "ami-0base1", launchedDaysAgo: 15, groups: 1 },
      /oldest instance is 15 days old \(max 14\)/,
    ],
    ["exactly max age", { fleetBase: "ami-0base1", newestBase: "ami-0base1", launchedDaysAgo: 14, groups: 1 }, /14 days old/],
  ])("starts: %s", async (_, w, reason) => {
    const r = await rotate({ service: "web", environment: "production" }, deps(w));
    expect(r).toMatchObject({ action: "started", reason: expect.stringMatching(reason) });
    const name = `web-production-${COMMIT.slice(0, 12)}-rotation-1`;
    expect(r.executionArn).toBe(executionArnFor(DEPLOY_SM, name));
    expect(sfn.starts).toHaveLength(1);
    expect(JSON.parse(sfn.starts[0]!.input)).toEqual({
      service: "web",
      environment: "production",
      commit: COMMIT,
      trigger: "rotation",
      requestedBy: "schedule",
      seq: 1,
    });
  });

  it("never interrupts a running deployment", async () => {
    sfn.executions.set(executionArnFor(DEPLOY_SM, "running"), {
      executionArn: executionArnFor(DEPLOY_SM, "running"),
      stateMachineArn: DEPLOY_SM,
      name: "running",
      input: "{}",
      status: "RUNNING",
    });
    await acquireLock(
      { service: "web", environment: "production", executionArn: executionArnFor(DEPLOY_SM, "running"), mayTakeFree: true },
      deps({ newestBase: "x", launchedDaysAgo: 0, groups: 1 }),
    );
    const r = await rotate(
      { service: "web", environment: "production" },
      deps({ fleetBase: "ami-0base1", newestBase: "ami-0base2", launchedDaysAgo: 30, groups: 1 }),
    );
    expect(r).toMatchObject({ action: "skipped", reason: expect.stringMatching(/in progress.*never interrupts/) });
    expect(sfn.starts).toHaveLength(0);
  });

  it("does not roll over a failed, unresolved deployment", async () => {
    const failed = executionArnFor(DEPLOY_SM, "failed");
    sfn.executions.set(failed, {
      executionArn: failed,
      stateMachineArn: DEPLOY_SM,
      name: "failed",
      input: "{}",
      status: "FAILED",
    });
    const d = deps({ fleetBase: "ami-0base1", newestBase: "ami-0base2", launchedDaysAgo: 30, groups: 1 });
    await acquireLock({ service: "web", environment: "production", executionArn: failed, mayTakeFree: true }, d);
    await recordFailure({ service: "web", environment: "production" }, failed, "FAILED", d);
    await expect(rotate({ service: "web", environment: "production" }, d)).resolves.toMatchObject({
      action: "skipped",
      reason: expect.stringMatching(/failed and is unresolved/),
    });
  });

  it("a second run the same day starts nothing new", async () => {
    const w = { fleetBase: "ami-0base1", newestBase: "ami-0base2", launchedDaysAgo: 3, groups: 1 };
    const first = await rotate({ service: "web", environment: "production" }, deps(w));
    sfn.end(first.executionArn!, "SUCCEEDED");
    // The deployment ended without the fleet tags changing in this fake; the lock is released by ReleaseLock.
    const { releaseLock } = await import("../../../lib/lock/index.ts");
    await releaseLock({ service: "web", environment: "production", executionArn: first.executionArn! }, deps(w));
    await expect(rotate({ service: "web", environment: "production" }, deps(w))).resolves.toMatchObject({
      action: "skipped",
      reason: expect.stringMatching(/already rotated today/),
    });
    expect(sfn.starts).toHaveLength(1);
  });
});
