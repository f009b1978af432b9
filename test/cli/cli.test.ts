import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The CLI records and finds the local stack here; never the developer's own .kiln/.
process.env.KILN_STATE_DIR = mkdtempSync(path.join(tmpdir(), "kiln-cli-"));

const { main } = await import("../../bin/kiln.ts");
const { Stack } = await import("../../local/stack.ts");
const { seedService } = await import("../../local/seed.ts");
const { writeStackRecord, removeStackRecord } = await import("../../local/cli/target.ts");
const { statesBackend } = await import("../../local/states/api.ts");

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  try {
    const code = await main(argv, (l) => lines.push(l));
    return { code, out: lines.join("\n"), err: errors.join("\n") };
  } finally {
    console.error = original;
  }
}

describe("kiln CLI: arguments", () => {
  it.each([
    [["--help"], 0, /usage: kiln/],
    [[], 2, /usage: kiln/],
    [["frobnicate"], 2, /unknown command "frobnicate"/],
    [["status", "--no-such-flag"], 2, /Unknown option '--no-such-flag'/],
    [["up", "--port", "http"], 2, /--port must be a port number/],
    [["status"], 4, /no local kiln stack is running/],
    [["redrive", "x"], 4, /no local kiln stack is running/],
  ])("kiln %j exits %i", async (argv, code, message) => {
    const r = await run(...(argv as string[]));
    expect(r.code).toBe(code);
    expect(`${r.out}\n${r.err}`).toMatch(message);
  });
});

describe("kiln CLI against a running local stack", () => {
  let stack: Awaited<ReturnType<typeof Stack.start>>;
  beforeAll(async () => {
    stack = await Stack.start({ clock: "virtual", port: 0 });
    await seedService(stack.cloud, { commit: "a".repeat(40), instances: 2 });
    writeStackRecord({ ...stack.info(), pid: process.pid, webhookSecret: stack.webhookSecret, startedAt: new Date().toISOString(), services: {} });
  }, 120_000);
  afterAll(async () => {
    removeStackRecord(process.pid);
    await stack?.stop();
  });

  it("status --json shows the live commit, weights, fleet and the stack's endpoints", async () => {
    const r = await run("status", "--json");
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.stack.endpoint).toBe(stack.cloud.endpoint);
    expect(s.stack.webhookUrl).toMatch(/lambda-url\/webhook/);
    const web = s.services.find((x: { service: string }) => x.service === "web");
    expect(web.liveCommit).toBe("a".repeat(40));
    expect(web.weights.map((w: { weight: number }) => w.weight).sort()).toEqual([0, 100]);
    expect(web.fleets[0].instances).toHaveLength(2);
  });

  it.each([
    [["status", "nope"], 3],
    [["deploy", "web"], 2],
    [["deploy", "web", "--commit", "$(reboot)"], 2],
    [["deploy", "nope", "--commit", "b".repeat(40)], 3],
    [["logs"], 2],
    [["logs", "no-such-execution"], 3],
    [["logs", "arn:aws:states:bad"], 2],
    [["approve", "web-not-waiting"], 3],
    [["history"], 2],
  ])("kiln %j exits %i", async (argv, code) => {
    const r = await run(...(argv as string[]));
    expect(r.code, r.err).toBe(code);
  });

  it("push sends a signed webhook that starts a deployment; logs and history show it; redrive refuses a running one", async () => {
    const commit = "c".repeat(40);
    const pushed = await run("push", "web", "--commit", commit, "--json");
    expect(pushed.code, pushed.err).toBe(0);
    const body = JSON.parse(pushed.out).body;
    expect(body.executionArn).toMatch(/:execution:kiln-local-deploy:web-cccccccccccc-push/);
    const again = await run("push", "web", "--commit", commit, "--json");
    expect(JSON.parse(again.out).body.executionArn).toBe(body.executionArn);
    await statesBackend(stack.cloud).awaitExecution(body.executionArn);
    const logs = await run("logs", body.executionArn, "--json");
    expect(logs.code).toBe(0);
    const l = JSON.parse(logs.out);
    expect(l.status).toBe("SUCCEEDED");
    expect(l.events.some((e: { state?: string }) => e.state === "VerifyCanary")).toBe(true);
    const history = await run("history", "web");
    expect(history.out).toMatch(/SUCCEEDED\s+web-cccccccccccc-push/);
    const redrive = await run("redrive", body.executionArn);
    expect(redrive.code).toBe(1);
    expect(redrive.err).toMatch(/cannot redrive/);
    const status = JSON.parse((await run("status", "web", "--json")).out);
    expect(status.services[0].liveCommit).toBe(commit);
  }, 120_000);

  it("rotate answers what it decided (the fleet is young and on the newest base AMI: skipped, with the reason)", async () => {
    const r = await run("rotate", "web");
    expect(r.code, r.err).toBe(0);
    const answer = JSON.parse(r.out);
    expect(answer.action).toBe("skipped");
    expect(answer.reason).toMatch(/\w/);
    expect((await run("rotate", "nope")).code).toBe(3);
  });

  it("rollback and abort start their state machines; reject of a deployment not waiting for approval exits 3", async () => {
    const rb = await run("rollback", "web");
    expect(rb.code, rb.err).toBe(0);
    expect(rb.out).toMatch(/rolling back: arn:aws:states:.*:execution:kiln-local-rollback:web-rollback-/);
    await statesBackend(stack.cloud).awaitExecution(rb.out.replace(/^rolling back: /, ""));
    const ab = await run("abort", "web");
    expect(ab.code, ab.err).toBe(0);
    expect(ab.out).toMatch(/aborting: arn:aws:states:.*:execution:kiln-local-abort:/);
    await statesBackend(stack.cloud).awaitExecution(ab.out.replace(/^aborting: /, ""));
    expect((await run("reject", "web-none", "--reason", "no")).code).toBe(3);
    expect((await run("abort")).code).toBe(2);
    expect((await run("rollback")).code).toBe(2);
  }, 120_000);

  it("deploy starts an operator deployment of a commit", async () => {
    const r = await run("deploy", "web", "--commit", "d".repeat(40));
    expect(r.code, r.err).toBe(0);
    const arn = r.out.replace(/^started /, "");
    expect(arn).toMatch(/web-dddddddddddd-operator-/);
    await statesBackend(stack.cloud).awaitExecution(arn);
  }, 120_000);
});
