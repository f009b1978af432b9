/**
 * Deployments under live HTTP load through the ALB's real loopback listener, for their whole
 * duration. Real sockets need real time to pass, so the stack runs on a scaled clock; health checks
 * probe the app in process (in scaled time a check's timeout is a few real milliseconds).
 * The invariant monitor samples every simulated second throughout. The scale (100×) keeps a
 * deployment to a few seconds of wall time.
 */
import { DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { ModifyLoadBalancerAttributesCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readWeights } from "../../lib/roll/traffic.ts";
import { InvariantMonitor } from "../support/invariants.ts";
import { bootE2E, commitOf, type E2E, failedAt, settle, startDeploy, startMachine } from "../support/stack.ts";

let e: E2E;

beforeAll(async () => {
  e = await bootE2E({ clock: "scaled:100", settings: { "elbv2.realHealthChecks": false } });
  // At 100× a real event-loop stall of 0.6 s is a simulated minute: the ALB's default 60 s idle
  // timeout would answer 504 for the test machine's hiccups. Give the load balancer the 4000 s
  // maximum AWS allows, so every 504 left would be the deployment's.
  await e.elbv2.send(
    new ModifyLoadBalancerAttributesCommand({
      LoadBalancerArn: e.seeded.loadBalancerArn,
      Attributes: [{ Key: "idle_timeout.timeout_seconds", Value: "4000" }],
    }),
  );
}, 120_000);
afterAll(async () => e?.stack.stop());

interface Load {
  ok: number;
  failed: number;
  byCommit: Map<string, number>;
  failures: { at: number; status: number | string }[];
  stop(): Promise<void>;
}

/**
 * Real GETs to the ALB from `clients` concurrent loops until stopped (each request bounded by a 5 s
 * real timeout). Several clients, so a 10 % canary sees enough requests within one alarm period.
 */
function startLoad(url: string, clients = 4): Load {
  let running = true;
  const clock = e.stack.cloud.clock;
  const load: Load = {
    ok: 0,
    failed: 0,
    byCommit: new Map(),
    failures: [],
    stop: async () => {
      running = false;
      await loop;
    },
  };
  const client = async () => {
    while (running) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
        const text = await res.text();
        if (res.status >= 500) {
          load.failed++;
          load.failures.push({ at: clock.now(), status: res.status });
        } else {
          load.ok++;
          const c = (JSON.parse(text) as { commit?: string }).commit ?? "?";
          load.byCommit.set(c, (load.byCommit.get(c) ?? 0) + 1);
        }
      } catch (err) {
        load.failed++;
        load.failures.push({ at: clock.now(), status: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const loop = Promise.all(Array.from({ length: clients }, client));
  return load;
}

describe("deployments under live load", () => {
  it("a good commit: zero failed requests, traffic ends on the new commit, invariants hold", async () => {
    const monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const load = startLoad(e.seeded.loadBalancerUrl!);
    const commit = commitOf(1);
    const d = await startDeploy(e, commit);
    const done = await settle(e, d.arn);
    // A few more requests after the switch: all answered by the new commit.
    const after = load.byCommit.get(commit) ?? 0;
    await new Promise((r) => setTimeout(r, 200));
    await load.stop();
    expect(done.status, done.cause).toBe("SUCCEEDED");
    expect(load.failures).toEqual([]);
    expect(load.ok).toBeGreaterThan(100);
    expect(load.byCommit.get(e.seeded.commit) ?? 0).toBeGreaterThan(0);
    expect(load.byCommit.get(commit) ?? 0).toBeGreaterThan(after);
    expect(await monitor.finish(), monitor.report()).toEqual([]);
  });

  let failedArn = "";
  it("a bad commit: the 5xx alarm fires at the first canary step, traffic returns to blue, the execution fails at BakeCanary (watched bake); failures stay within the canary share", async () => {
    const monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const live = await readWeights(e.elbv2, { listenerArn: e.seeded.listenerArn });
    const blueTg = live.find((w) => w.weight === 100)!.arn;
    const commit = commitOf(2);
    e.stack.cloud.faults.add({ kind: "bad-commit", commit, mode: "500" });
    const load = startLoad(e.seeded.loadBalancerUrl!);
    const d = await startDeploy(e, commit);
    failedArn = d.arn;
    const done = await settle(e, d.arn);
    await load.stop();
    expect(done.status).toBe("FAILED");
    expect(failedAt(e, d.arn)).toBe("BakeCanary");
    expect(done.error).toBe("kiln.VerificationFailed");
    expect(done.cause).toMatch(
      /canary step 1\/3 \(10%.*(alarm kiln-web-5xx in ALARM|the judge failed green).*Traffic is back on blue/,
    );
    const alarm = await e.cloudwatch.send(new DescribeAlarmsCommand({ AlarmNames: ["kiln-web-5xx"] }));
    expect(alarm.MetricAlarms?.[0]?.StateValue).toBe("ALARM");
    const after = await readWeights(e.elbv2, { listenerArn: e.seeded.listenerArn });
    expect(after.find((w) => w.arn === blueTg)?.weight).toBe(100);
    // Only the 10 % canary saw the bad commit, and only during its bake: overall failures are a small share.
    const total = load.ok + load.failed;
    expect(load.failed).toBeGreaterThan(0);
    expect(load.failed / total).toBeLessThanOrEqual(0.1);
    expect(
      load.failures.every((f) => f.status === 500),
      JSON.stringify(load.failures.slice(0, 5)),
    ).toBe(true);
    // Continuous invariants only: the failed deployment's green is left for the abort (next test) by design.
    monitor.stop();
    expect(monitor.of(), monitor.report()).toEqual([]);
  });

  it("aborting the failed deployment under load: no failed request, green removed, invariants hold", async () => {
    expect(failedArn).not.toBe("");
    const monitor = InvariantMonitor.start(e.stack.cloud, { service: "web" });
    const load = startLoad(e.seeded.loadBalancerUrl!);
    const a = await startMachine(e, e.machines.abort, "web-abort-live", { service: "web" });
    const done = await settle(e, a);
    await load.stop();
    expect(done.status, done.cause).toBe("SUCCEEDED");
    expect(JSON.parse(done.output!).aborted).toBe(failedArn.split(":").at(-1));
    expect(load.failures).toEqual([]);
    expect(await monitor.finish(), monitor.report()).toEqual([]);
  });
});
