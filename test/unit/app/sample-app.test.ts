import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RealClock } from "../../../lib/clock.ts";
import { APP_PATHS, APP_ROOTFS, type AppResponse, answer, startApp } from "../../../local/app/server.ts";

/** Runs the CLI of a sandbox copy of the rootfs, from an unrelated working directory. */
function cli(root: string, command: string, env: Record<string, string> = {}) {
  const r = spawnSync("bash", [join(root, APP_PATHS.cli), command], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SMOKE_DELAY: "0", ...env },
    encoding: "utf8",
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking the event loop (the app's server lives in this process). */
function cliAsync(root: string, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [join(root, APP_PATHS.cli), command], {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SMOKE_DELAY: "0", SMOKE_TIMEOUT: "5" },
      timeout: 20_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("sample-app CLI", () => {
  let root: string;
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), "kiln-app-test-"));
    root = join(scratch, "root");
    cpSync(APP_ROOTFS, root, { recursive: true });
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  const health = (path = "/health"): AppResponse => answer(path, { instance: "i-test", rootDir: root });

  it("installs a commit and the service name, found from the script's own location", () => {
    const r = cli(root, "install", { KILN_COMMIT: "ABCDEF1234567", KILN_SERVICE: "web" });
    expect(r.code).toBe(0);
    expect(readFileSync(join(root, APP_PATHS.commit), "utf8")).toBe("abcdef1234567\n");
    expect(readFileSync(join(root, APP_PATHS.service), "utf8")).toBe("web\n");
    expect(cli(root, "image-test").code).toBe(0);
    expect(cli(root, "status").stdout).toContain("commit=abcdef1234567");
  });

  it.each([
    ["missing", undefined],
    ["a command substitution", "$(touch MARKER)"],
    ["backticks", "`touch MARKER`"],
    ["a commit followed by a command", "abcdef1; touch MARKER"],
    ["too short", "abc12"],
    ["too long", "a".repeat(41)],
    ["not hex", "ghijklm"],
    ["a newline", "abcdef1\ntouch MARKER"],
  ])("refuses KILN_COMMIT that is %s with exit 2 and runs nothing", (_what, value) => {
    const marker = join(scratch, "pwned");
    const env: Record<string, string> = value === undefined ? {} : { KILN_COMMIT: value.replace("MARKER", marker) };
    const r = cli(root, "install", env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/KILN_COMMIT/);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(root, APP_PATHS.commit))).toBe(false);
  });

  it("refuses a hostile KILN_SERVICE", () => {
    const marker = join(scratch, "pwned");
    const r = cli(root, "install", { KILN_COMMIT: "abcdef1", KILN_SERVICE: `$(touch ${marker})` });
    expect(r.code).toBe(2);
    expect(existsSync(marker)).toBe(false);
  });

  it("image-test fails before install and when the image would come up in service", () => {
    expect(cli(root, "image-test").code).toBe(1);
    cli(root, "install", { KILN_COMMIT: "abcdef1" });
    expect(cli(root, "service-in").code).toBe(0);
    const r = cli(root, "image-test");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("FAIL var/lib/sample-app/in-service");
  });

  it("service-in and service-out toggle the health check", () => {
    expect(health().status).toBe(503);
    expect(cli(root, "service-in").code).toBe(1); // nothing installed yet
    cli(root, "install", { KILN_COMMIT: "abcdef1" });
    expect(health()).toMatchObject({ status: 503, body: expect.stringContaining("out of service") });
    expect(cli(root, "service-in").code).toBe(0);
    expect(health().status).toBe(200);
    expect(cli(root, "service-out").code).toBe(0);
    expect(health().status).toBe(503);
    expect(cli(root, "service-out").code).toBe(0); // idempotent
  });

  it("smoke-test asks the running server over /dev/tcp, before service-in, and passes a bad commit", async () => {
    cli(root, "install", { KILN_COMMIT: "abcdef1" });
    // Even a commit that answers 500 on `/` passes: canary alarms are what catch it.
    const faults = { active: (kind: string) => (kind === "bad-commit" ? { kind, mode: "500" } : undefined) };
    const app = await startApp({ instance: "i-test", rootDir: root, clock: new RealClock(), faults, realServer: true });
    try {
      expect(readFileSync(join(root, APP_PATHS.port), "utf8").trim()).toBe(String(app.port));
      expect((await app.request("/")).status).toBe(500);
      const r = await cliAsync(root, "smoke-test");
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('"commit":"abcdef1"');
      expect(r.stdout).toContain('"inService":false');
    } finally {
      await app.stop();
    }
    expect(existsSync(join(root, APP_PATHS.port))).toBe(false);
  });

  it("smoke-test checks the installation when the simulator runs the app without a socket", async () => {
    const app = await startApp({ instance: "i-test", rootDir: root, clock: new RealClock(), realServer: false });
    try {
      expect((await cliAsync(root, "smoke-test")).code).toBe(1);
      cli(root, "install", { KILN_COMMIT: "abcdef1" });
      const r = await cliAsync(root, "smoke-test");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('"socket":false');
    } finally {
      await app.stop();
    }
  });

  it.each([
    ["nothing is installed", true],
    ["no server is listening", false],
  ])("smoke-test fails when %s", async (_why, serverUp) => {
    if (serverUp) {
      const app = await startApp({ instance: "i-test", rootDir: root, clock: new RealClock(), realServer: true });
      try {
        const r = await cliAsync(root, "smoke-test");
        expect(r.code).toBe(1);
        expect(r.stderr).toContain("503");
      } finally {
        await app.stop();
      }
    } else {
      cli(root, "install", { KILN_COMMIT: "abcdef1" });
      const r = await cliAsync(root, "smoke-test");
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("no port file");
    }
  });
});
