import { afterEach, describe, expect, it } from "vitest";
import {
  createImage,
  findImage,
  imageTest,
  install,
  launchBuilder,
  tagImage,
  terminateBuilder,
  waitBuilderReady,
  waitImage,
} from "../../../lib/bake/index.ts";
import { attempt, type Bed, bed, instancesTagged, kilnImages, makePlan, poll } from "./harness.ts";

let b: Bed | undefined;
afterEach(async () => {
  await b?.stop();
  b = undefined;
});

describe("bake steps against the simulated cloud", () => {
  it("bakes a tagged, available AMI and leaves no builder", async () => {
    b = await bed();
    const plan = await makePlan(b);
    expect(plan.baseAmi.source).toBe("ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64");
    expect(await findImage({ plan }, b.deps)).toEqual({ found: false });
    const a = attempt(b);
    const launched = await launchBuilder({ plan, attempt: a }, b.deps);
    const ready = await poll(b, () => waitBuilderReady({ plan, attempt: a, builderId: launched.builderId }, b!.deps));
    expect(ready.polls).toBeLessThanOrEqual(6);
    const inst = await poll(b, () => install({ plan, attempt: a, builderId: launched.builderId }, b!.deps));
    expect(inst.result.detail).toMatch(/succeeded/);
    await poll(b, () => imageTest({ plan, attempt: a, builderId: launched.builderId }, b!.deps));
    const created = await createImage({ plan, attempt: a, builderId: launched.builderId }, b.deps);
    const img = await poll(b, () =>
      waitImage({ plan, attempt: a, builderId: launched.builderId, imageId: created.imageId }, b!.deps),
    );
    // First check at 80 % of the expected 6 min, then every 5 % of it: the AMI's ±20 % jitter costs a few more.
    expect(img.polls).toBeLessThanOrEqual(10);
    const tagged = await tagImage({ plan, imageId: created.imageId }, b.deps);
    expect(tagged.tags).toMatchObject({
      "kiln:service": "web",
      "kiln:execution": plan.execution.name,
      "kiln:role": "image",
      "kiln:commit": plan.commit,
      "kiln:base-ami": plan.baseAmi.imageId,
      "kiln:complete": "true",
    });
    expect((await terminateBuilder({ plan }, b.deps)).terminated).toEqual([launched.builderId]);
    expect(await instancesTagged(b, plan.execution.name, ["pending", "running"])).toEqual([]);
    const found = await findImage({ plan }, b.deps);
    expect(found).toMatchObject({ found: true, imageId: created.imageId });
    const imgs = await kilnImages(b);
    expect(imgs.map((i) => i.State)).toEqual(["available"]);
  });
});

/** Runs a step expecting a kiln error; returns it. */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the step to fail");
}

async function readyBuilder(bb: Bed, plan: Awaited<ReturnType<typeof makePlan>>, a = attempt(bb)) {
  const { builderId } = await launchBuilder({ plan, attempt: a }, bb.deps);
  await poll(bb, () => waitBuilderReady({ plan, attempt: a, builderId }, bb.deps));
  return builderId;
}

