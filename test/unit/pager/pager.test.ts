import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../../lib/clock.ts";
import { acquireLock, readLock } from "../../../lib/lock/index.ts";
import {
  DeliveryError,
  type Fetch,
  handleStatusChange,
  type PagerDeps,
  postJson,
  type StatusChangeEvent,
} from "../../../lib/pager/index.ts";
import { ListExecutionsCommand } from "@aws-sdk/client-sfn";
import { type Dynamo, FakeSfn, startDynamo } from "../lock/fakes.ts";

/** The lock's fake Step Functions plus ListExecutions (the pager reads the abort machine's newest). */
class PagerSfn extends FakeSfn {
  override async send(cmd: unknown): Promise<unknown> {
    if (cmd instanceof ListExecutionsCommand) {
      const executions = [...this.executions.values()].filter((e) => e.stateMachineArn === cmd.input.stateMachineArn).reverse();
      return {
        executions: executions
          .slice(0, cmd.input.maxResults ?? 100)
          .map((e) => ({ executionArn: e.executionArn, name: e.name, status: e.status })),
      };
    }
    return super.send(cmd);
  }
}

const MACHINES = {
  deploy: "arn:aws:states:us-east-1:123456789012:stateMachine:kiln-deploy",
  abort: "arn:aws:states:us-east-1:123456789012:stateMachine:kiln-abort",
  rollback: "arn:aws:states:us-east-1:123456789012:stateMachine:kiln-rollback",
};

const ARN = "arn:aws:states:us-east-1:123456789012:execution:kiln-deploy:web-0d1a26e67d8f-push";
const ARN2 = "arn:aws:states:us-east-1:123456789012:execution:kiln-deploy:web-1111aaaa2222-push";
const COMMIT = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
const PD_URL = "http://pagerduty.local/v2/enqueue";
const SLACK_URL = "https://hooks.slack.local/services/T000/B000/XXXX";

function statusEvent(executionArn: string, status: string, over: Partial<StatusChangeEvent["detail"]> = {}): StatusChangeEvent {
  return {
    "detail-type": "Step Functions Execution Status Change",
    source: "aws.states",
    id: "315c1398-40ff-a850-213b-158f73e60175",
    time: "2026-01-05T10:20:00Z",
    region: "us-east-1",
    detail: {
      executionArn,
      stateMachineArn: MACHINES.deploy,
      name: executionArn.split(":").at(-1)!,
      status: status as StatusChangeEvent["detail"]["status"],
      startDate: 1767607200000,
      stopDate: 1767608400000,
      input: JSON.stringify({
        service: "web",
        environment: "production",
        commit: COMMIT,
        trigger: "push",
        branch: "main",
        repository: "Acme/web",
      }),
      output: null,
      error: status === "SUCCEEDED" ? null : "States.TaskFailed",
      cause: status === "SUCCEEDED" ? null : '{"errorType":"kiln.StepFailed"}',
      redriveCount: 0,
      ...over,
    },
  };
}

/** A history where Bake failed inside a Parallel, with the task's own error. */
const HISTORY = [
  { id: 1, type: "ExecutionStarted", executionStartedEventDetails: {} },
  { id: 2, type: "TaskStateEntered", stateEnteredEventDetails: { name: "Prepare" } },
  { id: 3, type: "TaskStateExited", stateExitedEventDetails: { name: "Prepare" } },
  { id: 4, type: "ParallelStateEntered", stateEnteredEventDetails: { name: "BakePhase" } },
  { id: 5, type: "TaskStateEntered", stateEnteredEventDetails: { name: "RunInstallScript" } },
  {
    id: 6,
    type: "TaskFailed",
    taskFailedEventDetails: {
      error: "kiln.StepFailed",
      cause: "install script exited 2 on i-0abc: npm ERR! missing script: build",
    },
  },
  { id: 7, type: "ParallelStateFailed", executionFailedEventDetails: {} },
  { id: 8, type: "ExecutionFailed", executionFailedEventDetails: { error: "States.TaskFailed", cause: "…" } },
];

interface Captured {
  url: string;
  body: Record<string, unknown>;
}

