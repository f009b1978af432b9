/**
 * A `Target` over in-memory Step Functions and DynamoDB fakes, and a configuration file with the
 * services a test names: drives the CLI's and the console's target resolution for any service and
 * environment names without a stack (whose Lambdas read the repository's kiln.config.yaml).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  DescribeExecutionCommand,
  DescribeStateMachineForExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  RedriveExecutionCommand,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { parse } from "yaml";
import { clearConfigCache, DEFAULT_CONFIG_PATH } from "../../lib/config/index.ts";
import { executionName, unitKey } from "../../lib/names.ts";
import type { Target } from "../../local/cli/target.ts";
import { awsError } from "../unit/lock/fakes.ts";

const REGION_ACCOUNT = "arn:aws:states:us-east-1:123456789012";
export const MACHINES = {
  deploy: `${REGION_ACCOUNT}:stateMachine:kiln-test-deploy`,
  abort: `${REGION_ACCOUNT}:stateMachine:kiln-test-abort`,
  rollback: `${REGION_ACCOUNT}:stateMachine:kiln-test-rollback`,
};

export interface FakeExecution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: string;
  status: string;
  startDate: Date;
  stopDate?: Date;
  error?: string;
  cause?: string;
  history: Record<string, unknown>[];
}

/** The calls the CLI and console make, on executions held in memory; task decisions are recorded. */
export class FakeStates {
  readonly executions = new Map<string, FakeExecution>();
  readonly decisions: { token: string; approved: boolean; cause?: string; output?: string }[] = [];
  readonly redriven: string[] = [];
  private t = Date.parse("2026-01-05T09:00:00Z");

  add(e: Omit<FakeExecution, "executionArn" | "startDate" | "history"> & { history?: Record<string, unknown>[] }): FakeExecution {
    const executionArn = `${e.stateMachineArn.replace(":stateMachine:", ":execution:")}:${e.name}`;
    const x: FakeExecution = { history: [], ...e, executionArn, startDate: new Date((this.t += 1000)) };
    this.executions.set(executionArn, x);
    return x;
  }

  async send(cmd: unknown): Promise<unknown> {
    if (cmd instanceof DescribeExecutionCommand) {
      const e = this.executions.get(cmd.input.executionArn!);
      if (!e) throw awsError("ExecutionDoesNotExist");
      return { ...e };
    }
    if (cmd instanceof ListExecutionsCommand) {
      const all = [...this.executions.values()].filter((e) => e.stateMachineArn === cmd.input.stateMachineArn);
      return { executions: all.sort((a, b) => b.startDate.getTime() - a.startDate.getTime()).map((e) => ({ ...e })) };
    }
    if (cmd instanceof GetExecutionHistoryCommand) {
      const e = this.executions.get(cmd.input.executionArn!);
      if (!e) throw awsError("ExecutionDoesNotExist");
      const events = e.history.map((h, i) => ({ id: i + 1, timestamp: e.startDate, ...h }));
      return { events: cmd.input.reverseOrder ? events.reverse() : events };
    }
    if (cmd instanceof DescribeStateMachineForExecutionCommand) {
      return {
        definition: JSON.stringify({
          StartAt: "RequestApproval",
          States: { RequestApproval: { Type: "Task", Resource: "arn:aws:states:::lambda:invoke.waitForTaskToken", End: true } },
        }),
      };
    }
    if (cmd instanceof StartExecutionCommand) {
      const { stateMachineArn, name, input } = cmd.input;
      if (!/^[A-Za-z0-9_-]{1,80}$/.test(name!)) throw awsError("InvalidName", `bad name ${name}`);
      const e = this.add({ stateMachineArn: stateMachineArn!, name: name!, input: input ?? "{}", status: "RUNNING" });
      return { executionArn: e.executionArn, startDate: e.startDate };
    }
    if (cmd instanceof RedriveExecutionCommand) {
      const e = this.executions.get(cmd.input.executionArn!);
      if (!e) throw awsError("ExecutionDoesNotExist");
      if (e.status !== "FAILED") throw awsError("ExecutionNotRedrivable", `execution is ${e.status}`);
      e.status = "RUNNING";
      this.redriven.push(e.executionArn);
      return { redriveDate: new Date() };
    }
    if (cmd instanceof SendTaskSuccessCommand) {
      this.decisions.push({ token: cmd.input.taskToken!, approved: true, output: cmd.input.output });
      return {};
    }
    if (cmd instanceof SendTaskFailureCommand) {
      this.decisions.push({ token: cmd.input.taskToken!, approved: false, cause: cmd.input.cause });
      return {};
    }
    throw new Error(`FakeStates: unsupported ${(cmd as object).constructor.name}`);
  }

