/**
 * Test doubles shared by the trigger tests: a DynamoDB from dynalite (the real conditional-write
 * semantics) and a Step Functions fake with StartExecution's name rules (reference §6.2).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DescribeExecutionCommand, GetExecutionHistoryCommand, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
// @ts-expect-error dynalite ships no types
import dynalite from "dynalite";

export const DEPLOY_SM = "arn:aws:states:us-east-1:123456789012:stateMachine:kiln-deploy";
export const ABORT_SM = "arn:aws:states:us-east-1:123456789012:stateMachine:kiln-abort";

export interface Dynamo {
  ddb: DynamoDBDocumentClient;
  table: string;
  /** Creates another empty lock table and returns its name. */
  newTable(): Promise<string>;
  stop(): Promise<void>;
}

let tableSeq = 0;

/** A dynalite server on a loopback port with a fresh lock table. */
export async function startDynamo(): Promise<Dynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    // Bursts of hundreds of concurrent requests in the tests.
    requestHandler: { httpAgent: new http.Agent({ keepAlive: true, maxSockets: 512 }) },
  });
  const newTable = async () => {
    const table = `kiln-locks-${++tableSeq}`;
    await client.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [{ AttributeName: "service", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "service", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    return table;
  };
  const table = await newTable();
  const ddb = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return {
    ddb,
    table,
    newTable,
    stop: async () => {
      client.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export function awsError(name: string, message = name): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });
}

export interface FakeExecution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: string;
  status: "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";
  error?: string;
  cause?: string;
  history?: Record<string, unknown>[];
}

/** Step Functions fake: StartExecution idempotent by name+input while RUNNING, else ExecutionAlreadyExists. */
export class FakeSfn {
  readonly executions = new Map<string, FakeExecution>();
  readonly starts: FakeExecution[] = [];
  /** Fails the next StartExecution calls with this error name. */
  failStarts: string[] = [];

  async send(cmd: unknown): Promise<unknown> {
    await Promise.resolve();
    if (cmd instanceof StartExecutionCommand) {
      const { stateMachineArn, name, input } = cmd.input;
      const f = this.failStarts.shift();
      if (f) throw awsError(f);
      const m = /^(arn:aws:states:[^:]+:\d+):stateMachine:([^:]+)/.exec(stateMachineArn!)!;
      const executionArn = `${m[1]}:execution:${m[2]}:${name}`;
      const existing = this.executions.get(executionArn);
      if (existing) {
        if (existing.status === "RUNNING" && existing.input === (input ?? "{}")) return { executionArn, startDate: new Date() };
        throw awsError("ExecutionAlreadyExists", `Execution Already Exists: '${executionArn}'`);
      }
      const e: FakeExecution = {
        executionArn,
        stateMachineArn: stateMachineArn!,
        name: name!,
        input: input ?? "{}",
        status: "RUNNING",
      };
      this.executions.set(executionArn, e);
      this.starts.push(e);
      return { executionArn, startDate: new Date() };
    }
    if (cmd instanceof DescribeExecutionCommand) {
      const e = this.executions.get(cmd.input.executionArn!);
      if (!e) throw awsError("ExecutionDoesNotExist", `Execution Does Not Exist: '${cmd.input.executionArn}'`);
      return { ...e, startDate: new Date(0) };
    }
    if (cmd instanceof GetExecutionHistoryCommand) {
      const e = this.executions.get(cmd.input.executionArn!);
      if (!e) throw awsError("ExecutionDoesNotExist");
      const events = [...(e.history ?? [])];
      return { events: cmd.input.reverseOrder ? events.reverse() : events };
    }
    throw new Error(`FakeSfn: unsupported ${(cmd as object).constructor.name}`);
  }

  /** Starts counted per state machine. */
  startsOf(stateMachineArn: string): FakeExecution[] {
    return this.starts.filter((s) => s.stateMachineArn === stateMachineArn);
  }

  end(executionArn: string, status: FakeExecution["status"], extra: Partial<FakeExecution> = {}): void {
    const e = this.executions.get(executionArn);
    if (!e) throw new Error(`no execution ${executionArn}`);
    Object.assign(e, { status, ...extra });
  }
}

/** A settable clock (the lock only reads `now()`). */
export class ManualClock {
  constructor(public t = Date.parse("2026-01-05T09:00:00Z")) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
