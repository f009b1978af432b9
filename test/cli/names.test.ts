/**
 * Hyphenated service and environment names through the CLI and the console: the target of
 * approve, reject and abort is read from the execution's input and the approval record of its
 * (service, environment), never from its name.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startConsole } from "../../local/console/server.ts";
import { FakeStates, FakeTable, fakeTarget, MACHINES, useConfig } from "./fake-target.ts";
import { runCli } from "./run-cli.ts";

const COMMIT = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
const previousConfig = process.env.KILN_CONFIG;

const run = (target: ReturnType<typeof fakeTarget>, ...argv: string[]) => runCli(argv, target);

describe("a service named web-api can be approved, rejected and aborted from the CLI and console", () => {
  let states: FakeStates;
  let table: FakeTable;
  let target: ReturnType<typeof fakeTarget>;
  beforeAll(() => {
    // `web` exists too: `web-api-…` names start with `web-`, and must not be taken for web's.
    useConfig({ "web-api": { main: "production", pre: "pre-prod" } });
  });
  afterAll(() => {
    if (previousConfig === undefined) delete process.env.KILN_CONFIG;
    else process.env.KILN_CONFIG = previousConfig;
  });
  beforeEach(() => {
    states = new FakeStates();
    table = new FakeTable();
    target = fakeTarget(states, table);
  });

  it("CLI: approve and reject by name reach the right gate; abort by service and environment names the right deployment", async () => {
    const a = states.waitingDeployment(table, "web-api", "pre-prod", COMMIT, 7);
    const b = states.waitingDeployment(table, "web-api", "production", COMMIT, 8);
    const approved = await run(target, "approve", a.name);
    expect(approved.code, approved.err).toBe(0);
    expect(approved.out).toBe(`approved ${a.executionArn} (web-api pre-prod)`);
    const rejected = await run(target, "reject", b.executionArn, "--reason", "not today");
    expect(rejected.code, rejected.err).toBe(0);
    expect(states.decisions).toEqual([
      { token: `token-${a.name}`, approved: true, output: expect.stringContaining("approvedBy") },
      { token: `token-${b.name}`, approved: false, cause: expect.stringMatching(/^rejected by .+: not today$/) },
    ]);

    const ab = await run(target, "abort", "web-api", "--env", "pre-prod");
    expect(ab.code, ab.err).toBe(0);
    const started = [...states.executions.values()].filter((e) => e.stateMachineArn === MACHINES.abort);
    expect(started).toHaveLength(1);
    expect(JSON.parse(started[0]!.input)).toMatchObject({
      service: "web-api",
      environment: "pre-prod",
      executionArn: a.executionArn,
      trigger: "operator",
    });
    // The default environment is production.
    expect((await run(target, "abort", "web-api")).out).toContain(`aborting ${b.executionArn}`);
    // `web` has no deployment, though web-api's names start with `web-`.
    const web = await run(target, "abort", "web");
    expect(web.code).toBe(3);
    expect(web.err).toMatch(/web \(production\) has no deployment to abort/);
  });

  it("CLI: an unknown environment, or a deployment not at its gate, exits 3 and decides nothing", async () => {
    const a = states.waitingDeployment(table, "web-api", "pre-prod", COMMIT, 9);
    a.history.push({ type: "TaskStateExited", stateExitedEventDetails: { name: "RequestApproval" } });
    expect((await run(target, "approve", a.name)).code).toBe(3);
    a.status = "SUCCEEDED";
    expect((await run(target, "reject", a.name)).code).toBe(3);
    expect((await run(target, "abort", a.name)).code).toBe(3);
    expect((await run(target, "abort", "web-api", "--env", "pre")).code).toBe(3);
    expect(states.decisions).toEqual([]);
    expect([...states.executions.values()].filter((e) => e.stateMachineArn === MACHINES.abort)).toEqual([]);
  });

  it("console: the execution page names service and environment; approve, reject and abort act on them", async () => {
    const a = states.waitingDeployment(table, "web-api", "pre-prod", COMMIT, 10);
    const b = states.waitingDeployment(table, "web-api", "pre-prod", "1".repeat(40), 11);
    const server = await startConsole({ target });
    try {
      const host = new URL(server.url).host;
      const view = await (await fetch(`${server.url}api/execution?arn=${encodeURIComponent(a.executionArn)}`)).json();
      expect(view).toMatchObject({ service: "web-api", environment: "pre-prod", actions: { approve: { enabled: true } } });
      const act = async (action: string, execution: string) =>
        fetch(`${server.url}api/actions`, {
          method: "POST",
          headers: { "content-type": "application/json", origin: `http://${host}` },
          body: JSON.stringify({ action, execution }),
        });
      expect((await act("approve", a.executionArn)).status).toBe(200);
      expect((await act("reject", b.executionArn)).status).toBe(200);
      expect(states.decisions.map((d) => [d.token, d.approved])).toEqual([
        [`token-${a.name}`, true],
        [`token-${b.name}`, false],
      ]);
      const aborted = await act("abort", a.executionArn);
      expect(aborted.status).toBe(200);
      const abortExec = [...states.executions.values()].find((e) => e.stateMachineArn === MACHINES.abort)!;
      expect(JSON.parse(abortExec.input)).toMatchObject({
        service: "web-api",
        environment: "pre-prod",
        executionArn: a.executionArn,
        trigger: "operator",
      });
      // Finished: the console refuses as the CLI does (404), nothing started.
      a.status = "SUCCEEDED";
      expect((await act("abort", a.executionArn)).status).toBe(404);
      expect([...states.executions.values()].filter((e) => e.stateMachineArn === MACHINES.abort)).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
