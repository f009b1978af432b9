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
const { startOrQueue } = await import("../../lib/lock/index.ts");
const { until } = await import("../../local/seed.ts");
const { ListExecutionsCommand, DescribeExecutionCommand, SFNClient } = await import("@aws-sdk/client-sfn");
const { DynamoDBClient } = await import("@aws-sdk/client-dynamodb");
const { DynamoDBDocumentClient } = await import("@aws-sdk/lib-dynamodb");
type LambdaBackend = import("../../local/cloud/services/lambda/index.ts").LambdaBackend;

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
    [["status", "--no-such-flag"], 2, /unknown option --no-such-flag \(see kiln status --help\)/],
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
  let sfn: InstanceType<typeof SFNClient>;
  beforeAll(async () => {
    stack = await Stack.start({ clock: "virtual", port: 0 });
    await seedService(stack.cloud, { commit: "a".repeat(40), instances: 2 });
    const info = stack.info();
    sfn = new SFNClient(stack.cloud.clientConfig());
    // A local stand-in for the stack's requestDeploy function (functions/request-deploy.ts): the
    // request joins the lock's queue exactly as a push does.
    const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(stack.cloud.clientConfig()));
    const machines = Object.values(info.stateMachines);
    const requestDeploy = stack.cloud.backend<LambdaBackend>("lambda").registerFunction({
      name: "kiln-local-requestDeployStandIn",
      timeoutSeconds: 10,
      handler: async (event: unknown) => {
        const e = event as { service: string; environment: string; commit: string; requestedBy: string; reason?: string };
        return startOrQueue(
          {
            input: {
              service: e.service,
              commit: e.commit,
              trigger: "operator",
              branch: e.environment === "staging" ? "stage" : "main",
              repository: "example/web",
              requestedBy: e.requestedBy,
              environment: e.environment,
            } as never,
            nonce: e.commit.slice(0, 6),
          },
          {
            ddb,
            sfn,
            table: info.tables.LockTable!,
            clock: stack.cloud.clock,
            deployStateMachineArn: machines.find((m) => m.endsWith("-deploy"))!,
            abortStateMachineArn: machines.find((m) => m.endsWith("-abort"))!,
          },
        );
      },
    });
    // The stand-in runs as requestDeploy's own role (the cloud authorizes a Lambda's calls by its role).
    stack.roles.set("kiln-local-requestDeployStandIn", stack.roles.get("kiln-local-requestDeploy")!);
    writeStackRecord({
      ...info,
      functions: { ...info.functions, requestDeploy: requestDeploy.split(":").pop()! },
      pid: process.pid,
      webhookSecret: stack.webhookSecret,
      credentials: { ...stack.cloud.credentials },
      startedAt: new Date().toISOString(),
      services: {},
    });
  }, 120_000);

  const machine = (suffix: string) => Object.values(stack.info().stateMachines).find((m) => m.endsWith(`-${suffix}`))!;
  const executionsOf = async (suffix: string) =>
    (await sfn.send(new ListExecutionsCommand({ stateMachineArn: machine(suffix) }))).executions ?? [];
  const pagerDutyTriggers = () =>
    stack.cloud.captured.filter(
      (c) => c.name === "pagerduty" && (c.body as { event_action?: string }).event_action === "trigger",
    );
  /** The notices and pages posted to Slack (the local stack captures them). */
  const slackTexts = () =>
    stack.cloud.captured.filter((c) => c.name === "slack").map((c) => String((c.body as { text?: string }).text ?? ""));
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
    expect(web.fleets.map((f: { state: string }) => f.state)).toEqual(["live"]);
    expect(r.out).not.toContain('"currentStep"');
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
    [["status", "web", "--env", "nowhere"], 3],
    [["rollback", "web", "--env", "nowhere"], 3],
    [["deploy", "web", "--env", "nowhere", "--commit", "b".repeat(40)], 3],
    [["push", "web", "--env", "staging", "--branch", "stage"], 2],
    [["abort", "web-0123-push", "--env", "staging"], 2],
  ])("kiln %j exits %i", async (argv, code) => {
    const r = await run(...(argv as string[]));
    expect(r.code, r.err).toBe(code);
  });

  it("`kiln abort nope` exits 3 and pages nobody", async () => {
    const before = (await executionsOf("abort")).length;
    const r = await run("abort", "nope");
    expect(r.code, r.err).toBe(3);
    expect(r.err).toMatch(/nothing to abort: "nope" is neither a service of kiln.config.yaml nor a deployment/);
    expect(await executionsOf("abort")).toHaveLength(before);
    // Unknown names of other shapes are refused the same way.
    expect((await run("abort", "arn:aws:states:us-east-1:000000000000:execution:kiln-local-deploy:web-nope")).code).toBe(3);
    expect((await run("abort", "web", "--env", "nowhere")).code).toBe(3);
    expect(await executionsOf("abort")).toHaveLength(before);
    expect(pagerDutyTriggers()).toHaveLength(0);
  });

  it("a refused rollback notifies at info, not critical", async () => {
    // Only the seeded fleet exists: there is no previous fleet to roll back to.
    const r = await run("rollback", "web", "--reason", "try it");
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(/rollback of web \(production\) refused or failed \(FAILED\)/);
    const [rb] = await executionsOf("rollback");
    const input = JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: rb!.executionArn! }))).input!);
    expect(input).toMatchObject({ service: "web", environment: "production", trigger: "operator", reason: "try it" });
    const notice = await until(
      stack.cloud.clock,
      "rollback notice",
      async () => slackTexts().find((t) => t.includes(rb!.executionArn!)),
      1_000,
      600_000,
    );
    expect(notice).toMatch(/^:information_source: \*kiln: web \(production\) rollback refused by /);
    expect(notice).toContain("Severity: info");
    expect(pagerDutyTriggers()).toHaveLength(0);
    expect(slackTexts().filter((t) => t.startsWith(":rotating_light:"))).toHaveLength(0);
  }, 120_000);

  it("push sends a signed webhook that starts a deployment; logs and history show it; redrive refuses a running one", async () => {
    const commit = "c".repeat(40);
    const pushed = await run("push", "web", "--commit", commit, "--json");
    expect(pushed.code, pushed.err).toBe(0);
    const body = JSON.parse(pushed.out).body;
    expect(body.executionArn).toMatch(/:execution:kiln-local-deploy:web-.*cccccccccccc/);
    const again = await run("push", "web", "--commit", commit, "--json");
    expect(JSON.parse(again.out).body.executionArn).toBe(body.executionArn);
    await statesBackend(stack.cloud).awaitExecution(body.executionArn);
    const logs = await run("logs", body.executionArn, "--json");
    expect(logs.code).toBe(0);
    const l = JSON.parse(logs.out);
    expect(l.status).toBe("SUCCEEDED");
    expect(l.events.some((e: { state?: string }) => e.state === "VerifyCanary")).toBe(true);
    const history = await run("history", "web");
    expect(history.out).toMatch(/SUCCEEDED\s+web-.*cccccccccccc/);
    const redrive = await run("redrive", body.executionArn);
    expect(redrive.code).toBe(1);
    expect(redrive.err).toMatch(/cannot redrive/);
    const status = JSON.parse((await run("status", "web", "--json")).out);
    expect(status.services[0].liveCommit).toBe(commit);
    expect(status.services.map((s: { environment: string }) => s.environment)).toEqual(["production", "staging"]);
    expect(status.services[0].executions[0]).toMatchObject({ arn: body.executionArn, environment: "production" });
    // Which fleet is live is said, not guessed; staging's status shows none of production's fleets.
    expect(status.services[0].fleets.map((f: { state: string }) => f.state).sort()).toEqual(["live", "retired"]);
    expect(status.services[0].fleets.find((f: { state: string }) => f.state === "live").commit).toBe(commit);
    const production = new Set(status.services[0].fleets.map((f: { group: string }) => f.group));
    expect(status.services[1].fleets.filter((f: { group: string }) => production.has(f.group))).toEqual([]);
    // Staging is read through its own listener and target groups (kiln.config.yaml), never production's.
    const prodTgs = status.services[0].weights.map((w: { name: string }) => w.name);
    expect(prodTgs).toEqual(["kiln-web-a", "kiln-web-b"]);
    expect(status.services[1].weights.filter((w: { name: string }) => prodTgs.includes(w.name))).toEqual([]);
    expect(status.services[1].loadBalancer?.name).not.toBe(status.services[0].loadBalancer?.name);
  }, 120_000);

  it("abort of a succeeded execution exits 3", async () => {
    const [deployed] = (await executionsOf("deploy")).filter((e) => e.status === "SUCCEEDED");
    const before = (await executionsOf("abort")).length;
    const r = await run("abort", deployed!.executionArn!);
    expect(r.code, r.err).toBe(3);
    expect(r.err).toMatch(/already finished \(SUCCEEDED\): there is nothing to abort .*kiln rollback web --env production/);
    // By service: its newest deployment is that one.
    expect((await run("abort", "web")).code).toBe(3);
    expect((await run("approve", deployed!.executionArn!)).code).toBe(3);
    expect((await run("reject", deployed!.executionArn!)).code).toBe(3);
    expect(await executionsOf("abort")).toHaveLength(before);
    expect(pagerDutyTriggers()).toHaveLength(0);
  });

  it("rotate answers what it decided (the fleet is young and on the newest base AMI: skipped, with the reason)", async () => {
    const r = await run("rotate", "web");
    expect(r.code, r.err).toBe(0);
    // Without --env every environment of the service is considered, each with its own answer.
    const answer = JSON.parse(r.out);
    const production = (answer.environments ?? [answer]).find((x: { environment: string }) => x.environment === "production");
    expect(production.action).toBe("skipped");
    expect(production.reason).toMatch(/\w/);
    expect((await run("rotate", "nope")).code).toBe(3);
  });

  it("rollback starts its state machine once kiln accepted it; reject of a deployment not waiting for approval exits 3", async () => {
    const rb = await run("rollback", "web");
    expect(rb.code, rb.err).toBe(0);
    expect(rb.out).toMatch(
      /rolling back web \(production\): arn:aws:states:.*:execution:kiln-local-rollback:web-production-rollback-operator-/,
    );
    await statesBackend(stack.cloud).awaitExecution(rb.out.replace(/^.*: /, ""));
    expect((await sfn.send(new DescribeExecutionCommand({ executionArn: rb.out.replace(/^.*: /, "") }))).status).toBe(
      "SUCCEEDED",
    );
    expect((await run("reject", "web-none", "--reason", "no")).code).toBe(3);
    expect((await run("abort")).code).toBe(2);
    expect((await run("rollback")).code).toBe(2);
  }, 120_000);

  it("deploy enters the queue (requestDeploy) and says what happened; an operator abort of it notifies at info", async () => {
    const r = await run("deploy", "web", "--commit", "d".repeat(40), "--json");
    expect(r.code, r.err).toBe(0);
    const first = JSON.parse(r.out);
    expect(first).toMatchObject({ action: "started" });
    const input = JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: first.executionArn }))).input!);
    expect(input).toMatchObject({ service: "web", environment: "production", trigger: "operator", commit: "d".repeat(40) });
    // While it runs, another request queues behind it (exit 0, the holder named).
    const queued = await run("deploy", "web", "--commit", "f".repeat(40));
    expect(queued.code, queued.err).toBe(0);
    expect(queued.out).toMatch(new RegExp(`^queued .* for web \\(production\\) behind ${first.executionArn}`));

    // The operator aborts the running one.
    const ab = await run("abort", first.executionArn, "--reason", "wrong commit");
    expect(ab.code, ab.err).toBe(0);
    const abortArn = ab.out.replace(/^.*: /, "");
    expect(JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: abortArn }))).input!)).toMatchObject({
      service: "web",
      environment: "production",
      executionArn: first.executionArn,
      trigger: "operator",
      reason: "wrong commit",
    });
    await statesBackend(stack.cloud).awaitExecution(abortArn);
    expect((await sfn.send(new DescribeExecutionCommand({ executionArn: first.executionArn }))).status).toBe("ABORTED");
    const notice = await until(
      stack.cloud.clock,
      "abort notice",
      async () => slackTexts().find((t) => t.includes(first.executionArn)),
      1_000,
      600_000,
    );
    expect(notice).toMatch(/^:information_source: \*kiln: web \(production\) deployment aborted of dddddddddddd by /);
    expect(notice).toContain("Reason: wrong commit");
    expect(pagerDutyTriggers()).toHaveLength(0);
  }, 180_000);
});
