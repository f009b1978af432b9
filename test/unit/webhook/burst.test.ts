/**
 * The webhook over the real lock logic (dynalite) and a Step Functions fake: redeliveries,
 * queueing, and a burst of concurrent deliveries.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../../lib/clock.ts";
import { readLock, releaseAndStartNext, type StartDeps, startOrQueue } from "../../../lib/lock/index.ts";
import { routingFromConfig } from "../../../lib/webhook/routing.ts";
import { handleWebhook, type WebhookDeps } from "../../../lib/webhook/webhook.ts";
import { ABORT_SM, DEPLOY_SM, type Dynamo, FakeSfn, startDynamo } from "../lock/fakes.ts";
import { delivery, fixture, SECRET } from "./helpers.ts";

const SERVICES = ["web", "api", "auth", "search", "billing"];
const routing = routingFromConfig({
  services: Object.fromEntries(SERVICES.map((s) => [s, { repository: `acme/${s}`, branches: { main: "production" } }])),
});
const PUSH = fixture("push-main");
const commitOf = (s: string, n: number) =>
  `${s
    .padEnd(8, "0")
    .slice(0, 8)
    .replace(/[^0-9a-f]/g, "a")}${n.toString(16).padStart(4, "0")}`.padEnd(40, "b");
const pushBody = (service: string, n: number, pushedAt: number) => ({
  ...PUSH,
  // Each push's `before` is the previous push's commit, as on a branch that only moves forward.
  before: n > 0 ? commitOf(service, n - 1) : "0".repeat(40),
  after: commitOf(service, n),
  repository: { ...(PUSH.repository as object), full_name: `Acme/${service}`, pushed_at: pushedAt },
});

/** Seeded shuffle (mulberry32) so the burst order is reproducible. */
function shuffle<T>(xs: T[], seed: number): T[] {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("webhook over the lock (dynalite + Step Functions fake)", () => {
  let dyn: Dynamo;
  let sfn: FakeSfn;
  let lockDeps: StartDeps;
  let deps: WebhookDeps;
  beforeAll(async () => {
    dyn = await startDynamo();
  });
  afterAll(async () => dyn?.stop());
  beforeEach(async () => {
    sfn = new FakeSfn();
    lockDeps = {
      ddb: dyn.ddb,
      table: await dyn.newTable(),
      clock: new VirtualClock(),
      sfn,
      deployStateMachineArn: DEPLOY_SM,
      abortStateMachineArn: ABORT_SM,
    };
    deps = { secrets: async () => [SECRET], routing, start: (r) => startOrQueue(r, lockDeps) };
  });

  it("a redelivery gets the same execution back with duplicate: true, while running and after it ended", async () => {
    const body = pushBody("web", 1, 1767603600);
    const first = JSON.parse((await handleWebhook(await delivery(body, { deliveryId: "d-1" }), deps)).body);
    const again = await handleWebhook(await delivery(body, { deliveryId: "d-1" }), deps);
    expect(again.statusCode).toBe(202);
    expect(JSON.parse(again.body)).toEqual({ ...first, duplicate: true });
    sfn.end(first.executionArn, "SUCCEEDED");
    await releaseAndStartNext({ service: "web", environment: "production", executionArn: first.executionArn }, lockDeps);
    const later = JSON.parse((await handleWebhook(await delivery(body, { deliveryId: "d-1" }), deps)).body);
    // After it ran, a redelivery starts nothing and says why (202).
    expect(later).toMatchObject({
      service: first.service,
      commit: first.commit,
      ignored: true,
      reason: expect.stringMatching(/redelivery of request #1/),
    });
    expect(sfn.starts).toHaveLength(1);
  });

  it("a push while a deployment runs is queued and the answer says so", async () => {
    await handleWebhook(await delivery(pushBody("api", 1, 1000)), deps);
    const res = await handleWebhook(await delivery(pushBody("api", 2, 2000)), deps);
    expect(res.statusCode).toBe(202);
    expect(JSON.parse(res.body)).toMatchObject({ service: "api", commit: commitOf("api", 2), queued: true, position: 1 });
    expect(sfn.starts).toHaveLength(1);
  });

  it("a burst of 200 deliveries across 5 services starts one execution per service and queues the newest commit", async () => {
    // Per service: 8 commits pushed a minute apart, each delivered 5 times (GitHub redeliveries).
    const pushedAt = (n: number) => 1767603600 + n * 60;
    const all = SERVICES.flatMap((s) => Array.from({ length: 40 }, (_, i) => ({ service: s, n: i % 8 })));
    // Waves in push order, each shuffled and concurrent, each also carrying late redeliveries of the
    // previous push (GitHub delivers out of order; the queue orders by ancestry, not by pushed_at).
    const answers = [];
    for (let n = 0; n < 8; n++) {
      const wave = shuffle(
        [...all.filter((d) => d.n === n), ...(n > 0 ? SERVICES.map((s) => ({ service: s, n: n - 1 })) : [])],
        42 + n,
      );
      const requests = await Promise.all(wave.map((d) => delivery(pushBody(d.service, d.n, pushedAt(d.n)))));
      answers.push(...(await Promise.all(requests.map((r) => handleWebhook(r, deps)))));
    }

    expect(
      answers
        .filter((a) => a.statusCode !== 202)
        .map((a) => a.body)
        .slice(0, 3),
    ).toEqual([]);
    const started = new Set(sfn.starts.map((s) => s.name));
    expect(started.size).toBe(sfn.starts.length); // no (service, commit) started twice
    for (const s of SERVICES) {
      const mine = sfn.starts.filter((x) => JSON.parse(x.input).service === s);
      expect(mine, s).toHaveLength(1);
      const running = JSON.parse(mine[0]!.input).commit as string;
      const item = await readLock({ service: s, environment: "production" }, lockDeps);
      expect(item?.holder).toBe(mine[0]!.executionArn);
      // Latest wins: the newest commit is queued, unless it is the one running.
      const newest = commitOf(s, 7);
      if (running === newest) expect(item?.queued).toBeUndefined();
      else expect(item?.queued?.commit).toBe(newest);
      // Every answer for this service names the running execution or says queued/ignored, consistently.
      for (const a of answers.map((x) => JSON.parse(x.body)).filter((b) => b.service === s)) {
        if (a.executionArn) expect(a.executionArn).toBe(mine[0]!.executionArn);
        else expect(a.queued === true || a.ignored === true).toBe(true);
      }
    }

    // Drain: each release starts exactly the queued commit; then the lock is free.
    for (const s of SERVICES) {
      const first = (await readLock({ service: s, environment: "production" }, lockDeps))!;
      sfn.end(first.holder!, "SUCCEEDED");
      const r = await releaseAndStartNext({ service: s, environment: "production", executionArn: first.holder! }, lockDeps);
      if (first.queued) {
        expect(r.started).toEqual([{ executionArn: expect.any(String), commit: first.queued.commit, status: "started" }]);
        sfn.end(r.started[0]!.executionArn, "SUCCEEDED");
        await releaseAndStartNext({ service: s, environment: "production", executionArn: r.started[0]!.executionArn }, lockDeps);
      }
      expect((await readLock({ service: s, environment: "production" }, lockDeps))?.holder).toBeUndefined();
    }
    const names = sfn.starts.map((x) => x.name);
    expect(new Set(names).size).toBe(names.length);
  });
});
