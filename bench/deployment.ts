/**
 * Measures one full deployment of the sample service in virtual time: a fresh stack, a seeded blue
 * fleet of `instances`, one StartExecution on the deploy state machine, and everything the run
 * produced — lead times, the critical path (bench/timeline.ts), state transitions and history
 * events (GetExecutionHistory), AWS API calls by service (router observer), wall time.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DescribeExecutionCommand, GetExecutionHistoryCommand, type HistoryEvent, SFNClient } from "@aws-sdk/client-sfn";
import YAML from "yaml";
import type { VirtualClock } from "../lib/clock.ts";
import { deploy } from "../local/cli/commands.ts";
import { stackTarget } from "../local/cli/target.ts";
import { seedService } from "../local/seed.ts";
import { PROJECT_ROOT } from "../local/serverless.ts";
import { Stack } from "../local/stack.ts";
import { statesBackend } from "../local/states/api.ts";
import { type CriticalPath, criticalPath, record, type StateVisit } from "./timeline.ts";

/** Step Functions Standard price per state transition (us-east-1: $0.025 per 1,000). */
export const PRICE_PER_TRANSITION = 0.025 / 1000;

export interface DeploymentOptions {
  instances: number;
  /** Real loopback HTTP servers per instance (off for large fleets: health checks answer in process). */
  realServers: boolean;
  seed?: number;
  settings?: Record<string, number | string | boolean>;
}

export interface DeploymentMeasure {
  instances: number;
  realServers: boolean;
  status: string;
  error?: string;
  /** Lead times in cloud milliseconds. */
  lead: { totalMs: number; bakeMs: number; rollMs: number };
  critical: CriticalPath;
  overhead: { deployment: number; bake: number; roll: number };
  /** StateEntered events in the history (what Step Functions bills as transitions, retries aside). */
  transitions: number;
  historyEvents: number;
  costUsd: number;
  /** Successful and failed API calls during the execution, by service and by `service:Action`. */
  apiCalls: Record<string, number>;
  apiActions: Record<string, number>;
  apiErrors: number;
  /**
   * Wall milliseconds: stack start + seeding, the deployment itself, and how much of the latter had
   * real I/O in flight (bash scripts of Run Command, instance filesystems) holding the virtual clock.
   */
  wall: { setupMs: number; deployMs: number; ioHeldMs: number };
  /** Cloud milliseconds advanced during the deployment, and per wall second. */
  simMs: number;
  speedup: number;
  /** IAM at run time during the deployment: calls authorized, policy evaluations (uncached), wall ms spent authorizing. */
  iam: { checks: number; evaluations: number; ms: number };
}

/**
 * Without real app servers nothing listens on the instance's port, so the sample app's smoke test
 * (an HTTP GET of /health?deep=1 over bash /dev/tcp) cannot pass. For those runs the service's
 * smoke test is replaced by a check of what `sample-app status` reports; every other script, and the
 * ALB's health checks (answered in process), are unchanged.
 */
export function benchConfig(realServers: boolean): string | undefined {
  if (realServers) return undefined;
  const file = path.join(PROJECT_ROOT, "kiln.config.yaml");
  const doc = YAML.parse(readFileSync(file, "utf8")) as { services: Record<string, { scripts: Record<string, string> }> };
  for (const svc of Object.values(doc.services)) {
    // Read the whole status first: `grep -q` closing the pipe early would SIGPIPE sample-app.
    svc.scripts.smokeTest = "set -euo pipefail\nstatus=$(sample-app status)\ngrep -qx 'installed=yes' <<<\"$status\"\n";
  }
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-bench-"));
  const out = path.join(dir, "kiln.config.yaml");
  writeFileSync(out, YAML.stringify(doc));
  return out;
}

const COMMIT_BLUE = "a".repeat(40);
const COMMIT_GREEN = "b".repeat(40);

