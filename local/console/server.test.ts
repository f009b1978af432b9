/**
 * The console's HTTP server over a fake Target whose SDK clients answer from a table: routing,
 * headers, the same-origin rule and how operator-command outcomes map to HTTP answers.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Target } from "../cli/target.ts";
import type { ExecutionView } from "./execution.ts";
import { type ConsoleServer, startConsole } from "./server.ts";

const DEPLOY = "arn:aws:states:us-east-1:123456789012:stateMachine:kiln-local-deploy";
const EXEC = "arn:aws:states:us-east-1:123456789012:execution:kiln-local-deploy:web-0123456789ab-push";
const GONE = "arn:aws:states:us-east-1:123456789012:execution:kiln-local-deploy:web-gone";
const SUCCEEDED = "arn:aws:states:us-east-1:123456789012:execution:kiln-local-deploy:web-done";

const definition = JSON.stringify({
  StartAt: "Verify",
  States: { Verify: { Type: "Task", Resource: "arn:aws:states:::lambda:invoke", Next: "Done" }, Done: { Type: "Succeed" } },
});

function awsError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name });
}

const sent: string[] = [];

/** Step Functions answers by command; every other service is unreachable (status reports it). */
const sfn = {
  async send(cmd: { constructor: { name: string }; input: { executionArn?: string } }) {
    const name = cmd.constructor.name;
    const arn = cmd.input.executionArn;
    sent.push(`${name} ${arn ?? ""}`);
    if (arn === GONE) throw awsError("ExecutionDoesNotExist", `Execution Does Not Exist: '${arn}'`);
    switch (name) {
      case "DescribeExecutionCommand":
        return {
          executionArn: arn,
          stateMachineArn: DEPLOY,
          name: arn!.split(":").pop(),
          status: arn === SUCCEEDED ? "SUCCEEDED" : "FAILED",
          startDate: new Date(0),
          input: JSON.stringify({ service: "web" }),
          error: "kiln.VerificationFailed",
          cause: JSON.stringify({ errorMessage: "alarm <b>web-5xx</b> in ALARM" }),
          redriveCount: 0,
          redriveStatus: "REDRIVABLE",
        };
      case "DescribeStateMachineForExecutionCommand":
        return { stateMachineArn: DEPLOY, definition };
      case "GetExecutionHistoryCommand":
        return {
          events: [
            {
              id: 1,
              previousEventId: 0,
              timestamp: new Date(0),
              type: "TaskStateEntered",
              stateEnteredEventDetails: { name: "Verify" },
            },
            {
              id: 2,
              previousEventId: 1,
              timestamp: new Date(0),
              type: "TaskFailed",
              taskFailedEventDetails: { error: "kiln.VerificationFailed", cause: "alarm" },
            },
            {
              id: 3,
              previousEventId: 2,
              timestamp: new Date(0),
              type: "ExecutionFailed",
              executionFailedEventDetails: { error: "kiln.VerificationFailed" },
            },
          ],
        };
      case "RedriveExecutionCommand":
        if (arn === SUCCEEDED) throw awsError("ExecutionNotRedrivable", "Execution is not redrivable");
        return { redriveDate: new Date(0) };
      default:
        throw awsError("UnknownOperation", name);
    }
  },
};
const unreachable = {
  async send() {
    throw awsError("UnreachableService", "not in this test");
  },
};

const target = {
  kind: "local",
  region: "us-east-1",
  stateMachines: { deploy: DEPLOY },
  functions: {},
  tables: {},
  clients: {
    sfn,
    ec2: unreachable,
    autoscaling: unreachable,
    elbv2: unreachable,
    ssm: unreachable,
    lambda: unreachable,
    dynamodb: unreachable,
  },
} as unknown as Target;

let server: ConsoleServer;
let origin: string;

beforeAll(async () => {
  server = await startConsole({ target });
  origin = server.url.replace(/\/$/, "");
});
afterAll(() => server?.close());

