import { DescribeImagesCommand, DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { GetExecutionHistoryCommand, RedriveExecutionCommand, SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCloud } from "../../../local/cloud/index.ts";
import type { Cloud } from "../../../local/cloud/cloud.ts";
import { executionName } from "../../../lib/names.ts";
import { configureRuntime } from "../../../lib/runtime.ts";
import { executionArnFor } from "../../../lib/lock/index.ts";
import { holdLock, registerDeploy, settle } from "./engine.ts";

/**
 * The deploy state machine's bake phase end to end: the local engine runs state-machines/deploy.asl.json
 * with the real handlers as in-process Lambdas against the simulated cloud, in virtual time.
 * One cloud for the file: handlers build their SDK clients once per process, as in Lambda.
 */
let cloud: Cloud;
let sfn: SFNClient;
let ec2: EC2Client;
let machine: string;

beforeAll(async () => {
  cloud = createCloud({ seed: 11, settings: { "app.realServers": false } });
  await cloud.start({ port: false });
  configureRuntime({ clock: cloud.clock, aws: cloud.clientConfig() });
  sfn = new SFNClient(cloud.clientConfig());
  ec2 = new EC2Client(cloud.clientConfig());
  machine = await registerDeploy(cloud, sfn);
});
afterAll(async () => {
  delete process.env.KILN_LOCK_TABLE; // set by holdLock
  await cloud?.stop();
});

const commit = (n: number) => `${n.toString(16).padStart(12, "0")}${"b".repeat(28)}`;

async function start(c: string, trigger: "push" | "operator" = "push", nonce?: string) {
  const name = executionName("web", "production", c, trigger, nonce ?? "1");
  await holdLock(cloud, executionArnFor(machine, name));
  const r = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: machine,
      name,
      input: JSON.stringify({ service: "web", commit: c, trigger, branch: "main", repository: "example/web" }),
    }),
  );
  return { arn: r.executionArn!, name };
}

async function imagesOf(c: string) {
  const r = await ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "tag:kiln:commit", Values: [c] }] }));
  return (r.Images ?? []).filter((i) => i.State !== "deregistered");
}

async function liveBuilders(execution: string) {
  const r = await ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: "tag:kiln:execution", Values: [execution] },
        { Name: "tag:kiln:role", Values: ["builder"] },
        { Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped"] },
      ],
    }),
  );
  return (r.Reservations ?? []).flatMap((x) => x.Instances ?? []);
}

async function failedState(arn: string): Promise<string | undefined> {
  const h = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true, maxResults: 100 }));
  return h.events?.find((e) => e.type === "TaskStateEntered" || e.type?.endsWith("StateEntered"))?.stateEnteredEventDetails?.name;
}

describe("deploy state machine: bake phase through the local engine", () => {
  it("a push bakes a tagged, available AMI and leaves no builder; the same commit again reuses it", async () => {
    const c = commit(1);
    const first = await start(c);
    const d = await settle(cloud, sfn, first.arn);
    expect(d.status, d.cause).toBe("SUCCEEDED");
    const out = JSON.parse(d.output!);
    expect(out.reused).toBe(false);
    expect(out.imageId).toMatch(/^ami-/);
    expect(out.plan.image.name).toContain(first.name);
    const imgs = await imagesOf(c);
    expect(imgs.map((i) => i.ImageId)).toEqual([out.imageId]);
    const tags = Object.fromEntries((imgs[0]!.Tags ?? []).map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({
      "kiln:service": "web",
      "kiln:execution": first.name,
      "kiln:role": "image",
      "kiln:commit": c,
      "kiln:complete": "true",
    });
    expect(await liveBuilders(first.name)).toEqual([]);

    const second = await start(c, "operator", "again");
    const d2 = await settle(cloud, sfn, second.arn);
    expect(d2.status, d2.cause).toBe("SUCCEEDED");
    expect(JSON.parse(d2.output!)).toMatchObject({ reused: true, imageId: out.imageId });
    expect(await liveBuilders(second.name)).toEqual([]);
    expect((await imagesOf(c)).length).toBe(1);
  });

  it.each([
    [
      2,
      "install failure",
      { kind: "command", match: "sample-app install", mode: "fail", exitCode: 3, times: 1 },
      "Install",
      "kiln.StepFailed",
    ],
    [
      3,
      "image-test failure",
      { kind: "command", match: "sample-app image-test", mode: "fail", exitCode: 4, times: 1 },
      "ImageTest",
      "kiln.StepFailed",
    ],
    [4, "AMI creation failure", { kind: "ami", mode: "fail", times: 1 }, "WaitImage", "kiln.StepFailed"],
    [5, "failed builder boot", { kind: "boot", mode: "fail", times: 1 }, "WaitBuilderReady", "kiln.StepFailed"],
    [6, "SSM agent offline", { kind: "ssm-agent" }, "WaitBuilderReady", "kiln.Timeout"],
  ] as const)(
    "#%i %s fails at its step; a redrive ends with exactly one AMI and no builder",
    async (n, _what, fault, step, error) => {
      const c = commit(n);
      const id = cloud.faults.add({ ...fault });
      const run = await start(c);
      const d = await settle(cloud, sfn, run.arn);
      expect(d.status).toBe("FAILED");
      expect(d.error).toBe(error);
      expect(await failedState(run.arn)).toBe(step);
      cloud.faults.remove(id);
      await sfn.send(new RedriveExecutionCommand({ executionArn: run.arn }));
      const d2 = await settle(cloud, sfn, run.arn);
      expect(d2.status, d2.cause).toBe("SUCCEEDED");
      expect(d2.redriveCount).toBe(1);
      const imgs = await imagesOf(c);
      expect(imgs.map((i) => i.State)).toEqual(["available"]);
      expect(await liveBuilders(run.name)).toEqual([]);
    },
  );

  it("a Lambda that crashes after doing its work is retried by the state machine and adopts what it made", async () => {
    const c = commit(7);
    const faults = ["launch-builder", "install", "create-image"].map((f) =>
      cloud.faults.add({ kind: "lambda", function: `kiln-test-${f}`, mode: "crash-after", times: 1 }),
    );
    const run = await start(c);
    const d = await settle(cloud, sfn, run.arn);
    for (const f of faults) cloud.faults.remove(f);
    expect(d.status, d.cause).toBe("SUCCEEDED");
    const r = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "tag:kiln:execution", Values: [run.name] }] }));
    expect((r.Reservations ?? []).flatMap((x) => x.Instances ?? []).length).toBe(1);
    expect((await imagesOf(c)).length).toBe(1);
    const h = await sfn.send(new GetExecutionHistoryCommand({ executionArn: run.arn, maxResults: 1000 }));
    expect(h.events!.filter((e) => e.type === "TaskFailed").length).toBeGreaterThanOrEqual(3);
  });
});
