/**
 * Lambda bundle sizes and module init times: each `functions/*.ts` is bundled with esbuild the way
 * serverless-esbuild packages it (serverless.yml `custom.esbuild`: bundle, minify, ESM, node22,
 * `.mjs` with the createRequire banner), zipped as Lambda receives it (`zip -9`), and imported by a
 * fresh `node` process to time its module initialisation (what a cold start pays before the handler).
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { loadServerless, PROJECT_ROOT } from "../local/serverless.ts";

const run = promisify(execFile);

export interface BundleMeasure {
  name: string;
  /** Minified bundle bytes, and its zip as uploaded. */
  bundleBytes: number;
  zippedBytes: number;
  /** Zipped bytes with the AWS SDK bundled too (kiln leaves `@aws-sdk/*` to the nodejs22.x runtime, which ships SDK v3). */
  zippedWithSdkBytes: number;
  /** Median wall milliseconds to import the bundle in a fresh node process (module init only). */
  initMs: number;
  /** Why the import failed, when it did (the init time is then NaN). */
  initError?: string;
}

/** Environment the handlers read; set so module scope behaves as deployed (no AWS call is made at import). */
const INIT_ENV = {
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "AKIDBENCH",
  AWS_SECRET_ACCESS_KEY: "bench",
  AWS_ENDPOINT_URL: "http://127.0.0.1:9",
  AWS_NODEJS_CONNECTION_REUSE_ENABLED: "1",
};

export async function measureBundles(opts: { only?: string[]; initRuns?: number } = {}): Promise<BundleMeasure[]> {
  // Inside the project, so a bundle's external `@aws-sdk/*` imports resolve when its init time is measured
  // (in Lambda the runtime provides them).
  mkdirSync(path.join(PROJECT_ROOT, ".tmp"), { recursive: true });
  const dir = mkdtempSync(path.join(PROJECT_ROOT, ".tmp", "kiln-bundles-"));
  const exclude = deployedExcludes();
  try {
    const files = readdirSync(path.join(PROJECT_ROOT, "functions"))
      .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !f.endsWith(".test.ts"))
      .filter((f) => !opts.only || opts.only.includes(f.replace(/\.ts$/, "")))
      .sort();
    const out: BundleMeasure[] = [];
    for (const f of files) {
      const name = f.replace(/\.ts$/, "");
      const outfile = path.join(dir, name, "index.mjs");
      const entry = path.join(PROJECT_ROOT, "functions", f);
      await bundle(entry, outfile, exclude);
      const zip = await zipOf(outfile, path.join(dir, `${name}.zip`));
      const full = path.join(dir, `${name}-full`, "index.mjs");
      await bundle(entry, full);
      const m: BundleMeasure = {
        name,
        bundleBytes: statSync(outfile).size,
        zippedBytes: zip,
        zippedWithSdkBytes: await zipOf(full, path.join(dir, `${name}-full.zip`)),
        initMs: Number.NaN,
      };
      try {
        m.initMs = await initTime(outfile, opts.initRuns ?? 3);
      } catch (err) {
        m.initError =
          (err as Error).message
            .split("\n")
            .find((l) => /Error/.test(l))
            ?.slice(0, 200) ?? String(err).slice(0, 200);
      }
      out.push(m);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** serverless.yml `custom.esbuild.exclude`: packages left out of every bundle (the runtime provides them). */
function deployedExcludes(): string[] {
  const exclude = (loadServerless({ stage: "prod" }).custom?.esbuild as { exclude?: string[] } | undefined)?.exclude;
  return Array.isArray(exclude) ? exclude : [];
}

/** serverless.yml `custom.esbuild`, as serverless-esbuild applies it. */
async function bundle(entry: string, outfile: string, external: string[] = []): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    platform: "node",
    target: "node22",
    format: "esm",
    external,
    banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" },
    logLevel: "silent",
  });
}

async function zipOf(file: string, zip: string): Promise<number> {
  await run("zip", ["-q", "-9", "-X", zip, path.basename(file)], { cwd: path.dirname(file) });
  return statSync(zip).size;
}

/** Median of `runs` fresh-process imports, timed inside the process (process start excluded). */
async function initTime(file: string, runs: number): Promise<number> {
  const script = `const t = performance.now(); await import(${JSON.stringify(`file://${file}`)}); console.log(performance.now() - t);`;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const { stdout } = await run(process.execPath, ["--no-warnings", "--input-type=module", "-e", script], {
      env: { ...INIT_ENV, PATH: process.env.PATH ?? "" },
      timeout: 30_000,
    });
    times.push(Number(stdout.trim().split("\n").pop()));
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