function capturingFetch(script: number[] = []) {
  const calls: Captured[] = [];
  const fetch: Fetch = async (url, init) => {
    calls.push({ url, body: JSON.parse(init.body) });
    const status = script.shift() ?? 202;
    if (status === 0) throw Object.assign(new Error("connect ECONNREFUSED"), { name: "TypeError" });
    return {
      status,
      headers: { get: () => null },
      text: async () => (status === 202 ? '{"status":"success","message":"Event processed"}' : "error"),
    };
  };
  return { calls, fetch };
}

describe("postJson (bounded retries)", () => {
  it.each<[string, number[], number, boolean | undefined]>([
    ["accepted", [202], 1, undefined],
    ["429 then accepted", [429, 202], 2, undefined],
    ["5xx, network error, then accepted", [502, 0, 202], 3, undefined],
    ["400 is permanent", [400], 1, true],
    ["always 503 gives up after 5 attempts", [503, 503, 503, 503, 503, 503], 5, false],
  ])("%s", async (_, script, attempts, permanent) => {
    const { calls, fetch } = capturingFetch([...script]);
    const clock = new VirtualClock();
    const p = postJson(PD_URL, { a: 1 }, { fetch, clock, what: "PagerDuty", random: () => 1 });
    if (permanent === undefined) await expect(p).resolves.toMatchObject({ attempts });
    else await expect(p).rejects.toMatchObject({ name: "kiln.DeliveryFailed", permanent });
    expect(calls).toHaveLength(attempts);
    // Exponential backoff on the virtual clock: 0.5 + 1 + 2 + 4 s at most before the fifth attempt.
    expect(clock.now() - Date.parse("2026-01-05T09:00:00Z")).toBeLessThanOrEqual(7_500);
  });

  it("DeliveryError is named for the logs", () => {
    expect(new DeliveryError("x", true).name).toBe("kiln.DeliveryFailed");
  });
});

