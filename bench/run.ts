/**
 * `npm run bench`: kiln's performance record. Every figure is a ratio or a count measured in this
 * run (docs/benchmarks.md says what each means). Prints a table and writes bench/results.json.
 *
 *   npm run bench [-- --sizes 4,40,400,1000] [--no-bundles] [--no-webhook] [--out bench/results.json]
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { type BundleMeasure, measureBundles } from "./bundles.ts";
import { type DeploymentMeasure, measureDeployment } from "./deployment.ts";
import { type JudgeMeasure, measureJudge } from "./judge.ts";
import { measureWebhook, type WebhookMeasure } from "./webhook.ts";

// Handlers log every lock decision as JSON on stdout; the table is the output here.
process.env.KILN_LOG_LEVEL ??= "warn";

/** The targets. */
export const TARGETS = {
  overhead: 1.05,
  bundleZippedBytes: 300 * 1024,
  historyEvents1000: 2500,
  speedup: 1000,
  judgeFalsePositives: 0.01,
  judgeFalseNegatives2x: 0.01,
} as const;

/** Fleets up to this size get real loopback app servers; larger ones answer health checks in process. */
const REAL_SERVERS_UP_TO = 40;

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "4,40,400,1000" },
    bundles: { type: "boolean", default: true },
    "no-bundles": { type: "boolean", default: false },
    webhook: { type: "boolean", default: true },
    "no-judge": { type: "boolean", default: false },
    "no-webhook": { type: "boolean", default: false },
    out: { type: "string", default: path.join(import.meta.dirname, "results.json") },
  },
});
const sizes = String(values.sizes)
  .split(",")
  .map((s) => Number(s.trim()))
  .filter((n) => n > 0);

const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const fixed = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const kb = (b: number) => `${(b / 1024).toFixed(0)} KB`;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? "").length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join("  "))
    .join("\n");
}

