/** `kiln start`, `kiln up`, `kiln cloud`: the long-running local commands. */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { DescribeExecutionCommand, GetExecutionHistoryCommand, type HistoryEvent } from "@aws-sdk/client-sfn";
import { parse } from "yaml";
import { type Clock, parseClock, VirtualClock } from "../../lib/clock.ts";
import { defaultEnvironment, environmentsOf, loadConfig, serviceConfig } from "../../lib/config/index.ts";
import { serviceStatus } from "../../lib/ops/status.ts";
import { createCloud } from "../cloud/index.ts";
import { seedService, type SeedResult } from "../seed.ts";
import { Stack } from "../stack.ts";
import { judgedFailure } from "../../lib/ops/redrive.ts";
import { sendPush, waitForExecution } from "./commands.ts";
import { CliError, EXIT, removeStackRecord, stackTarget, writeStackRecord } from "./target.ts";
import { ConfigError } from "../../lib/config/load.ts";

type Out = (line: string) => void;

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
}

// Function logs (JSON lines meant for CloudWatch) would drown the live view: keep warnings and errors.
process.env.KILN_LOG_LEVEL ??= "warn";

async function bootStack(opts: {
  clock?: string;
  port?: number;
  seed: boolean;
  service?: string;
  out: Out;
}): Promise<{ stack: Stack; seeded?: SeedResult }> {
  // The configuration is validated before anything listens: a stack that booted half-way (its cloud
  // serving, its clock running) would keep the process alive after the error.
  try {
    loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.usage);
    throw err;
  }
  // In scaled time a health check's timeout is a few real milliseconds: probe the app in process
  // (same handler, same service-in state) so a busy machine does not flap targets.
  const stack = await Stack.start({
    clock: opts.clock ?? "scaled:60",
    port: opts.port ?? 0,
    settings: { "elbv2.realHealthChecks": false },
  });
  try {
    return await seedAndRecord(stack, opts);
  } catch (err) {
    await stack.stop();
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.usage);
    throw err;
  }
}

async function seedAndRecord(
  stack: Stack,
  opts: { seed: boolean; service?: string; out: Out },
): Promise<{ stack: Stack; seeded?: SeedResult }> {
  const service = opts.service ?? Object.keys(loadConfig().services)[0]!;
  let seeded: SeedResult | undefined;
  if (opts.seed) {
    opts.out(`seeding ${service}: baking the previous commit and starting a blue fleet of 4 behind an ALB…`);
    seeded = await seedService(stack.cloud, { service, commit: randomBytes(20).toString("hex"), instances: 4 });
    opts.out(`  blue fleet ${seeded.blueGroup} serves ${seeded.commit.slice(0, 12)} at ${seeded.loadBalancerUrl ?? "(no URL)"}`);
    // The service's other environments, each on its own load balancer, target groups and fleet.
    const svc = serviceConfig(loadConfig(), service);
    for (const env of environmentsOf(svc).filter((e) => e !== defaultEnvironment(svc, service))) {
      opts.out(`seeding ${service} ${env}: a blue fleet of 2 on its own load balancer…`);
      const s = await seedService(stack.cloud, {
        service,
        environment: env,
        commit: randomBytes(20).toString("hex"),
        instances: 2,
      });
      opts.out(`  ${env} fleet ${s.blueGroup} serves ${s.commit.slice(0, 12)} at ${s.loadBalancerUrl ?? "(no URL)"}`);
    }
  }
  const info = stack.info();
  writeStackRecord({
    ...info,
    pid: process.pid,
    webhookSecret: stack.webhookSecret,
    credentials: { ...stack.cloud.credentials },
    startedAt: new Date().toISOString(),
    services: seeded ? { [service]: { loadBalancerUrl: seeded.loadBalancerUrl, commit: seeded.commit } } : {},
  });
  return { stack, seeded };
}

