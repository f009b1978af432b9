/**
 * `npm run sim -- --seeds N [--seed S] [--verbose]`: runs seeds S … S+N-1 (default S = 1, N = 10)
 * of the randomized fault simulation (test/scenarios/runner.ts) and prints, for each failing seed,
 * what broke and the command that reproduces it. Exit code 1 when any seed fails.
 */
import { parseArgs } from "node:util";
import { runSeed, type SeedOutcome } from "./runner.ts";
import { STORIES } from "./schedule.ts";

process.env.KILN_LOG_LEVEL ??= "silent";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "10" },
    seed: { type: "string", default: "1" },
    verbose: { type: "boolean", default: false },
  },
});
const count = Math.max(1, Number(values.seeds));
const start = Number(values.seed);
const out = (s: string) => process.stdout.write(`${s}\n`);

function describe(o: SeedOutcome): string {
  const lines = [
    `seed ${o.seed}: ${o.ok ? "ok" : "FAILED"} — ${o.schedule.instances} instances, ${(o.simulatedMs / 60_000).toFixed(0)} simulated min, ${(o.wallMs / 1000).toFixed(1)} s wall`,
    `  faults: ${o.schedule.faults.map((f) => f.label).join("; ") || "none"}${o.schedule.pushes.length ? `; ${o.schedule.pushes.length} extra push(es)` : ""}${o.schedule.approval ? "; approval gate" : ""}`,
    `  executions: ${o.executions.map((e) => `${e.name} ${e.status}${e.failures ? ` (failed ${e.failures}×)` : ""}`).join(", ")}`,
    `  operator: ${o.actions.join(", ") || "nothing to do"}`,
    `  stories: ${
      Object.entries(o.stories)
        .map(([k, v]) => `${k} ${v.reached ? "reached" : "NOT reached"}`)
        .join(", ") || "none"
    }`,
  ];
  for (const v of o.violations) lines.push(`  ${v.invariant} at ${v.at}: ${v.message}`);
  for (const p of o.problems) lines.push(`  end state: ${p}`);
  if (!o.ok) lines.push(`  reproduce: npm run sim -- --seed ${o.seed} --seeds 1 --verbose`);
  return lines.join("\n");
}

let failed = 0;
const storyRan = new Map<string, number>();
const storyReached = new Map<string, number>();
for (let seed = start; seed < start + count; seed++) {
  let o: SeedOutcome;
  try {
    o = await runSeed(seed, { log: values.verbose ? out : undefined });
  } catch (err) {
    failed++;
    out(`seed ${seed}: CRASHED — ${(err as Error).stack ?? err}\n  reproduce: npm run sim -- --seed ${seed} --seeds 1 --verbose`);
    continue;
  }
  if (!o.ok) failed++;
  for (const [k, v] of Object.entries(o.stories)) {
    storyRan.set(k, (storyRan.get(k) ?? 0) + 1);
    if (v.reached) storyReached.set(k, (storyReached.get(k) ?? 0) + 1);
  }
  out(o.ok && !values.verbose ? describe(o).split("\n").slice(0, 2).join("\n") : describe(o));
}
out(
  `\nstories: ${STORIES.map((k) => `${k} ran in ${storyRan.get(k) ?? 0} seed(s), reached its feature in ${storyReached.get(k) ?? 0}`).join("; ")}`,
);
out(`${count - failed}/${count} seeds held every invariant and ended clean`);
process.exit(failed > 0 ? 1 : 0);
