/**
 * Live HTTP traffic through the simulated ALB's real loopback listener, on a 50× scaled clock:
 * instances run the sample app's real servers, health checks are real GETs, and the load is real
 * requests. Every loop is bounded by a request count and a clock deadline.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import { dirname, join } from "node:path";
import { CloudWatchClient, DescribeAlarmsCommand, PutMetricAlarmCommand } from "@aws-sdk/client-cloudwatch";
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
  RegisterTargetsCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { afterEach, describe, expect, it } from "vitest";
import { type Clock, ScaledClock } from "../../../lib/clock.ts";
import { APP_PATHS } from "../../../local/app/server.ts";
import { Cloud, type CloudEvent } from "../../../local/cloud/cloud.ts";
import type { SimInstance } from "../../../local/cloud/contracts.ts";
import { type CloudWatchBackend, registerCloudWatch } from "../../../local/cloud/services/cloudwatch/index.ts";

import { type Ec2Backend, registerEc2 } from "../../../local/cloud/services/ec2/index.ts";
import { type Elbv2, registerElbv2 } from "../../../local/cloud/services/elbv2/index.ts";

const DEREGISTRATION_DELAY_S = 30;

async function until<T>(
  clock: Clock,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  limitMs: number,
  stepMs = 500,
): Promise<T> {
  const deadline = clock.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (clock.now() >= deadline) throw new Error(`condition not met within ${limitMs} ms of clock time`);
    await clock.sleep(stepMs);
  }
}

function install(inst: SimInstance, commit: string): void {
  for (const [path, value] of [
    [APP_PATHS.commit, commit],
    [APP_PATHS.service, "web"],
    [APP_PATHS.inService, ""],
  ] as const) {
    const file = join(inst.rootDir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${value}\n`);
  }
}

interface Fleet {
  cloud: Cloud;
  ec2: Ec2Backend;
  elb: Elbv2;
  client: ElasticLoadBalancingV2Client;
  url: string;
  tgArn: string;
  lbArn: string;
  instances: SimInstance[];
}

/** ALB + one target group + `n` healthy instances running `commit`, all on a 50× clock. */
async function fleet(n: number, commit = "abc1234"): Promise<Fleet> {
  const cloud = new Cloud({
    clock: new ScaledClock(50),
    seed: 11,
    settings: { "ec2.bootMs": 5_000, "elbv2.provisionMs": 5_000, "elbv2.firstCheckMs": 2_000 },
  });
  const ec2 = registerEc2(cloud);
  const elb = registerElbv2(cloud);
  registerCloudWatch(cloud);
  await cloud.start({ port: false });
  const client = new ElasticLoadBalancingV2Client(cloud.clientConfig());
  const subnets = ec2.subnets();
  const lb = (await client.send(new CreateLoadBalancerCommand({ Name: "web", Subnets: subnets.map((s) => s.id) })))
    .LoadBalancers![0]!;
  const tg = (
    await client.send(
      new CreateTargetGroupCommand({
        Name: "web-blue",
        Protocol: "HTTP",
        Port: 80,
        VpcId: subnets[0]!.vpcId,
        HealthCheckPath: "/health",
        HealthCheckIntervalSeconds: 5,
        HealthCheckTimeoutSeconds: 4,
        HealthyThresholdCount: 2,
        UnhealthyThresholdCount: 2,
      }),
    )
  ).TargetGroups![0]!;
  await client.send(
    new ModifyTargetGroupAttributesCommand({
      TargetGroupArn: tg.TargetGroupArn,
      Attributes: [{ Key: "deregistration_delay.timeout_seconds", Value: String(DEREGISTRATION_DELAY_S) }],
    }),
  );
  await client.send(
    new CreateListenerCommand({
      LoadBalancerArn: lb.LoadBalancerArn,
      Protocol: "HTTP",
      Port: 80,
      DefaultActions: [{ Type: "forward", TargetGroupArn: tg.TargetGroupArn }],
    }),
  );
  const instances = ec2.launch({ imageId: ec2.baseImages()[0]!.imageId, tags: {}, count: n });
  await until(cloud.clock, () => instances.every((i) => i.state === "running" && (i.app?.port ?? 0) > 0), 120_000);
  for (const i of instances) install(i, commit);
  await client.send(
    new RegisterTargetsCommand({ TargetGroupArn: tg.TargetGroupArn, Targets: instances.map((i) => ({ Id: i.id })) }),
  );
  await until(
    cloud.clock,
    async () => {
      const h =
        (await client.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg.TargetGroupArn }))).TargetHealthDescriptions ??
        [];
      return elb.lb("web")?.state === "active" && h.length === n && h.every((x) => x.TargetHealth?.State === "healthy");
    },
    120_000,
  );
  const url = elb.listenerUrl("web");
  if (!url) throw new Error("the listener has no loopback URL");
  return { cloud, ec2, elb, client, url, tgArn: tg.TargetGroupArn!, lbArn: lb.LoadBalancerArn!, instances };
}

