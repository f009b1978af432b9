import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** `npm start -- --once` as a new user runs it: a real deployment end to end on the local stack. */
describe("npm start -- --once", () => {
  it("deploys a pushed commit end to end: succeeded, 100 % of traffic on the new commit, no failed request", async () => {
    const child = spawn(process.execPath, ["bin/kiln", "start", "--once"], {
      cwd: root,
      env: { ...process.env, KILN_STATE_DIR: mkdtempSync(path.join(tmpdir(), "kiln-start-")) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => {
      const kill = setTimeout(() => child.kill("SIGKILL"), 240_000);
      child.on("exit", (c) => {
        clearTimeout(kill);
        resolve(c);
      });
    });
    expect(code, out).toBe(0);
    expect(out).toMatch(/deployment SUCCEEDED after/);
    const pushed = /pushing ([0-9a-f]{12})/.exec(out)?.[1];
    expect(pushed).toBeDefined();
    const live = /live commit ([0-9a-f]{12}) · traffic (.*)/.exec(out);
    expect(live?.[1]).toBe(pushed);
    // Exactly one target group carries all traffic, the other none.
    const weights = [...(live?.[2] ?? "").matchAll(/(\d+)%/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
    expect(weights).toEqual([0, 100]);
    expect(out).toMatch(/requests through the ALB during the deployment: \d+ ok, 0 failed/);
  }, 300_000);
});
