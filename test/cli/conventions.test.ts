/**
 * CLI conventions: `--version`, per-command `--help`, unknown options and bad values answered in
 * kiln's words with exit 2 before anything starts.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runCli } from "./run-cli.ts";

const run = (...argv: string[]) => runCli(argv);

describe("kiln CLI conventions", () => {
  it("prints its version with --version and -V", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) expect(await run(flag)).toMatchObject({ code: 0, out: `kiln ${version}` });
  });

  it("prints one command's usage for <command> --help", async () => {
    const r = await run("redrive", "--help");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: kiln redrive <execution> \[--force\]\n/);
    expect(r.out).toContain("--force: even");
    expect(r.out).not.toContain("rollback <service>");
    expect(r.out).toContain("Exit codes:");
    // An unknown command's --help is the whole usage.
    expect((await run("nope", "--help")).out).toMatch(/^usage: kiln <command> \[options\]/);
    // A command name is text, never a pattern.
    expect(await run("(", "--help")).toMatchObject({ code: 0, out: expect.stringMatching(/^usage: kiln <command> \[options\]/) });
  });

  it.each([
    ["status", /--watch \[--interval S\]/, /lock holder and queued request/],
    ["logs", /\[--raw\]/, /polling loops folded/],
    ["push", /\[--watch\]/, /--watch as for deploy/],
    ["deploy", /\[--watch\]/, /exit 0 SUCCEEDED/],
  ])("%s --help documents its options", async (command, usage, text) => {
    const r = await run(command, "--help");
    expect(r.out.split("\n")[0]).toMatch(usage);
    expect(r.out).toMatch(text);
  });

  it("answers an unknown option with kiln's words and the command's help, exit 2", async () => {
    const r = await run("status", "--bogus");
    expect(r.code).toBe(2);
    expect(r.err).toBe("kiln: unknown option --bogus (see kiln status --help)");
  });

  it("refuses a bad --clock with exit 2 before starting anything", async () => {
    const r = await run("start", "--clock", "nope", "--once");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^kiln: --clock: invalid clock "nope": expected virtual, real or scaled:N/);
    expect(r.out).toBe("");
  });
});
