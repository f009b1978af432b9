/**
 * Nothing left behind (issue 15): two deployments leave a retired fleet (the second retires the first green; the seed fleet it replaced is gone) and an unused
 * launch-template version; inside the window the janitor keeps them (the rollback target) and
 * `kiln leaks` lists nothing of them; past every window the janitor deletes them, a second run
 * deletes nothing more, and `kiln leaks` exits 0.
 */
import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeLaunchTemplatesCommand, DescribeLaunchTemplateVersionsCommand } from "@aws-sdk/client-ec2";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stackTarget } from "../../local/cli/target.ts";
import { runCli } from "../cli/run-cli.ts";
import { bootE2E, commitOf, type E2E, settle, startDeploy } from "../support/stack.ts";
import { leftAfterWindows } from "../support/invariants.ts";
import { loadConfig } from "../../lib/config/index.ts";

let e: E2E;
beforeAll(async () => {
  e = await bootE2E({});
}, 120_000);
afterAll(async () => {
  await e?.stack.stop();
});

async function janitor(): Promise<{
  removed: { kind: string; resource: string; why: string }[];
  kept: { kind: string; resource: string; why: string }[];
}> {
  const r = await new LambdaClient(e.stack.cloud.clientConfig()).send(
    new InvokeCommand({ FunctionName: e.stack.info().functions.janitor, Payload: Buffer.from("{}") }),
  );
  const out = JSON.parse(Buffer.from(r.Payload ?? new Uint8Array()).toString("utf8"));
  if (r.FunctionError) throw new Error(`janitor failed: ${out.errorType}: ${out.errorMessage}`);
  return out;
}

describe("janitor: retired fleets and unused launch-template versions", () => {
  it("keeps them inside the window, deletes them after it, once", async () => {
    for (const n of [1, 2]) {
      const d = await startDeploy(e, commitOf(n));
      expect((await settle(e, d.arn)).status).toBe("SUCCEEDED");
    }
    const inside = await janitor();
    expect(inside.removed.filter((a) => a.kind === "retired-fleet")).toEqual([]);
    expect(inside.kept.filter((a) => a.kind === "retired-fleet").length).toBe(1);
    expect(inside.kept.find((a) => a.kind === "retired-fleet")!.why).toMatch(/inside its fast-rollback window/);
    const listed = await runCli(["leaks", "--json"], stackTarget(e.stack));
    expect(JSON.parse(listed.out).filter((a: { kind: string }) => a.kind === "retired-fleet")).toEqual([]);

    const retired = inside.kept.find((a) => a.kind === "retired-fleet")!.resource;

    // Past every window (the hourly schedule runs the janitor while the clock advances, then once more).
    const afterMs = loadConfig().janitor.afterHours * 3_600_000;
    const left = await leftAfterWindows(e.stack.cloud, "web", janitor, afterMs);
    expect(left).toEqual([]);
    const gone = await e.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [retired] }));
    expect(gone.AutoScalingGroups ?? []).toEqual([]);
    const second = await janitor();
    expect(second.removed.filter((a) => a.kind === "launch-template-version" || a.kind === "retired-fleet")).toEqual([]);
    const clean = await runCli(["leaks"], stackTarget(e.stack));
    expect(clean.code, clean.out + clean.err).toBe(0);
    expect(clean.out).toMatch(/no leaks/);
  }, 300_000);

  it("deletes a retired fleet's launch-template version in the run that deletes the fleet, young as it is", async () => {
    const names: string[] = [];
    for (const n of [3, 4]) {
      const d = await startDeploy(e, commitOf(n));
      names.push(d.name);
      expect((await settle(e, d.arn)).status).toBe("SUCCEEDED");
    }
    const versionsOf = async (execution: string) => {
      const lt = await e.ec2.send(
        new DescribeLaunchTemplatesCommand({ Filters: [{ Name: "tag-key", Values: ["kiln:service"] }] }),
      );
      const out: number[] = [];
      for (const t of lt.LaunchTemplates ?? []) {
        const v = await e.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: t.LaunchTemplateId }));
        for (const x of v.LaunchTemplateVersions ?? [])
          if (x.VersionDescription === `kiln ${execution}`) out.push(x.VersionNumber!);
      }
      return out;
    };
    expect((await versionsOf(names[0]!)).length).toBe(1);
    // Past the fast-rollback window (60 min), far inside the janitor's age limit for versions.
    await e.stack.cloud.clock.sleep(65 * 60_000);
    const run = await janitor();
    const groups = await e.autoscaling.send(new DescribeAutoScalingGroupsCommand({}));
    const retiredLeft = (groups.AutoScalingGroups ?? []).filter((g) =>
      g.Tags?.some((t) => t.Key === "kiln:role" && t.Value === "retired"),
    );
    expect(
      retiredLeft.filter((g) => g.Status !== "Delete in progress"),
      JSON.stringify([...run.kept, ...run.removed].filter((a) => a.kind === "retired-fleet")),
    ).toEqual([]);
    expect(await versionsOf(names[0]!), JSON.stringify(run.kept.filter((a) => a.kind === "launch-template-version"))).toEqual([]);
    expect((await versionsOf(names[1]!)).length).toBe(1); // the live fleet's
  }, 300_000);
});
