import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  SFNClient,
} from "@aws-sdk/client-sfn";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { unitKey } from "../../../lib/names.ts";
import type { Cloud } from "../../../local/cloud/cloud.ts";
import type { LambdaBackend } from "../../../local/cloud/services/lambda/index.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();

/**
 * `deploy.asl.json` cut at the `RollPhase` hand-off (which then ends the execution), keeping only
 * the states still reachable: the bake phase exactly as deployed, without the roll phase after it.
 */
export function bakePhaseDefinition(): string {
  // `any`: ASL JSON
  const def: any = JSON.parse(readFileSync(path.join(ROOT, "state-machines/deploy.asl.json"), "utf8"));
  const hand = def.States.RollPhase;
  delete hand.Next;
  hand.End = true;
  // The service lock is not the bake's concern (tested with the triggers): step over it.
  for (const state of Object.values(def.States) as { Next?: string }[]) {
    const lock = state.Next ? def.States[state.Next] : undefined;
    if (lock && /\$\{(Acquire|Release)LockFunctionArn\}/.test(JSON.stringify(lock.Arguments ?? {}))) state.Next = lock.Next;
  }
  const keep = new Set<string>();
  const visit = (n: string | undefined) => {
    if (!n || keep.has(n)) return;
    keep.add(n);
    const s = def.States[n];
    for (const t of [
      s.Next,
      s.Default,
      ...(s.Choices ?? []).map((c: { Next: string }) => c.Next),
      ...(s.Catch ?? []).map((c: { Next: string }) => c.Next),
    ])
      visit(t);
  };
  visit(def.StartAt);
  for (const n of Object.keys(def.States)) if (!keep.has(n)) delete def.States[n];
  return JSON.stringify(def);
}

/**
 * Registers the bake phase of `state-machines/deploy.asl.json` with its `${<Step>FunctionArn}`
 * placeholders replaced by in-process Lambdas running the real handlers of `functions/`.
 * Returns the state machine ARN.
 */
export async function registerDeploy(cloud: Cloud, sfn: SFNClient, name = "kiln-deploy"): Promise<string> {
  const text = bakePhaseDefinition();
  const lambda = cloud.backend<LambdaBackend>("lambda");
  const arns = new Map<string, string>();
  for (const m of text.matchAll(/"\$\{([A-Za-z0-9]+)FunctionArn\}"/g)) {
    const step = m[1]!;
    if (arns.has(step)) continue;
    const mod = await import(pathToFileURL(path.join(ROOT, "functions", `${kebab(step)}.ts`)).href);
    arns.set(
      step,
      lambda.registerFunction({
        name: `kiln-test-${kebab(step)}`,
        handler: mod.handler,
        timeoutSeconds: 60,
        handlerName: `functions/${kebab(step)}.handler`,
      }),
    );
  }
  const definition = text.replace(/\$\{([A-Za-z0-9]+)FunctionArn\}/g, (_m, step: string) => arns.get(step)!);
  const r = await sfn.send(
    new CreateStateMachineCommand({
      name,
      definition,
      roleArn: `arn:aws:iam::${cloud.accountId}:role/kiln-states`,
      type: "STANDARD",
    }),
  );
  return r.stateMachineArn!;
}

/** Waits (on the cloud clock) until the execution is no longer RUNNING; bounded. */
export async function settle(
  cloud: Cloud,
  sfn: SFNClient,
  executionArn: string,
  maxSimMs = 6 * 3_600_000,
): Promise<DescribeExecutionCommandOutput> {
  const deadline = cloud.clock.now() + maxSimMs;
  for (;;) {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (d.status !== "RUNNING") return d;
    if (cloud.clock.now() > deadline)
      throw new Error(`execution ${executionArn} still RUNNING after ${maxSimMs} ms of simulated time`);
    await cloud.clock.sleep(15_000);
  }
}

const LOCK_TABLE = "kiln-test-locks";

/**
 * The service lock as the queue leaves it for a started execution: held by `executionArn`. The
 * bake's steps that launch, build or delete check it (lib/lock/holder.ts) and, deployed, fail
 * without a lock table; the harness plays the trigger that claimed it.
 */
export async function holdLock(cloud: Cloud, executionArn: string, service = "web", environment = "production"): Promise<void> {
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(cloud.clientConfig()));
  process.env.KILN_LOCK_TABLE = LOCK_TABLE;
  try {
    await ddb.send(
      new CreateTableCommand({
        TableName: LOCK_TABLE,
        AttributeDefinitions: [{ AttributeName: "service", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "service", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
  } catch (err) {
    if ((err as Error).name !== "ResourceInUseException") throw err;
  }
  await ddb.send(
    new PutCommand({
      TableName: LOCK_TABLE,
      Item: {
        service: unitKey(service, environment),
        version: 1,
        holder: executionArn,
        holderState: "running",
        updatedAt: cloud.clock.now(),
      },
    }),
  );
}