function post(body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${origin}/api/actions`, {
    method: "POST",
    headers: { "content-type": "application/json", origin, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("console server", () => {
  it("serves the page with a strict content security policy", async () => {
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'; script-src 'self'/);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await res.text()).toContain('<script type="module" src="/app.js">');
    const js = await fetch(`${origin}/app.js`);
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
  });

  it.each([
    ["/nothing", 404],
    ["/../package.json", 404],
    ["/api/execution", 400],
    [`/api/execution?arn=${encodeURIComponent("web-0123")}`, 400],
    [`/api/execution?arn=${encodeURIComponent(GONE)}`, 404],
  ])("answers GET %s with %i", async (p, status) => {
    const res = await fetch(`${origin}${p}`);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ ok: false, error: expect.any(String) });
  });

  it("reads an execution: graph, failed state, actions, and the service's status error", async () => {
    const res = await fetch(`${origin}/api/execution?arn=${encodeURIComponent(EXEC)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const v = (await res.json()) as ExecutionView;
    expect(v.execution).toMatchObject({
      status: "FAILED",
      error: "kiln.VerificationFailed",
      cause: "alarm <b>web-5xx</b> in ALARM",
    });
    expect(v.graph.nodes.map((n) => n.id)).toEqual(["Verify", "Done"]);
    expect(v.replay.failed).toBe("Verify");
    // The commit failed the canary: Redrive asks first, in words that name the way forward.
    expect(v.actions.redrive).toEqual({
      enabled: true,
      confirm: expect.stringMatching(/failed the canary: alarm <b>web-5xx<\/b> in ALARM[^]*Abort or a new push/),
    });
    expect(v.actions.abort).toMatchObject({ enabled: false, why: expect.stringMatching(/abort state machine is not deployed/) });
    expect(v.service).toBe("web");
    expect(v.status?.error).toMatch(/UnreachableService/);
  });

  it("refuses to redrive a commit the canary failed unless confirmed; redrives it with force", async () => {
    const refused = await post({ action: "redrive", execution: EXEC });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toMatch(
      /not redriven: .* failed the canary: alarm <b>web-5xx<\/b> in ALARM[^]*kiln abort/,
    );
    expect(sent).not.toContain(`RedriveExecutionCommand ${EXEC}`);
    const res = await post({ action: "redrive", execution: EXEC, force: true });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, message: `redriven ${EXEC}` });
    expect(sent).toContain(`RedriveExecutionCommand ${EXEC}`);
  });

  it.each<[string, unknown, Record<string, string>, number, RegExp]>([
    [
      "an execution that cannot be redriven",
      { action: "redrive", execution: SUCCEEDED },
      {},
      409,
      /cannot redrive .*not redrivable/,
    ],
    ["approval with no deployments table", { action: "approve", execution: EXEC }, {}, 404, /deployments table is not known/],
    ["abort with no abort machine", { action: "abort", execution: EXEC }, {}, 404, /abort state machine is not deployed/],
    ["an invalid body", { action: "redrive", execution: "web-0123" }, {}, 400, /must be an execution ARN/],
    ["a cross-origin post", { action: "redrive", execution: EXEC }, { origin: "http://evil.example" }, 403, /cross-origin/],
    ["a form post", "action=redrive", { "content-type": "application/x-www-form-urlencoded" }, 415, /application\/json/],
    [
      "a body over 16 KiB",
      JSON.stringify({ action: "reject", execution: EXEC, reason: "x".repeat(20_000) }),
      {},
      413,
      /too large/,
    ],
  ])("refuses %s", async (_what, body, headers, status, message) => {
    const res = await post(body, headers);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
  });

  it("refuses a Host other than its own (a rebound DNS name)", async () => {
    // fetch() cannot set Host, so this one goes through node:http.
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${origin}/api/overview`, { headers: { host: "evil.example:80" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(421);
  });

  it("refuses GET on the actions endpoint", async () => {
    expect((await fetch(`${origin}/api/actions`)).status).toBe(405);
  });
});