describe("reconciling after crashes and retries", () => {
  it("a crash between RunInstances and the step's return: the retry launches no second builder", async () => {
    b = await bed();
    const plan = await makePlan(b);
    const realSend = b.deps.ec2.send.bind(b.deps.ec2);
    const crashing = Object.create(b.deps.ec2) as typeof b.deps.ec2;
    // `any`: test double around the SDK client
    crashing.send = (async (cmd: any) => {
      const out = await realSend(cmd);
      if (cmd.constructor.name === "RunInstancesCommand") throw new Error("Lambda crashed after RunInstances");
      return out;
    }) as never;
    await expect(launchBuilder({ plan, attempt: attempt(b) }, { ...b.deps, ec2: crashing })).rejects.toThrow(/crashed/);
    const again = await launchBuilder({ plan, attempt: attempt(b) }, b.deps);
    expect(again.adopted).toBe(true);
    const all = await instancesTagged(b, plan.execution.name);
    expect(all.map((i) => i.InstanceId)).toEqual([again.builderId]);
    // Even if the tag lookup missed it, the ClientToken would return the same instance.
    expect(all[0]!.ClientToken).toBe(plan.builder.clientToken);
  });

  it("Install adopts the command it already sent; CreateImage adopts its AMI by name", async () => {
    b = await bed();
    const plan = await makePlan(b);
    const a = attempt(b);
    const builderId = await readyBuilder(b, plan, a);
    const first = await install({ plan, attempt: a, builderId }, b.deps);
    const second = await install({ plan, attempt: a, builderId }, b.deps);
    expect(second.commandId).toBe(first.commandId);
    expect([first.adopted, second.adopted]).toEqual([false, true]);
    await poll(b, () => install({ plan, attempt: a, builderId }, b!.deps));
    const c1 = await createImage({ plan, attempt: a, builderId }, b.deps);
    const c2 = await createImage({ plan, attempt: a, builderId }, b.deps);
    expect(c2).toEqual({ imageId: c1.imageId, adopted: true });
    expect((await kilnImages(b)).length).toBe(1);
  });

  it("TerminateBuilder tolerates an already terminated builder", async () => {
    b = await bed();
    const plan = await makePlan(b);
    const { builderId } = await launchBuilder({ plan, attempt: attempt(b) }, b.deps);
    expect((await terminateBuilder({ plan }, b.deps)).terminated).toEqual([builderId]);
    await b.cloud.clock.sleep(120_000);
    expect((await terminateBuilder({ plan }, b.deps)).terminated).toEqual([]);
  });
});