describe("pager", () => {
  let dyn: Dynamo;
  let sfn: PagerSfn;
  let clock: VirtualClock;
  let http: ReturnType<typeof capturingFetch>;
  let published: { TopicArn?: string; Subject?: string; Message?: string }[];
  let deps: PagerDeps;
  beforeAll(async () => {
    dyn = await startDynamo();
  });
  afterAll(async () => dyn?.stop());
  beforeEach(async () => {
    sfn = new PagerSfn();
    for (const arn of [ARN, ARN2]) {
      sfn.executions.set(arn, {
        executionArn: arn,
        stateMachineArn: "",
        name: arn.split(":").at(-1)!,
        input: "{}",
        status: "FAILED",
        history: HISTORY,
      });
    }
    clock = new VirtualClock();
    http = capturingFetch();
    published = [];
    deps = {
      sfn,
      machines: MACHINES,
      sns: { send: async (cmd: { input: (typeof published)[number] }) => void published.push(cmd.input) },
      ddb: dyn.ddb,
      table: await dyn.newTable(),
      clock,
      fetch: http.fetch,
      secret: async (param) => (param === "/kiln/pagerduty" ? "R0UTINGKEY" : SLACK_URL),
      routeFor: () => ({
        severity: "critical",
        environment: "production",
        pagerDutyRoutingKeyParam: "/kiln/pagerduty",
        slackWebhookParam: "/kiln/slack",
        snsTopicArn: "arn:aws:sns:us-east-1:123456789012:oncall",
      }),
      pagerDutyUrl: PD_URL,
      random: () => 0.5,
    };
  });

  it("a failure triggers one page carrying the failed step, error, cause and the redrive/abort commands", async () => {
    const r = await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    expect(r).toEqual({
      action: "triggered",
      executionArn: ARN,
      service: "web",
      environment: "production",
      channels: ["pagerduty", "slack", "sns"],
    });
    const pd = http.calls.find((c) => c.url === PD_URL)!;
    expect(pd.body).toMatchObject({
      routing_key: "R0UTINGKEY",
      event_action: "trigger",
      dedup_key: ARN,
      payload: {
        summary: "kiln: web (production) deployment of 0d1a26e67d8f FAILED at RunInstallScript: kiln.StepFailed",
        severity: "critical",
        component: "web",
        group: "production",
        source: "kiln-deploy (us-east-1)",
        custom_details: {
          service: "web",
          environment: "production",
          commit: COMMIT,
          failed_step: "RunInstallScript",
          error: "kiln.StepFailed",
          cause: "install script exited 2 on i-0abc: npm ERR! missing script: build",
          redrive: `kiln redrive ${ARN}`,
          abort: `kiln abort ${ARN}`,
          console: expect.stringContaining(`#/v2/executions/details/${ARN}`),
        },
      },
    });
    const slack = http.calls.find((c) => c.url === SLACK_URL)!;
    expect(slack.body.text).toContain(`kiln redrive ${ARN}`);
    expect(slack.body.text).toContain("Failed step: RunInstallScript");
    expect(published[0]).toMatchObject({
      TopicArn: "arn:aws:sns:us-east-1:123456789012:oncall",
      Message: expect.stringContaining(`kiln abort ${ARN}`),
    });
    expect(published[0]!.Subject!.length).toBeLessThanOrEqual(100);
  });

  it("does not page twice for a redelivered event", async () => {
    await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    const again = await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    expect(again).toMatchObject({ action: "duplicate" });
    expect(http.calls).toHaveLength(2); // PagerDuty + Slack, once
    expect(published).toHaveLength(1);
  });

  it("concurrent deliveries of the same event page once", async () => {
    const rs = await Promise.all([1, 2, 3].map(() => handleStatusChange(statusEvent(ARN, "TIMED_OUT"), deps)));
    expect(rs.filter((r) => r.action === "triggered")).toHaveLength(1);
    expect(http.calls.filter((c) => c.url === PD_URL)).toHaveLength(1);
  });

  it("a later SUCCEEDED of the same execution (redrive) resolves with the same dedup key", async () => {
    await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    const r = await handleStatusChange(statusEvent(ARN, "SUCCEEDED", { redriveCount: 1 }), deps);
    expect(r).toMatchObject({ action: "resolved", resolved: [ARN] });
    const resolves = http.calls.filter((c) => c.url === PD_URL && c.body.event_action === "resolve");
    expect(resolves).toEqual([{ url: PD_URL, body: { routing_key: "R0UTINGKEY", event_action: "resolve", dedup_key: ARN } }]);
    expect(http.calls.find((c) => c.url === SLACK_URL && String(c.body.text).startsWith(":white_check_mark:"))).toBeDefined();
    // A redelivered SUCCEEDED resolves nothing more.
    await expect(handleStatusChange(statusEvent(ARN, "SUCCEEDED", { redriveCount: 1 }), deps)).resolves.toMatchObject({
      action: "duplicate",
    });
  });

  it("a superseding successful deployment of the same service resolves the earlier page", async () => {
    await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    const r = await handleStatusChange(statusEvent(ARN2, "SUCCEEDED"), deps);
    expect(r).toMatchObject({ action: "resolved", resolved: [ARN] });
    expect(http.calls.filter((c) => c.body.event_action === "resolve").map((c) => c.body.dedup_key)).toEqual([ARN]);
  });

  it("a success with nothing open sends nothing", async () => {
    await expect(handleStatusChange(statusEvent(ARN2, "SUCCEEDED"), deps)).resolves.toMatchObject({ action: "duplicate" });
    expect(http.calls).toHaveLength(0);
  });

  it("a redriven execution that fails again pages again", async () => {
    await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    await handleStatusChange(statusEvent(ARN, "FAILED", { redriveCount: 1 }), deps);
    expect(http.calls.filter((c) => c.url === PD_URL && c.body.event_action === "trigger")).toHaveLength(2);
  });

  it("retries an endpoint with backoff; a channel that stays down fails the invocation, and the retry skips delivered channels", async () => {
    http = capturingFetch([503, 202, /* slack: */ 500, 500, 500, 500, 500]);
    deps.fetch = http.fetch;
    await expect(handleStatusChange(statusEvent(ARN, "FAILED"), deps)).rejects.toMatchObject({ name: "kiln.Throttled" });
    expect(http.calls.filter((c) => c.url === PD_URL)).toHaveLength(2);
    expect(http.calls.filter((c) => c.url === SLACK_URL)).toHaveLength(5);
    // Lambda's async retry: PagerDuty already has it, only Slack is tried again.
    const r = await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    expect(r).toMatchObject({ action: "triggered", channels: ["slack"] });
    expect(http.calls.filter((c) => c.url === PD_URL)).toHaveLength(2);
  });

  it("a rejected message (4xx) is not retried and does not fail the invocation", async () => {
    http = capturingFetch([400]);
    deps.fetch = http.fetch;
    const r = await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    expect(r).toMatchObject({ action: "triggered", channels: ["slack", "sns"] });
    await expect(handleStatusChange(statusEvent(ARN, "FAILED"), deps)).resolves.toMatchObject({ action: "duplicate" });
  });

  it.each([
    ["RUNNING", "ignored"],
    ["PENDING_REDRIVE", "ignored"],
  ])("status %s is %s", async (status, action) => {
    await expect(handleStatusChange(statusEvent(ARN, status), deps)).resolves.toMatchObject({ action });
  });

  it("ignores executions that are not kiln's", async () => {
    await expect(handleStatusChange(statusEvent(ARN, "FAILED", { input: '{"foo":1}' }), deps)).resolves.toMatchObject({
      action: "ignored",
    });
  });

  it("reads the input from DescribeExecution when the event leaves it out", async () => {
    sfn.executions.get(ARN)!.input = JSON.stringify({ service: "web", commit: COMMIT, trigger: "push" });
    await expect(handleStatusChange(statusEvent(ARN, "ABORTED", { input: null }), deps)).resolves.toMatchObject({
      action: "triggered",
      service: "web",
    });
  });

  it("records the failure on the service lock it held, and the success resolves it", async () => {
    await acquireLock(
      { service: "web", environment: "production", executionArn: ARN, mayTakeFree: true },
      { ddb: dyn.ddb, table: deps.table, clock },
    );
    await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    expect(
      (await readLock({ service: "web", environment: "production" }, { ddb: dyn.ddb, table: deps.table, clock }))?.lastFailed,
    ).toMatchObject({
      executionArn: ARN,
      unresolved: true,
      status: "FAILED",
    });
    await handleStatusChange(statusEvent(ARN, "SUCCEEDED", { redriveCount: 1 }), deps);
    expect(
      (await readLock({ service: "web", environment: "production" }, { ddb: dyn.ddb, table: deps.table, clock }))?.lastFailed
        ?.unresolved,
    ).toBe(false);
  });
});