  /** A deployment of (service, environment) waiting at the approval gate, with its approval record. */
  waitingDeployment(table: FakeTable, service: string, environment: string, commit: string, seq: number): FakeExecution {
    const e = this.add({
      stateMachineArn: MACHINES.deploy,
      name: executionName(service, environment, commit, "push", seq),
      input: JSON.stringify({ service, environment, commit, trigger: "push", seq }),
      status: "RUNNING",
      history: [
        { type: "ExecutionStarted" },
        { type: "TaskStateEntered", stateEnteredEventDetails: { name: "Prepare" } },
        { type: "TaskStateExited", stateExitedEventDetails: { name: "Prepare" } },
        { type: "TaskStateEntered", stateEnteredEventDetails: { name: "RequestApproval" } },
      ],
    });
    table.items.set(`${unitKey(service, environment)}|approval#${e.executionArn}`, { taskToken: `token-${e.name}` });
    return e;
  }
}

/** The deployments table, as the GetItem the approval lookup makes. */
export class FakeTable {
  readonly items = new Map<string, Record<string, unknown>>();
  async send(cmd: unknown): Promise<unknown> {
    if (cmd instanceof GetCommand) {
      const k = cmd.input.Key as { service: string; startedAt: string };
      return { Item: this.items.get(`${k.service}|${k.startedAt}`) };
    }
    throw new Error(`FakeTable: unsupported ${(cmd as object).constructor.name}`);
  }
}

/** A Target on the fakes (the clients the CLI and console use for these commands). */
export function fakeTarget(states: FakeStates, table: FakeTable): Target {
  const unused = new Proxy(
    {},
    {
      get: () => {
        throw new Error("not used by these commands");
      },
    },
  );
  return {
    kind: "local",
    region: "us-east-1",
    stateMachines: MACHINES,
    functions: {},
    tables: { DeploymentsTable: "deployments", LockTable: "lock" },
    clients: {
      sfn: states as never,
      dynamodb: table as never,
      ec2: unused as never,
      autoscaling: unused as never,
      elbv2: unused as never,
      ssm: unused as never,
      lambda: unused as never,
    },
  };
}

/**
 * Points `KILN_CONFIG` at a copy of kiln.config.yaml whose services are `web` as configured plus
 * each of `services` (name → branch → environment) with web's other settings.
 */
export function useConfig(services: Record<string, Record<string, string>>): string {
  const base = parse(readFileSync(DEFAULT_CONFIG_PATH, "utf8")) as { services: Record<string, Record<string, unknown>> };
  const web = base.services.web!;
  for (const [name, branches] of Object.entries(services)) {
    // Every environment after the first gets its own traffic (environments never share it).
    const envs = [...new Set(Object.values(branches))];
    const environments = Object.fromEntries(
      envs
        .slice(1)
        .map((env, i) => [env, { listener: { loadBalancer: `lb-${i}`, port: 80 }, targetGroups: [`tg-${i}-a`, `tg-${i}-b`] }]),
    );
    base.services[name] = { ...web, branches, environments };
  }
  const file = path.join(mkdtempSync(path.join(tmpdir(), "kiln-config-")), "kiln.config.yaml");
  // JSON is YAML.
  writeFileSync(file, JSON.stringify(base));
  process.env.KILN_CONFIG = file;
  clearConfigCache();
  return file;
}