describe("failures fail the step with a cause an operator can act on; redrive recovers", () => {
  it("throttling that outlives the SDK's retries is kiln.Throttled; a short burst is absorbed", async () => {
    b = await bed();
    const plan = await makePlan(b);
    b.cloud.faults.add({ kind: "api", service: "ec2", action: "RunInstances", times: 10 });
    const err = await failure(launchBuilder({ plan, attempt: attempt(b) }, b.deps));
    expect(err.name).toBe("kiln.Throttled");
    expect(err.message).toMatch(/LaunchBuilder: AWS is throttling.*RequestLimitExceeded/);
    b.cloud.faults.clear();
    b.cloud.faults.add({ kind: "api", service: "ec2", action: "RunInstances", times: 1 });
    const ok = await launchBuilder({ plan, attempt: attempt(b) }, b.deps);
    expect(ok.builderId).toMatch(/^i-/);
    expect((await instancesTagged(b, plan.execution.name)).length).toBe(1);
  });

  it("SSM agent offline: WaitBuilderReady times out naming the builder; a redrive after the fix proceeds", async () => {
    b = await bed();
    const plan = await makePlan(b);
    const rule = b.cloud.faults.add({ kind: "ssm-agent" });
    const a0 = attempt(b);
    const { builderId } = await launchBuilder({ plan, attempt: a0 }, b.deps);
    const err = await failure(poll(b, () => waitBuilderReady({ plan, attempt: a0, builderId }, b!.deps)));
    expect(err.name).toBe("kiln.Timeout");
    expect(err.message).toContain(builderId);
    expect(err.message).toMatch(/SSM agent (not registered|ConnectionLost).*instance profile \(kiln-builder\)/);
    b.cloud.faults.remove(rule);
    const r = await poll(b, () => waitBuilderReady({ plan, attempt: attempt(b!, 1), builderId }, b!.deps));
    expect(r.result.builderId).toBe(builderId);
  });

  it.each([
    ["Install", "sample-app install", install],
    ["ImageTest", "sample-app image-test", imageTest],
  ] as const)(
    "%s failure keeps the builder and names instance, command and stderr; redrive runs it again",
    async (step, match, fn) => {
      b = await bed();
      const plan = await makePlan(b);
      const a0 = attempt(b);
      const builderId = await readyBuilder(b, plan, a0);
      const rule = b.cloud.faults.add({
        kind: "command",
        match,
        mode: "fail",
        exitCode: 7,
        message: "npm ERR! could not resolve dependency",
      });
      if (step === "ImageTest") await poll(b, () => install({ plan, attempt: a0, builderId }, b!.deps));
      const err = await failure(poll(b, () => fn({ plan, attempt: a0, builderId }, b!.deps)));
      expect(err.name).toBe("kiln.StepFailed");
      expect(err.message).toContain(`${step} failed on builder ${builderId}, command `);
      expect(err.message).toMatch(/exit code 7/);
      expect(err.message).toMatch(/stderr \(tail\):\nnpm ERR! could not resolve dependency/);
      // A retry of the same attempt reports the same failure instead of running the script again.
      expect((await failure(fn({ plan, attempt: a0, builderId }, b.deps))).message).toBe(err.message);
      expect((await instancesTagged(b, plan.execution.name, ["running"])).map((i) => i.InstanceId)).toEqual([builderId]);
      b.cloud.faults.remove(rule);
      const a1 = attempt(b, 1);
      const r = await poll(b, () => fn({ plan, attempt: a1, builderId }, b!.deps));
      expect(r.result.commandId).not.toBe(/command (\S+)/.exec(err.message)?.[1]);
    },
  );

  it("AMI creation failure: WaitImage fails keeping the builder; a redrive replaces the failed AMI (one AMI in the end)", async () => {
    b = await bed();
    const plan = await makePlan(b);
    const a0 = attempt(b);
    const builderId = await readyBuilder(b, plan, a0);
    await poll(b, () => install({ plan, attempt: a0, builderId }, b!.deps));
    b.cloud.faults.add({ kind: "ami", mode: "fail", times: 1 });
    const { imageId } = await createImage({ plan, attempt: a0, builderId }, b.deps);
    const err = await failure(poll(b, () => waitImage({ plan, attempt: a0, builderId, imageId }, b!.deps)));
    expect(err.name).toBe("kiln.StepFailed");
    expect(err.message).toContain(`AMI ${imageId} (${plan.image.name}) is failed`);
    expect(err.message).toContain(`builder ${builderId} is kept`);
    const a1 = attempt(b, 1);
    // As the state machine does: the next poll gets the image id the previous one returned.
    let current = imageId;
    const r = await poll(b, async () => {
      const s = await waitImage({ plan, attempt: a1, builderId, imageId: current }, b!.deps);
      current = s.imageId;
      return s;
    });
    expect(r.result.imageId).not.toBe(imageId);
    await tagImage({ plan, attempt: a1, imageId: r.result.imageId }, b.deps);
    const imgs = (await kilnImages(b)).filter((i) => i.State !== "deregistered");
    expect(imgs.map((i) => [i.ImageId, i.State])).toEqual([[r.result.imageId, "available"]]);
  });

  it("a builder that died in an earlier attempt is replaced on redrive, with a fresh ClientToken", async () => {
    b = await bed();
    const plan = await makePlan(b);
    b.cloud.faults.add({ kind: "boot", mode: "fail", times: 1 });
    const a0 = attempt(b);
    const { builderId } = await launchBuilder({ plan, attempt: a0 }, b.deps);
    const err = await failure(poll(b, () => waitBuilderReady({ plan, attempt: a0, builderId }, b!.deps)));
    expect(err.name).toBe("kiln.StepFailed");
    expect(err.message).toContain(`builder ${builderId} is`);
    let current = builderId;
    const a1 = attempt(b, 1);
    const r = await poll(b, async () => {
      const s = await waitBuilderReady({ plan, attempt: a1, builderId: current }, b!.deps);
      current = s.builderId;
      return s;
    });
    expect(r.result.builderId).not.toBe(builderId);
    expect((await instancesTagged(b, plan.execution.name, ["running"])).map((i) => i.InstanceId)).toEqual([r.result.builderId]);
  });
});
