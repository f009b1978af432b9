import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { commandComment, environmentPreamble, invocationState, renderCommands, tail } from "../../../lib/commands.ts";

/**
 * Runs the rendered commands with bash (as AWS-RunShellScript does: lines joined by newlines) and
 * returns each variable's value as bash sees it. One bash process for many values keeps it fast.
 */
function roundTrip(values: string[]): { seen: string[]; status: number | null } {
  const env = Object.fromEntries(values.map((v, i) => [`V${i}`, v]));
  const script = values.map((_v, i) => `printf '%s\\0' "$V${i}"`).join("\n");
  const r = spawnSync("bash", ["-c", renderCommands(script, env).join("\n")], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  return { seen: r.stdout.split("\0").slice(0, -1), status: r.status };
}

const HOSTILE = [
  "$(touch /tmp/kiln-pwned)",
  "`touch /tmp/kiln-pwned`",
  "'; touch /tmp/kiln-pwned; '",
  `"; touch /tmp/kiln-pwned; "`,
  "$HOME ${PATH} $((1+1)) !! \\ \\' *",
  "a' 'b",
  "'''",
  "-n",
  "",
  "ünïcödé ☃",
];

describe("environment values are data, never script", () => {
  it("hostile values arrive verbatim and run nothing", () => {
    const r = roundTrip(HOSTILE);
    expect(r.status).toBe(0);
    expect(r.seen).toEqual(HOSTILE);
  });

  it("any string without NUL or line breaks round-trips (property)", () => {
    const values = fc.sample(
      fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !/[\0\r\n]/.test(s)),
      { numRuns: 200, seed: 7 },
    );
    expect(roundTrip(values).seen).toEqual(values);
  });

  it.each([
    [{ "BAD NAME": "x" }, /name "BAD NAME" is not allowed/],
    [{ "X;id": "x" }, /not allowed/],
    [{ lower: "x" }, /not allowed/],
    [{ X: "a\nb" }, /line breaks/],
    [{ X: "a\rb" }, /line breaks/],
  ])("rejects %j", (env, msg) => {
    expect(() => environmentPreamble(env)).toThrow(msg);
  });

  it("puts the preamble before the script, in a stable order", () => {
    expect(renderCommands("set -e\necho hi\n", { B: "2", A: "1" })).toEqual([
      "export A='1'",
      "export B='2'",
      "set -e",
      "echo hi",
    ]);
  });
});

describe("commandComment", () => {
  it("identifies step, attempt and execution within 100 characters", () => {
    expect(commandComment("web-0123456789ab-push", "Install", 0)).toBe("kiln Install r0 web-0123456789ab-push");
    const long = commandComment("x".repeat(80), "ImageTest", 12);
    expect(long.length).toBeLessThanOrEqual(100);
    expect(long).not.toBe(commandComment("x".repeat(79) + "y", "ImageTest", 12));
  });
});

describe("invocationState", () => {
  it.each([
    ["Pending", "pending"],
    ["Delayed", "pending"],
    [undefined, "pending"],
    ["InProgress", "running"],
    ["Success", "success"],
    ["Failed", "failed"],
    ["TimedOut", "timed-out"],
    ["Cancelled", "cancelled"],
    ["Cancelling", "cancelled"],
  ])("%s → %s", (s, k) => expect(invocationState(s)).toBe(k));

  it("tail keeps the last lines", () => {
    expect(tail("a\nb\nc\n", 2)).toBe("b\nc");
    expect(tail(undefined)).toBe("");
  });
});
