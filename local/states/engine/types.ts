/**
 * Shapes shared by the engine: the (loosely typed) ASL definition, the dependencies the engine
 * calls out to, history events, and the checkpoints redrive resumes from.
 */
import type { Clock } from "../../../lib/clock.ts";

export type QueryLanguage = "JSONPath" | "JSONata";

/** One ASL state. Fields are as written in the definition; each state module reads its own. */
// `any`: ASL fields are validated by asl-validator and read per state type
export type StateDefinition = Record<string, any> & { Type: string };

/** A States graph: the top-level machine, a Parallel branch, or a Map ItemProcessor. */
export interface StatesGraph {
  StartAt: string;
  States: Record<string, StateDefinition>;
  QueryLanguage?: QueryLanguage;
  TimeoutSeconds?: number;
  Comment?: string;
  Version?: string;
}

/** What a Lambda invocation returns (the Lambda service's Invoke shape, payload already parsed). */
export interface LambdaResult {
  payload: unknown;
  /** `Unhandled` (or `Handled`) when the function threw; the payload then holds `{errorType, errorMessage, trace}`. */
  functionError?: string;
  /** Version that ran (`$LATEST` by default). */
  executedVersion?: string;
  statusCode?: number;
  requestId?: string;
}

/** What the engine needs from its host (the local stack wires these to the simulated cloud). */
export interface EngineDeps {
  clock: Clock;
  /** Seeded uniform [0,1): retry jitter, MathRandom, UUIDs, task tokens. */
  random?(): number;
  region: string;
  accountId: string;
  /**
   * Invokes a Lambda function. Rejections are invocation failures (their `name` becomes
   * `Lambda.<name>`); a function error is a resolved result with `functionError` set.
   */
  invokeLambda(
    functionArn: string,
    payload: unknown,
    opts: {
      timeoutMs?: number;
      invocationType?: string;
      qualifier?: string;
      /** The execution's role and name (the host authorizes the call as that role). */
      assumedRole?: { roleArn: string; session: string };
    },
  ): Promise<LambdaResult>;
  /**
   * Calls an AWS API: `service` as written in the resource ARN (`ec2`, `dynamodb`, `sns`, `events`,
   * `states`, …) and `action` in PascalCase (`DescribeInstances`). Rejections should carry the AWS
   * error code in `name` (or `code`) and optionally `$metadata.httpStatusCode`.
   */
  callAws(service: string, action: string, params: unknown): Promise<unknown>;
  /** Called after every execution status change (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED). */
  onStatusChange?(execution: ExecutionView): void;
}

export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED" | "PENDING_REDRIVE";

/** Read-only view of an execution, as DescribeExecution reports it. */
export interface ExecutionView {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  redriveCount: number;
  redriveDate?: Date;
  redriveStatus: "REDRIVABLE" | "NOT_REDRIVABLE";
  redriveStatusReason?: string;
}

/** One GetExecutionHistory event: `{timestamp, type, id, previousEventId, <type>EventDetails?}`. */
export interface HistoryEvent {
  timestamp: Date;
  type: string;
  id: number;
  previousEventId: number;
  [details: string]: unknown;
}

/** Where a branch of the run resumes on redrive: the state that did not complete, and how far it got. */
export interface Checkpoint {
  state: string;
  /** The state's input when it was entered. */
  input: unknown;
  /** Variables local to this scope when the state was entered. */
  vars: Record<string, unknown>;
  /** Progress inside a Parallel or Map state. */
  inner?: InnerCheckpoint;
}

/** One Parallel branch or Map iteration: finished with an output, or to be (re)run. */
export type BranchProgress = { done: true; output: unknown } | { done: false; checkpoint?: Checkpoint };

export type InnerCheckpoint =
  { kind: "parallel"; branches: BranchProgress[] } | { kind: "map"; items: unknown[]; iterations: BranchProgress[] };

/** Outcome of running a States graph. */
export type RunResult =
  | { status: "SUCCEEDED"; output: unknown }
  | { status: "FAILED"; error: string; cause: string; checkpoint: Checkpoint }
  | { status: "ABORTED"; reason: string; checkpoint: Checkpoint };
