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
import { type Dynamo, FakeSfn, startDynamo } from "../lock/fakes.ts";

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
      stateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:kiln-deploy",
      name: executionArn.split(":").at(-1)!,
      status: status as StatusChangeEvent["detail"]["status"],
      startDate: 1767607200000,
      stopDate: 1767608400000,
      input: JSON.stringify({ service: "web", environment: "production", commit: COMMIT, trigger: "push", branch: "main", repository: "Acme/web" }),
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
  let sfn: FakeSfn;
  let clock: VirtualClock;
  let http: ReturnType<typeof capturingFetch>;
  let published: { TopicArn?: string; Subject?: string; Message?: string }[];
  let deps: PagerDeps;
  beforeAll(async () => {
    dyn = await startDynamo();
  });
  afterAll(async () => dyn?.stop());
  beforeEach(async () => {
    sfn = new FakeSfn();
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
    expect(r).toEqual({ action: "triggered", executionArn: ARN, service: "web", channels: ["pagerduty", "slack", "sns"] });
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
    await acquireLock({ service: "web", environment: "production", executionArn: ARN , mayTakeFree: true }, { ddb: dyn.ddb, table: deps.table, clock });
    await handleStatusChange(statusEvent(ARN, "FAILED"), deps);
    expect((await readLock({ service: "web", environment: "production" }, { ddb: dyn.ddb, table: deps.table, clock }))?.lastFailed).toMatchObject({
      executionArn: ARN,
      unresolved: true,
      status: "FAILED",
    });
    await handleStatusChange(statusEvent(ARN, "SUCCEEDED", { redriveCount: 1 }), deps);
    expect((await readLock({ service: "web", environment: "production" }, { ddb: dyn.ddb, table: deps.table, clock }))?.lastFailed?.unresolved).toBe(false);
  });
});