function get(agent: http.Agent, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

interface Sample {
  /** Clock time the client sent the request. */
  sent: number;
  status: number;
  instance?: string;
  error?: string;
}

/** `workers` concurrent clients looping GET / until `stop()` or `maxRequests`. */
function load(f: Fleet, workers: number, maxRequests: number) {
  const samples: Sample[] = [];
  // Keep-alive connections to the listener, as a browser or load tester would hold.
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  let stopped = false;
  let sentCount = 0;
  const worker = async () => {
    while (!stopped && sentCount < maxRequests) {
      sentCount++;
      const sent = f.cloud.clock.now();
      try {
        const { status, body } = await get(agent, `${f.url}/`);
        let instance: string | undefined;
        try {
          instance = (JSON.parse(body) as { instance?: string }).instance;
        } catch {
          // a non-JSON body (an ALB error page) names no instance
        }
        samples.push({ sent, status, instance });
      } catch (err) {
        samples.push({ sent, status: 0, error: (err as Error).message });
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, worker)).finally(() => agent.destroy());
  return {
    samples,
    /** Resolves when `maxRequests` were sent (or after `stop()`). */
    done,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

describe("ALB under live traffic", () => {
  let cloud: Cloud | undefined;
  afterEach(async () => {
    await cloud?.stop();
    cloud = undefined;
  });

  it("loses no request while one instance is deregistered and another is drained and terminated", async () => {
    const f = await fleet(3);
    cloud = f.cloud;
    const [a, b, c] = f.instances as [SimInstance, SimInstance, SimInstance];
    const traffic = load(f, 4, 20_000);
    await until(f.cloud.clock, () => traffic.samples.length >= 200, 600_000, 50);
    expect(new Set(traffic.samples.map((s) => s.instance))).toEqual(new Set([a.id, b.id, c.id]));

    // A: serviced out through the API; the ALB drains it for the deregistration delay.
    const drainA = f.cloud.clock.now();
    await f.client.send(new DeregisterTargetsCommand({ TargetGroupArn: f.tgArn, Targets: [{ Id: a.id }] }));
    const aDrained = f.elb.deregisterTargets(f.tgArn, [{ id: a.id }]).then(() => f.cloud.clock.now());
    // B: terminated the way Auto Scaling does it: deregister, wait for the drain, then terminate.
    const drainB = f.cloud.clock.now();
    const bTerminated = f.elb.deregisterTargets(f.tgArn, [{ id: b.id }]).then(() => {
      const at = f.cloud.clock.now();
      f.ec2.terminate([b.id]);
      return at;
    });
    const [aDone, bDone] = await Promise.all([aDrained, bTerminated]);
    await until(f.cloud.clock, () => b.state === "terminated", 120_000);
    const tail = traffic.samples.length;
    await until(f.cloud.clock, () => traffic.samples.length >= tail + 200, 600_000, 50);
    await traffic.stop();

    const failed = traffic.samples.filter((s) => s.status !== 200);
    expect(failed).toEqual([]);
    // The deregistration delay is honoured on the cloud clock (both ends are read from a 50× scaled
    // clock in different callbacks: allow one real millisecond, 50 simulated, of reading skew).
    expect(aDone - drainA).toBeGreaterThanOrEqual(DEREGISTRATION_DELAY_S * 1000 - 50);
    expect(bDone - drainB).toBeGreaterThanOrEqual(DEREGISTRATION_DELAY_S * 1000 - 50);
    // No request sent after a drain began went to the draining instance (in-flight ones may finish).
    expect(traffic.samples.filter((s) => s.sent > drainA && s.instance === a.id)).toEqual([]);
    expect(traffic.samples.filter((s) => s.sent > drainB && s.instance === b.id)).toEqual([]);
    expect(traffic.samples.slice(tail).every((s) => s.instance === c.id)).toBe(true);
    const h = (await f.client.send(new DescribeTargetHealthCommand({ TargetGroupArn: f.tgArn }))).TargetHealthDescriptions ?? [];
    expect(h.map((x) => [x.Target?.Id, x.TargetHealth?.State])).toEqual([[c.id, "healthy"]]);
  });

  it("counts a bad commit's 500s as HTTPCode_Target_5XX_Count and raises the alarm on them", async () => {
    const f = await fleet(2, "bad0001");
    cloud = f.cloud;
    const events: CloudEvent[] = [];
    f.cloud.bus.on("event", (e: CloudEvent) => events.push(e));
    const cw = new CloudWatchClient(f.cloud.clientConfig());
    const tgDim = `targetgroup/web-blue/${f.tgArn.split("/").pop()}`;
    const lbDim = `app/web/${f.lbArn.split("/").pop()}`;
    await cw.send(
      new PutMetricAlarmCommand({
        AlarmName: "web-5xx",
        Namespace: "AWS/ApplicationELB",
        MetricName: "HTTPCode_Target_5XX_Count",
        Dimensions: [
          { Name: "LoadBalancer", Value: lbDim },
          { Name: "TargetGroup", Value: tgDim },
        ],
        Statistic: "Sum",
        Period: 60,
        // 1 of the last 2 periods: the burst may straddle a period boundary on a loaded machine.
        EvaluationPeriods: 2,
        DatapointsToAlarm: 1,
        Threshold: 5,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        TreatMissingData: "notBreaching",
      }),
    );
    f.cloud.faults.add({ kind: "bad-commit", commit: "bad0001", mode: "500" });
    const traffic = load(f, 4, 40);
    await traffic.done;
    expect(traffic.samples.map((s) => s.status)).toEqual(Array(40).fill(500));
    const alarm = await until(
      f.cloud.clock,
      async () => {
        const a = (await cw.send(new DescribeAlarmsCommand({ AlarmNames: ["web-5xx"] }))).MetricAlarms?.[0];
        return a?.StateValue === "ALARM" ? a : undefined;
      },
      600_000,
    );
    expect(alarm.StateReason).toMatch(
      /^Threshold Crossed: [12] out of the last 2 datapoints \[.+\] (was|were) greater than or equal to the threshold \(5\.0\)/,
    );
    // Depending on where the period boundary fell, the alarm may have passed through OK first.
    expect(
      events.find(
        (e) => e.detailType === "CloudWatch Alarm State Change" && (e.detail.state as { value: string }).value === "ALARM",
      ),
    ).toMatchObject({
      source: "aws.cloudwatch",
      detail: { alarmName: "web-5xx", state: { value: "ALARM" } },
    });
  });

  it("reports TargetResponseTime as the app's modelled latency on a scaled clock, not this machine's socket time or stalls", async () => {
    const f = await fleet(2, "5100001");
    cloud = f.cloud;
    const lbDim = `app/web/${f.lbArn.split("/").pop()}`;
    const store = f.cloud.backend<CloudWatchBackend>("monitoring").store;
    const latencies = () =>
      [
        ...(store.get("AWS/ApplicationELB", "TargetResponseTime", [{ Name: "LoadBalancer", Value: lbDim }])?.buckets.values() ??
          []),
      ].flatMap((b) => b.values.map((v) => v * 1000));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const agent = new http.Agent({ keepAlive: true });
    const roundTrips: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t = performance.now();
      expect((await get(agent, `${f.url}/`)).status).toBe(200);
      roundTrips.push(performance.now() - t);
    }
    // A healthy commit's target time is its modelled latency, within the client's round trip: the
    // clock's ×50 is not applied to this machine's socket and CPU time.
    const fast = latencies();
    expect(fast).toHaveLength(40);
    expect(median(fast)).toBeLessThanOrEqual(median(roundTrips));
    // A slow commit's modelled latency is simulated time, reported in full.
    f.cloud.faults.add({ kind: "bad-commit", commit: "5100001", mode: "slow", latencyMs: 400 });
    for (let i = 0; i < 10; i++) expect((await get(agent, `${f.url}/`)).status).toBe(200);
    // A stall of the shared event loop while the app waits (a busy pipeline step, a loaded CI
    // machine) is not the target's latency: on AWS the target is its own machine.
    const stalled = get(agent, `${f.url}/`);
    setTimeout(() => {
      const until = performance.now() + 300;
      while (performance.now() < until);
    }, 2);
    expect((await stalled).status).toBe(200);
    agent.destroy();
    const slow = latencies().slice(40);
    expect(slow).toHaveLength(11);
    for (const ms of slow) expect(ms).toBeCloseTo(400, 6);
    // The in-process path (background users, `ElbBackend.request`) reports the same: a stall during
    // the request is not counted.
    const inProcess = f.elb.request(f.lbArn, "/");
    setTimeout(() => {
      const until = performance.now() + 300;
      while (performance.now() < until);
    }, 2);
    expect((await inProcess).status).toBe(200);
    const last = latencies().slice(51);
    expect(last).toHaveLength(1);
    expect(last[0]).toBeCloseTo(400, 6);
  });
});
