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
    expect([...kinds].sort()).toEqual(["api", "bad-commit", "boot", "command", "health-flap", "lambda", "scale"]);
  });
});

async function expectClean(seed: number): Promise<void> {
  const o = await runSeed(seed);
  const report = [
    ...o.violations.slice(0, 5).map((v) => `${v.invariant} ${v.at} ${v.message}`),
    ...o.problems,
    `reproduce: npm run sim -- --seed ${seed} --seeds 1 --verbose`,
  ].join("\n");
  expect(o.violations, report).toEqual([]);
  expect(o.problems, report).toEqual([]);
}

describe("simulation seeds", () => {
  // 1: API errors, a Lambda crash, a boot failure and a scale event, one redrive; 2: throttling, a
  // Lambda timeout, a flapping green instance and queued pushes; 8: a bad commit caught by the
  // canary, redriven (fails again, pages again), then aborted.
  it.each([1, 8])("seed %i holds every invariant and ends clean", (seed) => expectClean(seed), 120_000);

  // Known bug (reported): a failed deployment superseded by a newer push is aborted, the newer one
  // rolls to the other target group; an operator then redrives the old execution from its failed
  // VerifyCanary, which re-applies *its* canary weights (90 % to its blue target group, which the
  // newer deployment has emptied) — I1 broken, users get 503s. Remove `.fails` once fixed.
  it("seed 5: redrive of a superseded, aborted execution must not move traffic", () => expectClean(5), 120_000);
  // Operator/adversary stories (schedule.ts `stories`), each reaching its feature: 3 — after a burst of
  // pushes the first push is redelivered byte for byte (202, ignored, nothing started), an execution
  // started around the queue fails at AcquireLock and its redrive fails with kiln.Superseded; 10 — the
  // same plus a case-variant repository name and a redrive of an aborted (bad-commit) execution.
  it.each([3, 10])(
    "seed %i: its stories reach their features and every invariant (I7 included) holds",
    async (seed) => {
      const o = await runSeed(seed);
      const drawn = Object.entries(o.schedule.stories)
        .filter(([, v]) => v)
        .map(([k]) => k)
        .sort();
      expect(Object.keys(o.stories).sort()).toEqual(drawn);
      expect(drawn.length).toBeGreaterThanOrEqual(3);
      for (const [k, v] of Object.entries(o.stories)) expect(v.reached, `${k}: ${v.note}`).toBe(true);
      expect(o.violations, o.violations.map((v) => v.message).join("\n")).toEqual([]);
      expect(o.problems).toEqual([]);
    },
    120_000,
  );
  // Regressions found by `npm run sim -- --seeds 200` (and 61–300):
  it(
    "seed 2: blue's capacity going down mid-deploy is not carried to a green that takes traffic (I4)",
    () => expectClean(2),
    120_000,
  );
  it(
    "seed 15: a burst of pushes while a redriven deployment runs queues behind it, it is not aborted mid-canary",
    () => expectClean(15),
    120_000,
  );
  it("seed 21: instances launched in a retired group keep their kiln:role tag (I5)", () => expectClean(21), 120_000);
  it(
    "seed 70: a redriven, aborted staging deployment at WaitGreenHealthy fails kiln.Superseded instead of polling a deleted green",
    () => expectClean(70),
    120_000,
  );
  it(
    "seed 52: throttling during an abort does not strand the lock (throttling retries last minutes; aborting again takes over)",
    () => expectClean(52),
    120_000,
  );
});
