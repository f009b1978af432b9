import { describe, expect, it } from "vitest";
import { amiName, defaultBranch, derivePlan } from "../../../lib/bake/plan.ts";
import { DeployInputSchema } from "../../../lib/bake/types.ts";
import { builderToken } from "../../../lib/bake/builder.ts";
import { base, COMMIT, execution, input, web } from "./fixtures.ts";

describe("derivePlan", () => {
  it("derives every name, token and tag from the execution", () => {
    const plan = derivePlan(input(), execution(), web(), base);
    expect(plan.image.name).toBe("kiln-web-0123456789ab-push-20260105T090000Z");
    expect(plan.builder.clientToken).toMatch(/^LaunchBuilder-[0-9a-f]{16}$/);
    expect(plan.environment).toBe("production");
    expect(plan.env).toEqual({ KILN_COMMIT: COMMIT, KILN_REPO: "example/web", KILN_SERVICE: "web", KILN_BRANCH: "main" });
    expect(plan.tags).toMatchObject({
      "kiln:service": "web",
      "kiln:execution": execution().name,
      "kiln:execution-arn": execution().arn,
      team: "web",
    });
    expect(plan.builder.rootDevice).toEqual({ deviceName: "/dev/xvda", encrypted: true });
    expect(plan.config.canary.at(-1)?.weight).toBe(100);
  });

  it("is a pure function of its inputs (a redrive derives the same plan)", () => {
    expect(derivePlan(input(), execution(), web(), base)).toEqual(derivePlan(input(), execution(), web(), base));
  });

  it("gives each execution its own AMI name and token", () => {
    const a = derivePlan(input(), execution(), web(), base);
    const b = derivePlan(input(), execution({ name: "web-0123456789ab-operator-2" }), web(), base);
    const c = derivePlan(input(), execution({ startedAt: "2026-04-05T09:00:00.000Z" }), web(), base);
    expect(new Set([a.image.name, b.image.name, c.image.name]).size).toBe(3);
    expect(a.builder.clientToken).not.toBe(b.builder.clientToken);
  });

  it("keeps AMI names within 128 characters of the AMI charset", () => {
    const n = amiName(execution({ name: "x".repeat(80) }));
    expect(n.length).toBeLessThanOrEqual(128);
    expect(n).toMatch(/^[A-Za-z0-9()[\] ./'@_-]{3,128}$/);
  });

  it("a redrive attempt that must relaunch gets a fresh ClientToken", () => {
    const plan = derivePlan(input(), execution(), web(), base);
    expect(builderToken(plan, 0)).toBe(plan.builder.clientToken);
    expect(builderToken(plan, 1)).not.toBe(builderToken(plan, 0));
    expect(builderToken(plan, 1).length).toBeLessThanOrEqual(64);
  });

  it.each([
    ["another repository", input({ repository: "evil/web" }), /repository evil\/web is not the one configured/],
    ["a push without branch", input({ branch: undefined }), /needs the branch/],
    ["an unconfigured branch", input({ branch: "feature/x" }), /branch feature\/x does not deploy service web/],
  ])("rejects %s as kiln.InvalidInput", (_w, i, msg) => {
    expect(() => derivePlan(i, execution(), web(), base)).toThrow(msg);
    try {
      derivePlan(i, execution(), web(), base);
    } catch (err) {
      expect((err as Error).name).toBe("kiln.InvalidInput");
    }
  });

  it.each([
    ["rotation", "main", "production"],
    ["operator", "main", "production"],
  ] as const)("a %s without branch builds the production branch", (trigger, branch, env) => {
    const plan = derivePlan(input({ trigger, branch: undefined }), execution(), web(), base);
    expect([plan.branch, plan.environment]).toEqual([branch, env]);
    expect(defaultBranch(web())).toBe("main");
  });

  it("sanitizes requestedBy for use as a tag value", () => {
    const plan = derivePlan(input({ requestedBy: "alice <a@x.io>; $(id)" }), execution(), web(), base);
    expect(plan.requestedBy).toBe("alice _a@x.io__ __id_");
  });
});

describe("execution input (hostile values never reach a script)", () => {
  it.each([
    ["commit with a command", { commit: "$(touch /tmp/pwned)" }, "commit"],
    ["short commit", { commit: "0123456" }, "commit"],
    ["uppercase commit", { commit: COMMIT.toUpperCase() }, "commit"],
    ["commit with newline", { commit: `${COMMIT.slice(0, 39)}\n` }, "commit"],
    ["branch with a quote", { branch: "main'; reboot; '" }, "branch"],
    ["branch with backticks", { branch: "`id`" }, "branch"],
    ["branch with spaces", { branch: "a b" }, "branch"],
    ["branch with ..", { branch: "../../etc" }, "branch"],
    ["branch starting with -", { branch: "--upload-pack=evil" }, "branch"],
    ["repository with ;", { repository: "example/web;id" }, "repository"],
    ["repository with $", { repository: "$HOME/web" }, "repository"],
    ["service not in charset", { service: "Web;id" }, "service"],
    ["unknown trigger", { trigger: "cron" }, "trigger"],
  ])("rejects %s", (_w, over, field) => {
    const r = DeployInputSchema.safeParse({ ...input(), ...over });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual([field]);
  });
});
