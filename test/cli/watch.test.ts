/**
 * The operator CLI against a running local stack (virtual time): status shows the lock holder, the
 * queued request and the canary step; logs prints one line per step; push/deploy --watch follow a
 * deployment to its end and exit by its outcome; status --watch redraws a TTY and prints changes
 * to a pipe. Watches sleep on the stack's clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config/index.ts";
import { stackTarget } from "../../local/cli/target.ts";
import { CLEAR } from "../../local/cli/watch.ts";
import { bootE2E, commitOf, type E2E, settle, startDeploy, until } from "../support/stack.ts";
import { main } from "../../bin/kiln.ts";

let e: E2E;
let target: ReturnType<typeof stackTarget>;

async function run(argv: string[], opts: { polls?: number; stream?: { isTTY?: boolean; write(s: string): unknown } } = {}) {
  const lines: string[] = [];
  const errors: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  // A watch stops after `polls` sleeps (the test's Ctrl-C); each sleep is on the stack's clock.
  const stop = new AbortController();
  let sleeps = 0;
  const sleep = async (ms: number) => {
    if (opts.polls !== undefined && ++sleeps >= opts.polls) stop.abort();
    await e.stack.cloud.clock.sleep(ms);
  };
  try {
    const code = await main(argv, (l) => lines.push(l), {
      target,
      ...(opts.stream ? { stream: opts.stream } : {}),
      watch: { sleep, signal: stop.signal },
    });
    return { code, out: lines.join("\n"), err: errors.join("\n") };
  } finally {
    console.error = original;
  }
}

const statusOf = async () => JSON.parse((await run(["status", "web", "--json"])).out).services[0];

beforeAll(async () => {
  e = await bootE2E({ commit: "a".repeat(40), instances: 2 });
  target = stackTarget(e.stack);
}, 120_000);
afterAll(async () => {
  await e?.stack.stop();
});

describe("kiln status, logs and --watch on a running stack", () => {
  it("deploy --watch follows a deployment to SUCCEEDED and exits 0", async () => {
    const r = await run(["deploy", "web", "--commit", commitOf(1), "--watch", "--interval", "5"]);
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.out).toMatch(/^started .*\nfollowing /);
    expect(r.out).toMatch(/ShiftTraffic .* succeeded/);
    expect(r.out).toMatch(/\nSUCCEEDED arn:aws:states:/);
    expect((await statusOf()).liveCommit).toBe(commitOf(1));
    // The lock is free again, nothing queued.
    expect((await statusOf()).lock).toEqual({});
    expect((await run(["status", "web"])).out).toMatch(/lock {5}free\n {2}queued {3}-/);
  }, 180_000);

  it("logs prints one line per step, polling loops folded with a count; --raw keeps the events", async () => {
    const r = await run(["logs", "web"]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split("\n");
    expect(lines.filter((l) => /\bWaitGreenReady\b/.test(l))).toHaveLength(1);
    expect(lines.some((l) => /IsGreenReadyDone|WaitForGreenReady|BakeVerdict/.test(l))).toBe(false);
    const steps = loadConfig().services.web!.canary.length;
    expect(lines.filter((l) => /\bShiftTraffic\b/.test(l))).toHaveLength(steps);
    expect(r.out).toMatch(/WaitGreenReady ×\d+ /);
    expect(lines.filter((l) => / succeeded/.test(l)).length).toBe(lines.length - 1);
    const raw = await run(["logs", "web", "--raw"]);
    expect(raw.out).toMatch(/TaskStateEntered\s+IsGreenReadyDone|ChoiceStateEntered\s+IsGreenReadyDone/);
  });

  it("status shows the lock holder, the queued request and the canary step; deploy --watch of a queued commit follows it once it starts", async () => {
    const first = await startDeploy(e, commitOf(2));
    await until(e, "canary step", async () => (await statusOf()).executions[0]?.canary !== undefined, 5_000);
    const s = await statusOf();
    const steps = loadConfig().services.web!.canary;
    const c = s.executions[0].canary;
    expect(c.steps).toBe(steps.length);
    expect(c.weight).toBe(steps[c.step - 1]!.weight);
    expect(s.lock.holder).toMatchObject({ executionArn: first.arn, commit: commitOf(2), state: "running" });
    expect(Date.parse(s.lock.holder.since)).not.toBeNaN();
    const second = await startDeploy(e, commitOf(3));
    expect(second.action).toBe("queued");
    const queued = (await statusOf()).lock.queued;
    expect(queued).toMatchObject({ commit: commitOf(3), trigger: "operator", name: second.name });
    expect(typeof queued.seq).toBe("number");
    const text = (await run(["status", "web", "--env", "production"])).out;
    expect(text).toContain(`lock     held by ${first.name}  commit ${commitOf(2).slice(0, 12)}  running since `);
    expect(text).toContain(`queued   ${commitOf(3).slice(0, 12)}  trigger operator  seq ${queued.seq}`);
    expect(text).toMatch(
      /at (ShiftTraffic|BakeCanary|BakeVerdict|VerifyCanary|CanaryVerdict|NextCanaryStep) \(canary step \d\/\d, \d+%\)/,
    );
    // A newer request replaces the queued one; a watch of it follows it to its end.
    const r = await run(["deploy", "web", "--commit", commitOf(4), "--watch"]);
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.out).toMatch(new RegExp(`^queued .*\\nqueued behind ${first.name}\\nfollowing .*`));
    expect(r.out).toMatch(/\nSUCCEEDED /);
    expect((await settle(e, first.arn)).status).toBe("SUCCEEDED");
  }, 240_000);

  it("status --watch prints a snapshot per change when piped, redraws a TTY, and one JSON object per line with --json", async () => {
    const pipe: string[] = [];
    const r = await run(["status", "web", "--watch"], { polls: 3, stream: { isTTY: false, write: (s) => pipe.push(s) } });
    expect(r.code, r.err).toBe(0);
    // Nothing changed between the polls: one snapshot, no ANSI.
    expect(pipe).toHaveLength(1);
    expect(pipe[0]).toMatch(/^local stack .*\n\nweb \(production\) {2}live commit /);
    expect(pipe[0]).not.toContain("\x1b[");
    const tty: string[] = [];
    await run(["status", "web", "--watch"], { polls: 3, stream: { isTTY: true, write: (s) => tty.push(s) } });
    expect(tty).toHaveLength(3);
    for (const frame of tty) expect(frame.startsWith(CLEAR)).toBe(true);
    const json: string[] = [];
    await run(["status", "web", "--watch", "--json"], { polls: 3, stream: { isTTY: true, write: (s) => json.push(s) } });
    expect(json).toHaveLength(1);
    expect(json[0]!.endsWith("\n")).toBe(true);
    expect(JSON.parse(json[0]!).services[0].lock).toEqual({});
    // A change (a deployment starts and moves) prints another snapshot.
    const changes: string[] = [];
    const d = await startDeploy(e, commitOf(5));
    await run(["status", "web", "--watch", "--interval", "30"], {
      polls: 4,
      stream: { isTTY: false, write: (s) => changes.push(s) },
    });
    expect(changes.length).toBeGreaterThan(1);
    expect(new Set(changes).size).toBe(changes.length);
    await settle(e, d.arn);
  }, 240_000);

  it("push --watch of a deployment that fails exits 1 with the readable cause", async () => {
    e.stack.cloud.faults.add({ kind: "lambda", function: "kiln-local-shiftTraffic", mode: "crash-before", times: 1_000 });
    const r = await run(["push", "web", "--commit", commitOf(6), "--watch"]);
    e.stack.cloud.faults.clear("lambda");
    expect(r.code, `${r.out}\n${r.err}`).toBe(1);
    expect(r.out).toMatch(/\nFAILED arn:aws:states:/);
    const cause = /\n {2}cause: (.*)/.exec(r.out)?.[1];
    expect(cause).toMatch(/^[\w.]+: \S/);
    expect(r.out).not.toMatch(/\/var\/task|\s{4}at |"errorType"/);
    expect(r.out).toMatch(/ShiftTraffic .* failed/);
  }, 180_000);

  it.each([
    [["status", "--watch", "--interval", "0"], 2],
    [["status", "--interval", "5"], 2],
    [["logs", "web", "--watch"], 2],
    [["logs", "web", "--env", "nowhere"], 3],
    [["logs", "nope"], 3],
    [["status", "web", "--watch", "--env", "nowhere"], 3],
  ])("kiln %j exits %i", async (argv, code) => {
    expect((await run(argv as string[], { polls: 1 })).code).toBe(code);
  });
});