export async function measureDeployment(opts: DeploymentOptions): Promise<DeploymentMeasure> {
  const t0 = Date.now();
  const config = benchConfig(opts.realServers);
  const stack = await Stack.start({
    clock: "virtual",
    port: false,
    console: false,
    seed: opts.seed ?? 1,
    ...(config ? { config } : {}),
    settings: {
      "app.realServers": opts.realServers,
      "elbv2.maxTargetsPerGroup": Math.max(1000, opts.instances),
      // AWS durations without jitter, so fleet size is the only thing that differs between sizes
      // (transitions compared across sizes; overhead is measured against observed durations anyway).
      "ec2.bootMsJitter": 0,
      "ec2.imageMsJitter": 0,
      "ssm.agentOnlineJitter": 0,
      ...opts.settings,
    },
  });
  try {
    const cloud = stack.cloud;
    const seeded = await seedService(cloud, {
      commit: COMMIT_BLUE,
      instances: opts.instances,
      ...(config ? { configFile: config } : {}),
    });
    const setupMs = Date.now() - t0;

    const apiCalls: Record<string, number> = {};
    const apiActions: Record<string, number> = {};
    let apiErrors = 0;
    const unobserve = cloud.router.observe((c) => {
      apiCalls[c.service] = (apiCalls[c.service] ?? 0) + 1;
      apiActions[`${c.service}:${c.action}`] = (apiActions[`${c.service}:${c.action}`] ?? 0) + 1;
      if (c.error) apiErrors++;
    });
    const rec = record(cloud, { targetGroups: [seeded.targetGroupArns[1]] });
    const clock = cloud.clock as VirtualClock;
    const io = measureHolds(clock);
    const sfn = new SFNClient(cloud.clientConfig());
    const iam0 = { ...stack.iamStats };
    const w0 = Date.now();
    const sim0 = clock.now();
    // The deployment enters the environment's queue as `kiln deploy` does (requestDeploy): an
    // execution started around the queue holds no lock and is refused at AcquireLock.
    const { result } = await deploy(
      stackTarget(stack),
      "web",
      { commit: COMMIT_GREEN, env: "production", reason: "bench" },
      () => {},
    );
    if (result.action !== "started" || typeof result.executionArn !== "string")
      throw new Error(`requestDeploy did not start the deployment: ${JSON.stringify(result)}`);
    const arn = result.executionArn;
    await statesBackend(cloud).awaitExecution(arn);
    const deployMs = Date.now() - w0;
    const simMs = clock.now() - sim0;
    const ioHeldMs = io.stop();
    rec.stop();
    unobserve();

    const d = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    const events = await fullHistory(sfn, arn);
    const visits = stateVisits(events);
    const at = (name: string) => visits.find((v) => v.name === name)?.enteredAt;
    const startMs = d.startDate!.getTime();
    const stopMs = (d.stopDate ?? cloud.clock.date()).getTime();
    const rollStartedAt = at("RollPhase") ?? stopMs;
    const bakeStartedAt = at("FindImage") ?? startMs;
    const lead = { totalMs: stopMs - startMs, bakeMs: rollStartedAt - bakeStartedAt, rollMs: stopMs - rollStartedAt };
    const status = d.status ?? "UNKNOWN";
    if (status !== "SUCCEEDED")
      throw new Error(`deployment of ${opts.instances} instances ended ${status}: ${d.error} ${d.cause?.slice(0, 400)}`);
    const critical = criticalPath({
      timeline: rec.timeline,
      visits,
      blueGroup: seeded.blueGroup,
      greenTargetGroup: seeded.targetGroupArns[1],
      rollStartedAt,
      greenDesired: opts.instances,
    });
    const transitions = events.filter((e) => e.type?.endsWith("StateEntered")).length;
    return {
      instances: opts.instances,
      realServers: opts.realServers,
      status,
      lead,
      critical,
      overhead: {
        deployment: lead.totalMs / critical.totalMs,
        bake: critical.bakeMs ? lead.bakeMs / critical.bakeMs : Number.NaN,
        roll: lead.rollMs / critical.rollMs,
      },
      transitions,
      historyEvents: events.length,
      costUsd: transitions * PRICE_PER_TRANSITION,
      apiCalls,
      apiActions,
      apiErrors,
      wall: { setupMs, deployMs, ioHeldMs },
      simMs,
      speedup: simMs / Math.max(1, deployMs),
      iam: {
        checks: stack.iamStats.checks - iam0.checks,
        evaluations: stack.iamStats.evaluations - iam0.evaluations,
        ms: Math.round(stack.iamStats.ms - iam0.ms),
      },
    };
  } finally {
    await stack.stop();
  }
}

/**
 * Wall time during which at least one real I/O operation held the clock (a profile of where a
 * virtual-time run spends its wall time: everything else is in-process JavaScript).
 */
function measureHolds(clock: VirtualClock): { stop(): number } {
  const original = clock.hold.bind(clock);
  let active = 0;
  let since = 0;
  let total = 0;
  clock.hold = <T>(work: Promise<T>): Promise<T> => {
    if (active++ === 0) since = performance.now();
    const done = () => {
      if (--active === 0) total += performance.now() - since;
    };
    work.then(done, done);
    return original(work);
  };
  return {
    stop() {
      clock.hold = original;
      return Math.round(total + (active > 0 ? performance.now() - since : 0));
    },
  };
}

/** Every history event, page by page, as a client would read it. */
export async function fullHistory(sfn: SFNClient, executionArn: string): Promise<HistoryEvent[]> {
  const out: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, nextToken }));
    out.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return out;
}

/** Each state entered, with when it was entered and exited (history timestamps). */
export function stateVisits(events: HistoryEvent[]): StateVisit[] {
  const visits: StateVisit[] = [];
  const open = new Map<string, StateVisit[]>();
  for (const e of events) {
    const ts = e.timestamp?.getTime() ?? 0;
    if (e.type?.endsWith("StateEntered")) {
      const v = { name: e.stateEnteredEventDetails?.name ?? "?", enteredAt: ts };
      visits.push(v);
      open.set(v.name, [...(open.get(v.name) ?? []), v]);
    } else if (e.type?.endsWith("StateExited")) {
      const name = e.stateExitedEventDetails?.name ?? "?";
      const v = open.get(name)?.shift();
      if (v) v.exitedAt = ts;
    }
  }
  return visits;
}
