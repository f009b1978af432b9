/**
 * Where CLI commands act: the local stack recorded in `.kiln/stack.json` by `kiln up` / `kiln start`
 * (the default), or real AWS with `--profile` / `--region`.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { ListStateMachinesCommand, SFNClient } from "@aws-sdk/client-sfn";
import { SSMClient } from "@aws-sdk/client-ssm";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { Stack, StackInfo } from "../stack.ts";
import { PROJECT_ROOT } from "../serverless.ts";

/** Where `kiln up` records the running stack (`KILN_STATE_DIR` overrides it, e.g. in tests). */
export const STATE_DIR = process.env.KILN_STATE_DIR ? path.resolve(process.env.KILN_STATE_DIR) : path.join(PROJECT_ROOT, ".kiln");
export const STACK_FILE = path.join(STATE_DIR, "stack.json");

export interface LocalStackRecord extends StackInfo {
  pid: number;
  webhookSecret: string;
  startedAt: string;
  services: Record<string, { loadBalancerUrl?: string; commit?: string }>;
  /** What the cloud endpoint requires requests to be signed with (SigV4); generated per stack. */
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** Writes the record readable by this user only: it holds the webhook secret and the cloud's credentials. */
export function writeStackRecord(r: LocalStackRecord): void {
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(STACK_FILE, `${JSON.stringify(r, null, 2)}\n`, { mode: 0o600 });
  chmodSync(STACK_FILE, 0o600); // an existing file keeps its mode on write
}

export function removeStackRecord(pid: number): void {
  try {
    const r = JSON.parse(readFileSync(STACK_FILE, "utf8")) as LocalStackRecord;
    if (r.pid === pid) rmSync(STACK_FILE);
  } catch {
    // nothing recorded
  }
}

/** Thrown for an operator mistake: the CLI prints it and exits with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, noStack: 4 } as const;

export interface Target {
  kind: "local" | "aws";
  region: string;
  stateMachines: { deploy?: string; abort?: string; rollback?: string };
  functions: Record<string, string>;
  tables: Record<string, string>;
  webhookUrl?: string;
  webhookSecret?: string;
  endpoint?: string;
  consoleUrl?: string;
  record?: LocalStackRecord;
  clients: {
    ec2: EC2Client;
    autoscaling: AutoScalingClient;
    elbv2: ElasticLoadBalancingV2Client;
    sfn: SFNClient;
    ssm: SSMClient;
    lambda: LambdaClient;
    dynamodb: DynamoDBDocumentClient;
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Finds a state machine ARN among the stack's by its suffix (`deploy`, `abort`, `rollback`). */
function machine(machines: Record<string, string>, suffix: string): string | undefined {
  return Object.values(machines).find((arn) => new RegExp(`[-:]${suffix}(-[a-z0-9]+)?$`).test(arn) || arn.endsWith(`:${suffix}`));
}

export function localTarget(): Target {
  if (!existsSync(STACK_FILE)) {
    throw new CliError(
      "no local kiln stack is running: start one with `npx kiln up` (or `npm start`), or pass --profile/--region for AWS",
      EXIT.noStack,
    );
  }
  const r = JSON.parse(readFileSync(STACK_FILE, "utf8")) as LocalStackRecord;
  if (!isAlive(r.pid)) {
    throw new CliError(
      `the local stack recorded in ${STACK_FILE} (pid ${r.pid}) is not running: start one with \`npx kiln up\``,
      EXIT.noStack,
    );
  }
  if (!r.credentials?.accessKeyId) {
    throw new CliError(
      `the local stack recorded in ${STACK_FILE} has no credentials (started by an older kiln): stop it and run \`npx kiln up\` again`,
      EXIT.noStack,
    );
  }
  const cfg = { region: r.region, endpoint: r.endpoint, credentials: { ...r.credentials } };
  return {
    kind: "local",
    region: r.region,
    stateMachines: {
      deploy: machine(r.stateMachines, "deploy"),
      abort: machine(r.stateMachines, "abort"),
      rollback: machine(r.stateMachines, "rollback"),
    },
    functions: r.functions,
    tables: r.tables,
    webhookUrl: r.webhookUrl,
    webhookSecret: r.webhookSecret,
    endpoint: r.endpoint,
    consoleUrl: r.consoleUrl,
    record: r,
    clients: clientsFor(cfg),
  };
}

export function clientsFor(cfg: ConstructorParameters<typeof EC2Client>[0] & object): Target["clients"] {
  return {
    ec2: new EC2Client(cfg),
    autoscaling: new AutoScalingClient(cfg),
    elbv2: new ElasticLoadBalancingV2Client(cfg),
    sfn: new SFNClient(cfg),
    ssm: new SSMClient(cfg),
    lambda: new LambdaClient(cfg),
    dynamodb: DynamoDBDocumentClient.from(new DynamoDBClient(cfg)),
  };
}

/**
 * Real AWS: clients from the SDK's default chain with the given profile/region; the deployed
 * stack's state machines and functions are found by kiln's naming convention
 * (`kiln-<stage>-<name>`), so no CloudFormation read is needed.
 */
export async function awsTarget(opts: { profile?: string; region?: string; stage?: string }): Promise<Target> {
  if (opts.profile) process.env.AWS_PROFILE = opts.profile;
  const region = opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) throw new CliError("--region (or AWS_REGION) is required with AWS", EXIT.usage);
  const stage = opts.stage ?? "prod";
  const clients = clientsFor({ region });
  const machines: Record<string, string> = {};
  let nextToken: string | undefined;
  do {
    const r = await clients.sfn.send(new ListStateMachinesCommand({ nextToken }));
    for (const m of r.stateMachines ?? []) if (m.name?.startsWith(`kiln-${stage}-`)) machines[m.name] = m.stateMachineArn!;
    nextToken = r.nextToken;
  } while (nextToken);
  return {
    kind: "aws",
    region,
    stateMachines: {
      deploy: machine(machines, "deploy"),
      abort: machine(machines, "abort"),
      rollback: machine(machines, "rollback"),
    },
    functions: {},
    tables: { LockTable: `kiln-${stage}-lock`, DeploymentsTable: `kiln-${stage}-deployments` },
    clients,
  };
}

/** The running in-process local stack as a target (the console and `kiln start` use it). */
export function stackTarget(stack: Stack): Target {
  const info = stack.info();
  const find = (s: string) => Object.values(info.stateMachines).find((a) => new RegExp(`[-:]${s}$`).test(a));
  return {
    kind: "local",
    region: info.region,
    stateMachines: { deploy: find("deploy"), abort: find("abort"), rollback: find("rollback") },
    functions: info.functions,
    tables: info.tables,
    webhookUrl: info.webhookUrl,
    webhookSecret: stack.webhookSecret,
    endpoint: info.endpoint,
    consoleUrl: info.consoleUrl,
    clients: clientsFor(stack.cloud.clientConfig()),
  };
}