/** `npm start`: a real deployment, end to end, shown live. */
export async function runStart(opts: {
  once: boolean;
  clock?: string;
  badCommit: boolean;
  service?: string;
  port?: number;
  out: Out;
}): Promise<number> {
  const out = opts.out;
  const wallStart = Date.now();
  out(
    "kiln: starting the local stack (simulated AWS cloud, Step Functions engine, DynamoDB, kiln's functions from serverless.yml)…",
  );
  const { stack, seeded } = await bootStack({
    clock: opts.clock ?? "scaled:60",
    port: opts.port,
    seed: true,
    service: opts.service,
    out,
  });
  const clock = stack.cloud.clock;
  const t = stackTarget(stack);
  const service = seeded!.service;
  const cfg = serviceConfig(loadConfig(), service, seeded!.environment);
  const commit = randomBytes(20).toString("hex");
  if (opts.badCommit) {
    stack.cloud.faults.add({ kind: "bad-commit", commit, mode: "500" });
    out(`  commit ${commit.slice(0, 12)} is a bad commit: it answers 500s (the canary alarm should catch it)`);
  }
  const branch = Object.keys(cfg.branches)[0]!;
  out(`pushing ${commit.slice(0, 12)} to ${cfg.repository}@${branch} (signed GitHub webhook → ${t.webhookUrl})`);
  const r = await sendPush(t.webhookUrl!, stack.webhookSecret, { repository: cfg.repository, branch, commit });
  const arn = r.body.executionArn as string | undefined;
  if (r.status !== 202 || !arn) {
    out(`webhook answered ${r.status}: ${JSON.stringify(r.body)}`);
    await stack.stop();
    return EXIT.failed;
  }
  out(`deployment started: ${arn}`);
  if (stack.consoleUrl) out(`  watch it in the console: ${stack.consoleUrl}#/execution/${encodeURIComponent(arn)}`);
  const t0 = clock.now();
  const elapsed = () => {
    const s = Math.floor((clock.now() - t0) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  };
  // Live traffic through the ALB for the whole deployment: every failure is counted.
  const load = { ok: 0, failed: 0, byCommit: new Map<string, number>(), failures: [] as string[] };
  let loading = true;
  const url = seeded!.loadBalancerUrl;
  const loadLoop = (async () => {
    while (loading && url) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
        const text = await res.text();
        if (res.status >= 500) {
          load.failed++;
          if (load.failures.length < 5) load.failures.push(`[${elapsed()}] ${res.status} ${text.slice(0, 120)}`);
        } else {
          load.ok++;
          const c = (JSON.parse(text) as { commit?: string }).commit?.slice(0, 12) ?? "?";
          load.byCommit.set(c, (load.byCommit.get(c) ?? 0) + 1);
        }
      } catch (err) {
        load.failed++;
        if (load.failures.length < 5) load.failures.push(`[${elapsed()}] ${(err as Error).message}`);
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  let seenEvents = 0;
  let lastStep = "";
  let lastTraffic = "";
  let lastFleet = "";
  const poll = async () => {
    const h = await t.clients.sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 1000 }));
    const events = (h.events ?? []) as HistoryEvent[];
    for (const e of events.slice(seenEvents)) {
      const name = e.stateEnteredEventDetails?.name;
      // Show each step once per run of polls: Choice and Wait states of the polling loops are noise here.
      if (e.type === "TaskStateEntered" && name && name !== lastStep) {
        out(`[${elapsed()}] ${name}`);
        lastStep = name;
      }
      if (e.type === "TaskFailed" || e.type === "LambdaFunctionFailed")
        out(
          `[${elapsed()}]   ✗ ${e.taskFailedEventDetails?.error ?? ""} ${(e.taskFailedEventDetails?.cause ?? "").slice(0, 300)}`,
        );
    }
    seenEvents = events.length;
    const s = await serviceStatus(service, cfg, t.clients, { environment: seeded!.environment });
    const traffic = s.weights.map((w) => `${w.name} ${w.weight}%`).join(" | ");
    if (traffic !== lastTraffic) out(`[${elapsed()}]   traffic  ${traffic}`);
    lastTraffic = traffic;
    const fleet = s.fleets
      .filter((f) => f.capacity.desired > 0 || f.instances.length > 0)
      .map(
        (f) =>
          `${f.state === "retired" ? "retired" : f.commit?.slice(0, 7)}: ${f.instances.filter((i) => i.health === "healthy").length}/${f.capacity.desired} healthy`,
      )
      .join(", ");
    if (fleet !== lastFleet) out(`[${elapsed()}]   fleet    ${fleet}`);
    lastFleet = fleet;
  };
  const final = await waitForExecution(t, arn, { everyMs: 250, onPoll: poll });
  await poll();
  loading = false;
  await loadLoop;
  const s = await serviceStatus(service, cfg, t.clients, { environment: seeded!.environment });
  out("");
  out(
    `deployment ${final} after ${elapsed()} simulated (${((Date.now() - wallStart) / 1000).toFixed(1)} s wall, clock ${clock.kind})`,
  );
  out(
    `  live commit ${s.liveCommit?.slice(0, 12) ?? "?"} · traffic ${s.weights.map((w) => `${w.name} ${w.weight}%`).join(" | ")}`,
  );
  out(
    `  requests through the ALB during the deployment: ${load.ok} ok, ${load.failed} failed · ${[...load.byCommit].map(([c, n]) => `${c}: ${n}`).join(", ")}`,
  );
  for (const f of load.failures) out(`    failed request ${f}`);
  if (final !== "SUCCEEDED") {
    const judged = judgedFailure(await t.clients.sfn.send(new DescribeExecutionCommand({ executionArn: arn })));
    // A commit the canary failed is a bad commit: the way forward is an abort or a new push.
    if (judged)
      out(
        `  the canary failed the commit: ${judged}\n  see why: npx kiln logs ${arn} · undo: npx kiln abort ${arn} · or push a fix`,
      );
    else out(`  see why: npx kiln logs ${arn} · retry: npx kiln redrive ${arn} · undo: npx kiln abort ${arn}`);
  }
  const ok = final === "SUCCEEDED" && s.liveCommit === commit;
  if (opts.once) {
    await stack.stop();
    removeStackRecord(process.pid);
    return ok ? EXIT.ok : EXIT.failed;
  }
  serveClock(clock);
  out("");
  out(`the stack keeps running: console ${stack.consoleUrl ?? "(not available)"} · cloud ${stack.cloud.endpoint}`);
  out("try: npx kiln status · npx kiln push web · npx kiln logs <execution> — Ctrl-C to stop");
  await waitForSignal();
  await stack.stop();
  removeStackRecord(process.pid);
  return ok ? EXIT.ok : EXIT.failed;
}

