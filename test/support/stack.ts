/**
 * End-to-end harness: one local stack per test file (handlers build their SDK clients once per
 * process, as in Lambda), the example service seeded, and helpers to run the deploy, abort and
 * rollback state machines to completion on the stack's clock.
 */
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { type HistoryEvent, SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { SSMClient } from "@aws-sdk/client-ssm";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import type { FaultRule } from "../../local/cloud/faults.ts";
import { type SeedResult, seedService } from "../../local/seed.ts";
import { Stack } from "../../local/stack.ts";
import { type ExecutionView, statesBackend } from "../../local/states/api.ts";

export interface E2E {
  stack: Stack;
  seeded: SeedResult;
  sfn: SFNClient;
  ec2: EC2Client;
  autoscaling: AutoScalingClient;
  elbv2: ElasticLoadBalancingV2Client;
  ssm: SSMClient;
  cloudwatch: CloudWatchClient;
  machines: { deploy: string; abort: string; rollback: string };
}

/** Boots a stack and seeds `web` (4 instances serving `commit`). */
export async function bootE2E(opts: {
  clock?: string;
  settings?: Record<string, number | string | boolean>;
  faults?: FaultRule[];
  commit?: string;
  instances?: number;
  port?: number | false;
}): Promise<E2E> {
  // No web console: the tests drive the APIs (`console` is ignored by stacks that have none).
  const stackOpts = {
    clock: opts.clock ?? "virtual",
    port: opts.port ?? 0,
    settings: opts.settings,
    faults: opts.faults,
    seed: 7,
    console: false,
  };
  const stack = await Stack.start(stackOpts as Parameters<typeof Stack.start>[0]);
  const seeded = await seedService(stack.cloud, { commit: opts.commit ?? "a".repeat(40), instances: opts.instances ?? 4 });
  const cfg = stack.cloud.clientConfig();
  const sm = stack.info().stateMachines;
  const find = (suffix: string) => Object.values(sm).find((arn) => arn.endsWith(`-${suffix}`)) ?? "";
  return {
    stack,
    seeded,
    sfn: new SFNClient(cfg),
    ec2: new EC2Client(cfg),
    autoscaling: new AutoScalingClient(cfg),
    elbv2: new ElasticLoadBalancingV2Client(cfg),
    ssm: new SSMClient(cfg),
    cloudwatch: new CloudWatchClient(cfg),
    machines: { deploy: find("deploy"), abort: find("abort"), rollback: find("rollback") },
  };
}

/** A distinct, valid commit id per `n`. */
export const commitOf = (n: number): string => `${n.toString(16).padStart(8, "0")}${"c".repeat(32)}`;

/**
 * Requests a deploy of `commit` (operator trigger) through kiln's queue — the requestDeploy
 * function `kiln deploy` invokes — and returns the execution's ARN and name (started or queued).
 */
export async function startDeploy(
  e: E2E,
  commit: string,
  opts: { environment?: string } = {},
): Promise<{ arn: string; name: string; action: string }> {
  const r = await new LambdaClient(e.stack.cloud.clientConfig()).send(
    new InvokeCommand({
      FunctionName: e.stack.info().functions.requestDeploy,
      Payload: Buffer.from(
        JSON.stringify({
          service: "web",
          commit,
          ...(opts.environment ? { environment: opts.environment } : {}),
          requestedBy: "test",
        }),
      ),
    }),
  );
  const out = JSON.parse(Buffer.from(r.Payload ?? new Uint8Array()).toString("utf8"));
  if (r.FunctionError) throw new Error(`requestDeploy failed: ${out.errorType}: ${out.errorMessage}`);
  if (out.action !== "started" && out.action !== "queued")
    throw new Error(`requestDeploy did not start ${commit}: ${out.reason}`);
  const arn =
    out.action === "started" ? out.executionArn : `${e.machines.deploy.replace(":stateMachine:", ":execution:")}:${out.name}`;
  return { arn, name: arn.split(":").at(-1)!, action: out.action };
}

/** Starts an execution of `machine` with `input`. */
export async function startMachine(e: E2E, machine: string, name: string, input: Record<string, unknown>): Promise<string> {
  const r = await e.sfn.send(new StartExecutionCommand({ stateMachineArn: machine, name, input: JSON.stringify(input) }));
  return r.executionArn!;
}

/** Waits for the execution to close, bounded by `deadlineMs` of simulated time. */
export async function settle(e: E2E, arn: string, deadlineMs = 6 * 3_600_000): Promise<ExecutionView> {
  const clock = e.stack.cloud.clock;
  const states = statesBackend(e.stack.cloud);
  let timer: ReturnType<typeof clock.setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(
      () => reject(new Error(`${arn} did not close within ${deadlineMs / 1000} simulated seconds`)),
      deadlineMs,
    );
  });
  try {
    return await Promise.race([states.awaitExecution(arn), deadline]);
  } finally {
    clock.clearTimeout(timer);
  }
}

/** Waits (on the stack's clock) until `check` holds, polling every `everyMs`, bounded by `deadlineMs`. */
export async function until(
  e: E2E,
  what: string,
  check: () => boolean | Promise<boolean>,
  everyMs = 1_000,
  deadlineMs = 3_600_000,
): Promise<void> {
  const clock = e.stack.cloud.clock;
  const end = clock.now() + deadlineMs;
  while (!(await check())) {
    if (clock.now() > end) throw new Error(`timed out waiting for ${what}`);
    await clock.sleep(everyMs);
  }
}

/** History of an execution (in process). */
export function historyOf(e: E2E, arn: string): HistoryEvent[] {
  return statesBackend(e.stack.cloud).history(arn) as unknown as HistoryEvent[];
}

/** Names of the states entered, in order. */
export function statesEntered(e: E2E, arn: string): string[] {
  return historyOf(e, arn)
    .filter((h) => h.type?.endsWith("StateEntered"))
    .map((h) => h.stateEnteredEventDetails?.name ?? "?");
}

/** The state an execution failed at (the last state entered). */
export function failedAt(e: E2E, arn: string): string | undefined {
  return statesEntered(e, arn).at(-1);
}
