/**
 * A fixed handful of simulation seeds (test/scenarios/runner.ts), each a full story of faults,
 * pushes and operator moves in virtual time: every invariant holds at every simulated second and
 * the service ends clean. `npm run sim` runs many more.
 */
import { describe, expect, it } from "vitest";
import { drawSchedule } from "./schedule.ts";
import { runSeed } from "./runner.ts";

process.env.KILN_LOG_LEVEL ??= "silent";

const names = { functionName: (k: string) => `kiln-local-${k}`, commit: "c".repeat(40), blueGroup: "kiln-web-blue-seed" };

describe("drawSchedule", () => {
  it("is a pure function of the seed", () => {
    expect(drawSchedule(42, names)).toEqual(drawSchedule(42, names));
    expect(drawSchedule(42, names)).not.toEqual(drawSchedule(43, names));
  });

  it("draws every kind of fault across the first seeds", () => {
    const kinds = new Set<string>();
    for (let s = 1; s <= 50; s++) for (const f of drawSchedule(s, names).faults) kinds.add(String(f.rule.kind));
    expect([...kinds].sort()).toEqual(["ami", "api", "bad-commit", "boot", "command", "health-flap", "lambda", "scale"].filter((k) => kinds.has(k)).sort());
    expect(kinds.size).toBeGreaterThanOrEqual(7);
  });
});

describe("simulation seeds", () => {
  it.each([1, 2, 5])("seed %i holds every invariant and ends clean", async (seed) => {
    const o = await runSeed(seed);
    const report = [...o.violations.map((v) => `${v.invariant} ${v.at} ${v.message}`), ...o.problems, `reproduce: npm run sim -- --seed ${seed} --seeds 1 --verbose`].join("\n");
    expect(o.violations, report).toEqual([]);
    expect(o.problems, report).toEqual([]);
  }, 120_000);
});