/**
 * A stack that outside callers reach and that waits for them: virtual time follows the served rule
 * (lib/clock.ts VirtualClock.serve: it jumps only on demand and never past an open task token's
 * deadline; otherwise it flows at wall speed, so a stack with only schedules left idles).
 */
export function serveClock(clock: Clock): Clock {
  if (clock instanceof VirtualClock) clock.serve();
  return clock;
}

export async function runUp(opts: { port?: number; clock?: string; seed: boolean; out: Out }): Promise<number> {
  const { stack, seeded } = await bootStack({
    clock: opts.clock ?? "scaled:60",
    port: opts.port,
    seed: opts.seed,
    out: opts.out,
  });
  serveClock(stack.cloud.clock);
  const info = stack.info();
  opts.out(`kiln local stack up (clock ${stack.cloud.clock.kind})`);
  opts.out(`  cloud endpoint  ${info.endpoint}   (requests must be signed with this stack's credentials; the AWS CLI:)`);
  opts.out(`    ${awsEnv(stack.cloud)} aws ec2 describe-instances`);
  opts.out(`  webhook URL     ${info.webhookUrl}`);
  opts.out(`  console         ${info.consoleUrl ?? "(not available)"}`);
  if (seeded) opts.out(`  ${seeded.service} ALB       ${seeded.loadBalancerUrl}`);
  opts.out("Ctrl-C to stop");
  await waitForSignal();
  await stack.stop();
  removeStackRecord(process.pid);
  return EXIT.ok;
}

/** The AWS_… variables that point the AWS CLI, boto3 or an SDK at the cloud with its credentials. */
function awsEnv(cloud: {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}): string {
  return `AWS_ENDPOINT_URL=${cloud.endpoint} AWS_REGION=${cloud.region} AWS_DEFAULT_REGION=${cloud.region} AWS_ACCESS_KEY_ID=${cloud.credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${cloud.credentials.secretAccessKey}`;
}

export async function runCloud(opts: { port: number; clock: string; scenario?: string; out: Out }): Promise<number> {
  let scenario: { seed?: number; settings?: Record<string, number | string | boolean>; faults?: [] } = {};
  if (opts.scenario) {
    const text = readFileSync(opts.scenario, "utf8");
    scenario = (opts.scenario.endsWith(".json") ? JSON.parse(text) : parse(text)) ?? {};
  }
  const cloud = createCloud({
    clock: serveClock(parseClock(opts.clock)),
    seed: scenario.seed,
    settings: scenario.settings,
    faults: scenario.faults,
  });
  await cloud.start({ port: opts.port });
  opts.out(`simulated AWS cloud listening on ${cloud.endpoint} (clock ${cloud.clock.kind})`);
  opts.out(`  export ${awsEnv(cloud)}`);
  opts.out(
    `  world state: ${cloud.endpoint}/_kiln/world · faults: POST ${cloud.endpoint}/_kiln/faults (signed too: curl --aws-sigv4 aws:amz:${cloud.region}:kiln --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" …)`,
  );
  await waitForSignal();
  await cloud.stop();
  return EXIT.ok;
}

/** `kiln console`: the console alone, against the running local stack or AWS (`--profile/--region`). */
export async function runConsole(opts: { port?: number; target: import("./target.ts").Target; out: Out }): Promise<number> {
  const { startConsole } = await import("../console/server.ts");
  const server = await startConsole({ target: opts.target, port: opts.port });
  opts.out(`kiln console (${opts.target.kind}${opts.target.kind === "aws" ? ` ${opts.target.region}` : ""}): ${server.url}`);
  opts.out("Ctrl-C to stop");
  await waitForSignal();
  await server.close();
  return EXIT.ok;
}