describe("pager: operator actions notify at info, other machines are ignored", () => {
  let dyn: Dynamo;
  let sfn: PagerSfn;
  let http: ReturnType<typeof capturingFetch>;
  let published: { Subject?: string; Message?: string; MessageAttributes?: Record<string, { StringValue?: string }> }[];
  let deps: PagerDeps;
  beforeAll(async () => {
    dyn = await startDynamo();
  });
  afterAll(async () => dyn?.stop());
  beforeEach(async () => {
    sfn = new PagerSfn();
    http = capturingFetch();
    published = [];
    deps = {
      sfn,
      machines: MACHINES,
      sns: { send: async (cmd: { input: (typeof published)[number] }) => void published.push(cmd.input) },
      ddb: dyn.ddb,
      table: await dyn.newTable(),
      clock: new VirtualClock(),
      fetch: http.fetch,
      secret: async (param) => (param === "/kiln/pagerduty" ? "R0UTINGKEY" : SLACK_URL),
      routeFor: () => ({
        severity: "critical",
        pagerDutyRoutingKeyParam: "/kiln/pagerduty",
        slackWebhookParam: "/kiln/slack",
        snsTopicArn: "arn:aws:sns:us-east-1:123456789012:oncall",
      }),
      pagerDutyUrl: PD_URL,
      random: () => 0.5,
    };
  });

  /** An execution of `machine` (key of MACHINES) that failed in `state` with `error`. */
  function failed(
    machine: keyof typeof MACHINES,
    name: string,
    input: Record<string, unknown>,
    state: string,
    error: string,
    cause = "x",
  ) {
    const stateMachineArn = MACHINES[machine];
    const executionArn = `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${name}`;
    sfn.executions.set(executionArn, {
      executionArn,
      stateMachineArn,
      name,
      input: JSON.stringify(input),
      status: "FAILED",
      history: [
        { id: 1, type: "ExecutionStarted", executionStartedEventDetails: {} },
        { id: 2, type: "TaskStateEntered", stateEnteredEventDetails: { name: state } },
        { id: 3, type: "TaskFailed", taskFailedEventDetails: { error, cause } },
        { id: 4, type: "ExecutionFailed", executionFailedEventDetails: { error, cause } },
      ],
    });
    return statusEvent(executionArn, "FAILED", { stateMachineArn, input: JSON.stringify(input), error, cause });
  }

  const pagedAtCritical = () =>
    http.calls.some((c) => c.url === PD_URL && (c.body.payload as { severity?: string } | undefined)?.severity === "critical");

  it("the pager ignores executions of other state machines", async () => {
    const other = "arn:aws:states:us-east-1:123456789012:stateMachine:billing-etl";
    const e = statusEvent(`${other.replace(":stateMachine:", ":execution:")}:run-1`, "FAILED", {
      stateMachineArn: other,
      input: JSON.stringify({ service: "web", commit: COMMIT }),
    });
    await expect(handleStatusChange(e, deps)).resolves.toMatchObject({
      action: "ignored",
      reason: expect.stringContaining("not an execution of kiln's"),
    });
    expect(http.calls).toHaveLength(0);
    expect(published).toHaveLength(0);
  });

  it("a refused rollback notifies at info, not critical", async () => {
    const e = failed(
      "rollback",
      "web-api-pre-prod-rollback-operator-x1",
      { service: "web-api", environment: "pre-prod", trigger: "operator", requestedBy: "alice" },
      "PrepareRollback",
      "kiln.StepFailed",
      "the previous fleet's fast-rollback window ended",
    );
    const r = await handleStatusChange(e, deps);
    expect(r).toMatchObject({
      action: "notified",
      notice: "rollback-refused",
      service: "web-api",
      environment: "pre-prod",
      channels: ["slack", "sns"],
    });
    expect(pagedAtCritical()).toBe(false);
    expect(http.calls.filter((c) => c.url === PD_URL)).toHaveLength(0);
    const slack = http.calls.find((c) => c.url === SLACK_URL)!;
    expect(slack.body.text).toMatch(/^:information_source: \*kiln: web-api \(pre-prod\) rollback refused by alice\*/);
    expect(slack.body.text).toContain("Severity: info");
    expect(published[0]!.MessageAttributes).toMatchObject({
      severity: { StringValue: "info" },
      kind: { StringValue: "notice:rollback-refused" },
    });
    // Recorded: a redelivered event notifies nobody again.
    await expect(handleStatusChange(e, deps)).resolves.toMatchObject({ action: "duplicate" });
    expect(published).toHaveLength(1);
  });

  it("a rollback that fails after kiln accepted it still pages at critical", async () => {
    const e = failed(
      "rollback",
      "web-production-rollback-operator-x2",
      { service: "web", environment: "production", trigger: "operator", requestedBy: "alice" },
      "RestorePrevious",
      "kiln.StepFailed",
    );
    await expect(handleStatusChange(e, deps)).resolves.toMatchObject({ action: "triggered" });
    expect(pagedAtCritical()).toBe(true);
    expect(published[0]!.MessageAttributes).toMatchObject({
      severity: { StringValue: "critical" },
      kind: { StringValue: "page" },
    });
  });

  it("an abort kiln started itself (superseding push) that is refused pages", async () => {
    const e = failed(
      "abort",
      "abort-web-production-aaaa-push-1",
      { service: "web", executionArn: ARN, requestedBy: "kiln:supersede" },
      "PrepareAbort",
      "kiln.LockHeld",
    );
    await expect(handleStatusChange(e, deps)).resolves.toMatchObject({ action: "triggered" });
    expect(pagedAtCritical()).toBe(true);
  });

  it("a redrive of a superseded deployment that refuses to run notifies at info, never pages", async () => {
    const e = failed(
      "deploy",
      "web-production-0d1a26e67d8f-push-1",
      { service: "web", environment: "production", commit: COMMIT, trigger: "push", branch: "main" },
      "RenewLock",
      "kiln.Superseded",
      "superseded by request #2",
    );
    await expect(handleStatusChange(e, deps)).resolves.toMatchObject({ action: "notified", notice: "superseded" });
    expect(pagedAtCritical()).toBe(false);
  });

  it("reject and operator abort notify at info", async () => {
    const input = { service: "web-api", environment: "pre-prod", commit: COMMIT, trigger: "push", branch: "pre" };
    const rejected = failed(
      "deploy",
      "web-api-pre-prod-0d1a26e67d8f-push-3",
      input,
      "RequestApproval",
      "kiln.Rejected",
      "rejected by bob: not today",
    );
    await expect(handleStatusChange(rejected, deps)).resolves.toMatchObject({
      action: "notified",
      notice: "rejected",
      environment: "pre-prod",
    });

    // The operator's abort execution (its input names the deployment) stopped a running deployment.
    const deployArn = `${MACHINES.deploy.replace(":stateMachine:", ":execution:")}:web-api-pre-prod-1111aaaa2222-push-4`;
    const abortArn = `${MACHINES.abort.replace(":stateMachine:", ":execution:")}:web-api-pre-prod-abort-operator-k1`;
    sfn.executions.set(abortArn, {
      executionArn: abortArn,
      stateMachineArn: MACHINES.abort,
      name: abortArn.split(":").at(-1)!,
      input: JSON.stringify({
        service: "web-api",
        environment: "pre-prod",
        executionArn: deployArn,
        trigger: "operator",
        requestedBy: "carol",
        reason: "bad canary",
      }),
      status: "RUNNING",
    });
    sfn.executions.set(deployArn, {
      executionArn: deployArn,
      stateMachineArn: MACHINES.deploy,
      name: deployArn.split(":").at(-1)!,
      input: JSON.stringify(input),
      status: "ABORTED",
      history: [],
    });
    const aborted = statusEvent(deployArn, "ABORTED", {
      stateMachineArn: MACHINES.deploy,
      input: JSON.stringify(input),
      error: "kiln.Aborted",
      cause: "aborted by web-api-pre-prod-abort-operator-k1 (carol): bad canary",
    });
    await expect(handleStatusChange(aborted, deps)).resolves.toMatchObject({ action: "notified", notice: "operator-abort" });
    expect(http.calls.filter((c) => c.url === PD_URL)).toHaveLength(0);
    expect(published.map((p) => p.MessageAttributes?.severity?.StringValue)).toEqual(["info", "info"]);
    expect(published[1]!.Message).toContain("Reason: bad canary");
    // Nothing is left open: the abort's success resolves (and sends) nothing.
    await expect(
      handleStatusChange(
        statusEvent(abortArn, "SUCCEEDED", { stateMachineArn: MACHINES.abort, input: sfn.executions.get(abortArn)!.input }),
        deps,
      ),
    ).resolves.toMatchObject({ action: "duplicate" });
  });

  it("a deployment stopped by anything but an operator's abort pages", async () => {
    const input = { service: "web", environment: "production", commit: COMMIT, trigger: "push" };
    sfn.executions.set(ARN, {
      executionArn: ARN,
      stateMachineArn: MACHINES.deploy,
      name: ARN.split(":").at(-1)!,
      input: JSON.stringify(input),
      status: "ABORTED",
      history: [],
    });
    const e = statusEvent(ARN, "ABORTED", {
      stateMachineArn: MACHINES.deploy,
      input: JSON.stringify(input),
      error: null,
      cause: null,
    });
    await expect(handleStatusChange(e, deps)).resolves.toMatchObject({ action: "triggered" });
    expect(pagedAtCritical()).toBe(true);
  });

  it("a success in one environment does not resolve the other's page", async () => {
    const prod = failed(
      "deploy",
      "web-production-aaaa-push-1",
      { service: "web", environment: "production", commit: COMMIT },
      "ShiftTraffic",
      "kiln.StepFailed",
    );
    await handleStatusChange(prod, deps);
    const stagingOk = statusEvent(
      `${MACHINES.deploy.replace(":stateMachine:", ":execution:")}:web-staging-bbbb-push-2`,
      "SUCCEEDED",
      {
        stateMachineArn: MACHINES.deploy,
        input: JSON.stringify({ service: "web", environment: "staging", commit: COMMIT }),
      },
    );
    await expect(handleStatusChange(stagingOk, deps)).resolves.toMatchObject({ action: "duplicate" });
    const prodOk = statusEvent(
      `${MACHINES.deploy.replace(":stateMachine:", ":execution:")}:web-production-cccc-push-3`,
      "SUCCEEDED",
      {
        stateMachineArn: MACHINES.deploy,
        input: JSON.stringify({ service: "web", environment: "production", commit: COMMIT }),
      },
    );
    await expect(handleStatusChange(prodOk, deps)).resolves.toMatchObject({ action: "resolved" });
  });
});
