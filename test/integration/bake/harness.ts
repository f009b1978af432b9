import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { DescribeImagesCommand, DescribeInstancesCommand, EC2Client, type Image, type Instance } from "@aws-sdk/client-ec2";
import { SFNClient } from "@aws-sdk/client-sfn";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { Cloud } from "../../../local/cloud/cloud.ts";
import { createCloud } from "../../../local/cloud/index.ts";
import type { FaultRule } from "../../../local/cloud/faults.ts";
import { prepare } from "../../../lib/bake/plan.ts";
import type { Attempt, BakeDeps, BakePlan, DeployInput, PollResult } from "../../../lib/bake/types.ts";
import { loadConfig } from "../../../lib/config/index.ts";

export const COMMIT = "0123456789abcdef0123456789abcdef01234567";

export interface Bed {
  cloud: Cloud;
  deps: Required<Omit<BakeDeps, "lock">> & Pick<BakeDeps, "lock">;
  stop(): Promise<void>;
}

/** A started simulated cloud (virtual time, in-process transport) and SDK clients pointed at it. */
export async function bed(
  opts: { faults?: FaultRule[]; settings?: Record<string, number | string | boolean> } = {},
): Promise<Bed> {
  const cloud = createCloud({ seed: 7, faults: opts.faults, settings: { "app.realServers": false, ...opts.settings } });
  await cloud.start({ port: false });
  const cfg = { ...cloud.clientConfig(), maxAttempts: 3 };
  const deps = {
    ec2: new EC2Client(cfg),
    ssm: new SSMClient(cfg),
    autoscaling: new AutoScalingClient(cfg),
    sfn: new SFNClient(cfg),
    clock: cloud.clock,
  };
  return { cloud, deps, stop: () => cloud.stop() };
}

export async function makePlan(b: Bed, over: Partial<DeployInput> = {}, name = "web-0123456789ab-push"): Promise<BakePlan> {
  const { plan } = await prepare(
    {
      input: { service: "web", commit: COMMIT, trigger: "push", branch: "main", repository: "example/web", ...over },
      execution: {
        name,
        arn: `arn:aws:states:us-east-1:123456789012:execution:kiln-deploy:${name}`,
        startedAt: b.cloud.clock.date().toISOString(),
      },
    },
    { ...b.deps, config: loadConfig() },
  );
  return plan;
}

export const attempt = (b: Bed, redriveCount = 0): Attempt => ({ redriveCount, startedAt: b.cloud.clock.date().toISOString() });

/**
 * Drives a polling step the way the state machine does (call, Wait `waitSeconds` on the cloud
 * clock, call again) until it reports done; bounded by `maxPolls`.
 */
export async function poll<R extends PollResult>(
  b: Bed,
  step: () => Promise<R>,
  maxPolls = 200,
): Promise<{ result: R; polls: number }> {
  for (let polls = 1; polls <= maxPolls; polls++) {
    const result = await step();
    if (result.status === "done") return { result, polls };
    await b.cloud.clock.sleep(result.waitSeconds * 1000);
  }
  throw new Error(`still pending after ${maxPolls} polls`);
}

export async function instancesTagged(
  b: Bed,
  execution: string,
  states = ["pending", "running", "stopping", "stopped", "shutting-down", "terminated"],
): Promise<Instance[]> {
  const r = await b.deps.ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: "tag:kiln:execution", Values: [execution] },
        { Name: "instance-state-name", Values: states },
      ],
    }),
  );
  return (r.Reservations ?? []).flatMap((x) => x.Instances ?? []);
}

export async function kilnImages(b: Bed): Promise<Image[]> {
  const r = await b.deps.ec2.send(
    new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "tag:kiln:service", Values: ["web"] }] }),
  );
  return r.Images ?? [];
}
