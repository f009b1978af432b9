/**
 * `kiln up` / `kiln start` with a broken kiln.config.yaml: the real entry point (bin/kiln, a child
 * process) prints the problem with file:line and exits 2 instead of leaving a half-booted stack
 * running. The child is killed after a bound: reaching it is the hang this test exists to catch.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const BIN = path.resolve(import.meta.dirname, "../../bin/kiln");
const dir = mkdtempSync(path.join(tmpdir(), "kiln-up-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs bin/kiln; `hung` when it had not exited after `boundMs` (it is then killed). */
function runKiln(args: string[], config: string, boundMs: number): Promise<{ code: number | null; err: string; hung: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env: { ...process.env, KILN_CONFIG: config },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stdout.on("data", () => {});
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill("SIGKILL");
    }, boundMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, err, hung });
    });
  });
}

describe("kiln up with a broken configuration", () => {
  it.each([
    ["invalid YAML", "services:\n  web:\n    canary: [\n", /kiln\.config\.yaml:4:1 .*expected valid YAML/],
    [
      "a schema error",
      "version: 1\nservices:\n  web:\n    minHealthyPercent: lots\n",
      /kiln\.config\.yaml:4:\d+ services\.web\.minHealthyPercent: expected a number/,
    ],
  ])(
    "%s: prints file:line and exits 2, without hanging",
    async (_what, text, message) => {
      const file = path.join(dir, "kiln.config.yaml");
      writeFileSync(file, text);
      for (const command of [
        ["up", "--clock", "virtual", "--port", "0"],
        ["start", "--once", "--clock", "virtual"],
      ]) {
        const r = await runKiln(command, file, 45_000);
        expect(r.hung, `kiln ${command[0]} still running after 45 s: ${r.err}`).toBe(false);
        expect(r.err).toContain(file);
        expect(r.err).toMatch(message);
        expect(r.code, r.err).toBe(2);
      }
    },
    120_000,
  );
});