/** "met", or by how much the figure misses its target. */
function verdict(value: number, target: number, lowerIsBetter = true): string {
  const ok = lowerIsBetter ? value <= target : value >= target;
  if (ok) return "met";
  return lowerIsBetter
    ? `MISSED by ${pct(value / target - 1)} (${fixed(value - target, 3)})`
    : `MISSED: ${pct(value / target)} of target`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const deployments: DeploymentMeasure[] = [];
  for (const n of sizes) {
    log(`deployment of ${n} instances…`);
    const m = await measureDeployment({ instances: n, realServers: n <= REAL_SERVERS_UP_TO });
    log(`  ${m.status} in ${s(m.lead.totalMs)} simulated, ${s(m.wall.deployMs)} wall (setup ${s(m.wall.setupMs)})`);
    deployments.push(m);
  }
  let webhook: WebhookMeasure[] = [];
  if (values.webhook && !values["no-webhook"]) {
    log("webhook throughput…");
    webhook = await measureWebhook({ requests: 200, concurrencies: [1, 8] });
  }
  let bundles: BundleMeasure[] = [];
  if (values.bundles && !values["no-bundles"]) {
    log("bundling functions/*.ts…");
    bundles = await measureBundles({ initRuns: 1 });
  }

  let judged: JudgeMeasure[] = [];
  if (!values["no-judge"]) {
    log("canary judge over seeded simulated deployments…");
    judged = measureJudge();
  }

  const out: string[] = [];
  const env = `${os.cpus().length} CPUs, load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}, node ${process.version}`;
  out.push(`kiln bench — ${new Date().toISOString()} — ${env}`, "");

  if (deployments.length > 0) {
    out.push("Deployments (virtual time; lead ÷ critical path = overhead)");
    const header = ["", ...deployments.map((d) => `${d.instances} inst`)];
    const row = (name: string, f: (d: DeploymentMeasure) => string | number) => [name, ...deployments.map(f)];
    out.push(
      table([
        header,
        row("lead time, deployment", (d) => s(d.lead.totalMs)),
        row("critical path, deployment", (d) => s(d.critical.totalMs)),
        row("overhead, deployment", (d) => fixed(d.overhead.deployment)),
        row("overhead, bake", (d) => fixed(d.overhead.bake)),
        row("overhead, roll", (d) => fixed(d.overhead.roll)),
        ...deployments[0]!.critical.bake.map((seg, i) =>
          row(`  bake: ${seg.name}`, (d) => s(d.critical.bake[i]?.ms ?? Number.NaN)),
        ),
        ...deployments[0]!.critical.roll.map((seg, i) =>
          row(`  roll: ${seg.name}`, (d) => s(d.critical.roll[i]?.ms ?? Number.NaN)),
        ),
        row("state transitions", (d) => d.transitions),
        row("Step Functions cost", (d) => `$${d.costUsd.toFixed(4)}`),
        row("history events", (d) => d.historyEvents),
        ...[...new Set(deployments.flatMap((d) => Object.keys(d.apiCalls)))]
          .sort()
          .map((svc) => row(`API calls: ${svc}`, (d) => d.apiCalls[svc] ?? 0)),
        row("API calls: total", (d) => Object.values(d.apiCalls).reduce((a, b) => a + b, 0)),
        row("API errors", (d) => d.apiErrors),
        row("IAM: calls authorized", (d) => d.iam.checks),
        row("IAM: policy evaluations", (d) => d.iam.evaluations),
        row("IAM: wall spent authorizing", (d) => `${d.iam.ms} ms (${pct(d.iam.ms / d.wall.deployMs)})`),
        row("wall: deployment", (d) => s(d.wall.deployMs)),
        row("wall: real I/O in flight", (d) => `${s(d.wall.ioHeldMs)} (${pct(d.wall.ioHeldMs / d.wall.deployMs)})`),
        row("speedup (sim s / wall s)", (d) => `${d.speedup.toFixed(0)}×`),
      ]),
    );
    out.push("");
  }
  if (webhook.length > 0) {
    out.push("Webhook handler (in process, signed pushes, warm)");
    out.push(
      table([
        ["concurrency", "requests", "answers", "req/s", "p50", "p99", "max"],
        ...webhook.map((w) => [
          w.concurrency,
          w.requests,
          Object.entries(w.statuses)
            .map(([k, v]) => `${k}×${v}`)
            .join(" "),
          w.perSecond.toFixed(0),
          `${w.p50Ms.toFixed(1)} ms`,
          `${w.p99Ms.toFixed(1)} ms`,
          `${w.maxMs.toFixed(1)} ms`,
        ]),
      ]),
    );
    out.push("");
  }
  if (bundles.length > 0) {
    out.push("Lambda bundles (esbuild as serverless-esbuild: ESM, node22, minified; zip -9; init = fresh node importing it)");
    out.push(
      table([
        ["function", "bundle", "zipped", "zipped with @aws-sdk", "init", "≤ 300 KB"],
        ...bundles.map((b) => [
          b.name,
          kb(b.bundleBytes),
          kb(b.zippedBytes),
          kb(b.zippedWithSdkBytes),
          b.initError ? `error: ${b.initError}` : `${b.initMs.toFixed(0)} ms`,
          b.zippedBytes <= TARGETS.bundleZippedBytes ? "yes" : `+${kb(b.zippedBytes - TARGETS.bundleZippedBytes)}`,
        ]),
      ]),
    );
    out.push("");
  }

  for (const j of judged) {
    out.push(`Canary judge, ${j.profile} (defaults; 10 % and 50 % for 300 s, 100 % for 300 s; blue 0.25 % 5xx, p99 ≈ 113 ms)`);
    out.push(
      table([
        [
          "commit",
          "runs",
          "promoted wrongly",
          "failed",
          "of which no traffic",
          "median detection",
          "extra 5xx",
          "bound w×t×rate",
        ],
        [
          "good (noise only)",
          j.good.runs,
          "-",
          `${j.good.falsePositives + j.good.noTraffic} (false positives ${pct(j.good.falsePositives / j.good.runs)})`,
          j.good.noTraffic,
          "-",
          "-",
          "-",
        ],
        ...j.bad.map((b) => [
          b.severity,
          b.runs,
          `${b.falseNegatives} (${pct(b.falseNegatives / b.runs)})`,
          b.runs - b.falseNegatives,
          b.noTraffic,
          b.medianDetectionSeconds === null ? "n/a" : s(b.medianDetectionSeconds * 1000),
          b.errors,
          b.bound,
        ]),
      ]),
    );
    out.push("");
  }

  // Targets.
  const bySize = (n: number) => deployments.find((d) => d.instances === n);
  const worst = (f: (d: DeploymentMeasure) => number) => Math.max(...deployments.map(f).filter(Number.isFinite));
  const t4 = bySize(4);
  const t1000 = bySize(1000);
  const reference = t4 ?? deployments[0];
  const targets: string[][] = [["target", "measured", "verdict"]];
  if (deployments.length > 0) {
    const o = worst((d) => d.overhead.deployment);
    targets.push(["overhead, whole deployment ≤ 1.05 (worst size)", fixed(o), verdict(o, TARGETS.overhead)]);
  }
  if (t4 && t1000) {
    targets.push([
      "transitions equal at 4 and 1,000 instances",
      `${t4.transitions} vs ${t1000.transitions}`,
      t4.transitions === t1000.transitions
        ? "met"
        : `MISSED: differ by ${Math.abs(t1000.transitions - t4.transitions)} (poll iterations follow jittered AWS durations)`,
    ]);
  }
  if (bundles.length > 0) {
    const big = bundles.filter((b) => b.zippedBytes > TARGETS.bundleZippedBytes);
    const max = Math.max(...bundles.map((b) => b.zippedBytes));
    targets.push([
      "every bundle ≤ 300 KB zipped",
      `largest ${kb(max)}`,
      big.length === 0
        ? "met"
        : `MISSED: ${big.length}/${bundles.length} over, largest by ${kb(max - TARGETS.bundleZippedBytes)}`,
    ]);
  }
  if (t1000)
    targets.push([
      "1,000-instance history < 2,500 events",
      String(t1000.historyEvents),
      verdict(t1000.historyEvents, TARGETS.historyEvents1000 - 1),
    ]);
  if (reference)
    targets.push([
      `speedup ≥ 1,000× (${reference.instances} instances)`,
      `${reference.speedup.toFixed(0)}×`,
      verdict(reference.speedup, TARGETS.speedup, false),
    ]);
  const example = judged[0];
  if (example) {
    const fp = example.good.falsePositives / example.good.runs;
    targets.push([
      `judge false positives ≤ 1 % of good deployments (${example.profile})`,
      pct(fp),
      verdict(fp, TARGETS.judgeFalsePositives),
    ]);
    const twice = example.bad.filter((b) => /5xx/.test(b.severity));
    const fn = Math.max(...twice.map((b) => b.falseNegatives / b.runs));
    targets.push([
      `judge false negatives ≤ 1 % for 5xx ≥ 2× (${example.profile}, worst severity)`,
      pct(fn),
      verdict(fn, TARGETS.judgeFalseNegatives2x),
    ]);
  }
  out.push("Targets");
  out.push(table(targets));
  out.push("", `bench wall time ${s(Date.now() - started)}`);
  console.log(out.join("\n"));

  const results = {
    generatedAt: new Date().toISOString(),
    commit: gitHead(),
    environment: { cpus: os.cpus().length, loadavg: os.loadavg(), node: process.version },
    overhead: reference
      ? {
          deployment: worst((d) => d.overhead.deployment),
          bake: worst((d) => d.overhead.bake),
          roll: worst((d) => d.overhead.roll),
          bySize: Object.fromEntries(deployments.map((d) => [d.instances, d.overhead])),
        }
      : undefined,
    transitions: Object.fromEntries(deployments.map((d) => [d.instances, d.transitions])),
    costUsd: Object.fromEntries(deployments.map((d) => [d.instances, d.costUsd])),
    historyEvents: Object.fromEntries(deployments.map((d) => [d.instances, d.historyEvents])),
    historyEvents1000: t1000?.historyEvents,
    apiCalls: Object.fromEntries(deployments.map((d) => [d.instances, d.apiCalls])),
    apiActions: Object.fromEntries(deployments.map((d) => [d.instances, d.apiActions])),
    criticalPath: Object.fromEntries(deployments.map((d) => [d.instances, { lead: d.lead, ...d.critical }])),
    webhook,
    judge: judged,
    bundles: Object.fromEntries(bundles.map((b) => [b.name, b.zippedBytes])),
    bundleDetails: bundles,
    speedup: reference?.speedup,
    speedupBySize: Object.fromEntries(deployments.map((d) => [d.instances, d.speedup])),
    wall: Object.fromEntries(deployments.map((d) => [d.instances, d.wall])),
    targets: Object.fromEntries(targets.slice(1).map(([name, measured, v]) => [name!, { measured, verdict: v }])),
  };
  writeFileSync(String(values.out), `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${values.out}`);
}

function gitHead(): string | undefined {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd: path.join(import.meta.dirname, ".."), encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

await main();
// The AWS SDK's keep-alive agents and dynalite may keep handles open; the run is over.
process.exit(0);
