/**
 * One Standard-workflow execution: its status, history, execution-level timeout, stop, and redrive
 * from the checkpoint of the states that did not complete.
 */
import { AbortedSignal } from "./errors.ts";
import { runGraph } from "./machine.ts";
import { Cancel, type ExecRuntime, type Frame, History, Scope, type TokenRegistry } from "./runtime.ts";
import type { Checkpoint, EngineDeps, ExecutionStatus, ExecutionView, StatesGraph } from "./types.ts";

/** Standard workflows: 25,000 history events per execution. */
export const HISTORY_LIMIT = 25_000;
/** Redrive window after the execution stopped. */
export const REDRIVE_WINDOW_MS = 14 * 24 * 3600 * 1000;
/** Maximum lifetime of a Standard execution. */
export const MAX_EXECUTION_MS = 365 * 24 * 3600 * 1000;

export interface ExecutionInit {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  definition: StatesGraph;
  /** The input as the caller sent it (a JSON string). */
  input: string;
  roleArn?: string;
  historyLimit?: number;
}

export interface ExecutionHooks {
  deps: EngineDeps;
  tokens: TokenRegistry;
  random(): number;
  startChild?: ExecRuntime["startChild"];
  awaitChild?: ExecRuntime["awaitChild"];
}

export class Execution implements ExecRuntime {
  readonly executionArn: string;
  readonly stateMachineArn: string;
  readonly name: string;
  readonly definition: StatesGraph;
  readonly input: string;
  readonly roleArn: string;
  readonly history: History;
  readonly deps: EngineDeps;
  readonly tokens: TokenRegistry;
  readonly startChild?: ExecRuntime["startChild"];
  readonly awaitChild?: ExecRuntime["awaitChild"];
  status: ExecutionStatus = "RUNNING";
  readonly startDate: Date;
  stopDate?: Date;
  output?: string;
  error?: string;
  cause?: string;
  redriveCount = 0;
  redriveDate?: Date;
  /** Where a redrive resumes: the top-level state that did not complete. */
  checkpoint?: Checkpoint;
  private cancel?: Cancel;
  private stopRequest?: { error?: string; cause?: string };
  private running?: Promise<void>;
  private waiters: ((v: ExecutionView) => void)[] = [];

  constructor(
    init: ExecutionInit,
    private readonly hooks: ExecutionHooks,
  ) {
    this.executionArn = init.executionArn;
    this.stateMachineArn = init.stateMachineArn;
    this.name = init.name;
    this.definition = init.definition;
    this.input = init.input;
    this.roleArn = init.roleArn ?? `arn:aws:iam::${hooks.deps.accountId}:role/kiln-local-states`;
    this.deps = hooks.deps;
    this.tokens = hooks.tokens;
    this.startChild = hooks.startChild;
    this.awaitChild = hooks.awaitChild;
    this.history = new History(hooks.deps.clock, init.historyLimit ?? HISTORY_LIMIT, () => this.cancel?.abort("history"));
    this.startDate = this.clock.date();
  }

  get clock() {
    return this.deps.clock;
  }

  random(): number {
    return this.hooks.random();
  }

  contextBase() {
    return {
      Execution: {
        Id: this.executionArn,
        Input: JSON.parse(this.input),
        Name: this.name,
        RoleArn: this.roleArn,
        StartTime: this.startDate.toISOString(),
        RedriveCount: this.redriveCount,
        ...(this.redriveDate ? { RedriveTime: this.redriveDate.toISOString() } : {}),
      },
      StateMachine: { Id: this.stateMachineArn, Name: this.stateMachineArn.split(":").pop() },
    };
  }

  /** Writes ExecutionStarted and runs from StartAt. */
  start(): void {
    const id = this.history.add("ExecutionStarted", {
      input: this.input,
      inputDetails: { truncated: false },
      roleArn: this.roleArn,
    });
    this.notify();
    this.drive(JSON.parse(this.input), undefined, id);
  }

  /** Resolves when the execution is next closed (after a redrive: when the redriven run closes). */
  whenDone(): Promise<ExecutionView> {
    if (this.status !== "RUNNING") return Promise.resolve(this.view());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** StopExecution: the running states are aborted, then ExecutionAborted is written. */
  async stop(error?: string, cause?: string): Promise<void> {
    if (this.status !== "RUNNING") return;
    this.stopRequest = { error, cause };
    this.cancel?.abort("stopped");
    await this.running;
  }

  /** Why this execution can or cannot be redriven now (DescribeExecution's redriveStatus). */
  redrivability(): { redriveStatus: "REDRIVABLE" | "NOT_REDRIVABLE"; redriveStatusReason?: string } {
    const no = (reason: string) => ({ redriveStatus: "NOT_REDRIVABLE" as const, redriveStatusReason: reason });
    if (this.status === "RUNNING") return no("Execution is RUNNING and cannot be redriven");
    if (this.status === "SUCCEEDED") return no("Execution is SUCCEEDED and cannot be redriven");
    const now = this.clock.now();
    if (this.history.events.length >= this.history.limit - 1) return no("Execution history event limit exceeded");
    if (now - this.startDate.getTime() > MAX_EXECUTION_MS) return no("Execution has exceeded the max execution time");
    if (this.stopDate && now - this.stopDate.getTime() > REDRIVE_WINDOW_MS) return no("Execution redrivable period exceeded");
    if (!this.checkpoint) return no("Execution has no unsuccessful state to redrive");
    return { redriveStatus: "REDRIVABLE" };
  }

  /**
   * RedriveExecution: same ARN, same definition and input; resumes at the checkpoint (re-running
   * only failed or stopped Map iterations and Parallel branches). Returns the redrive date.
   * The caller checks redrivability() first.
   */
  redrive(): Date {
    const checkpoint = this.checkpoint;
    if (!checkpoint) throw new Error("nothing to redrive");
    this.redriveCount++;
    this.redriveDate = this.clock.date();
    this.status = "RUNNING";
    this.stopDate = undefined;
    this.output = undefined;
    this.error = undefined;
    this.cause = undefined;
    this.stopRequest = undefined;
    this.history.rearm();
    const id = this.history.add("ExecutionRedriven", { redriveCount: this.redriveCount });
    this.notify();
    this.drive(undefined, checkpoint, id);
    return this.redriveDate;
  }

  view(): ExecutionView {
    return {
      executionArn: this.executionArn,
      stateMachineArn: this.stateMachineArn,
      name: this.name,
      status: this.status,
      startDate: this.startDate,
      stopDate: this.stopDate,
      input: this.input,
      output: this.output,
      error: this.error,
      cause: this.cause,
      redriveCount: this.redriveCount,
      redriveDate: this.redriveDate,
      ...this.redrivability(),
    };
  }

  private drive(input: unknown, resume: Checkpoint | undefined, lastEventId: number): void {
    const cancel = new Cancel();
    this.cancel = cancel;
    const frame: Frame = {
      rt: this,
      scope: new Scope(),
      cancel,
      cursor: { last: lastEventId },
      queryLanguage: this.definition.QueryLanguage ?? "JSONPath",
    };
    // The state-machine TimeoutSeconds restarts from zero on redrive (AWS redrive docs).
    const limit = this.definition.TimeoutSeconds;
    const timer = limit !== undefined ? this.clock.setTimeout(() => cancel.abort("timeout"), limit * 1000) : undefined;
    this.running = runGraph(this.definition, input, frame, resume).then(
      (r) => {
        this.clock.clearTimeout(timer);
        this.close(r, frame);
      },
      (err) => {
        // runGraph reports state failures as results; anything thrown here is an engine bug.
        this.clock.clearTimeout(timer);
        const reason = err instanceof AbortedSignal ? err.reason : undefined;
        this.close(
          reason
            ? { status: "ABORTED", reason, checkpoint: resume ?? { state: this.definition.StartAt, input, vars: {} } }
            : {
                status: "FAILED",
                error: "States.Runtime",
                cause: `Internal engine error: ${String(err)}`,
                checkpoint: resume ?? { state: this.definition.StartAt, input, vars: {} },
              },
          frame,
        );
      },
    );
  }

  private close(r: Awaited<ReturnType<typeof runGraph>>, frame: Frame): void {
    this.stopDate = this.clock.date();
    const cursor = frame.cursor;
    if (r.status === "SUCCEEDED") {
      this.status = "SUCCEEDED";
      this.output = JSON.stringify(r.output ?? null);
      this.checkpoint = undefined;
      this.history.add("ExecutionSucceeded", { output: this.output, outputDetails: { truncated: false } }, cursor);
    } else if (r.status === "FAILED") {
      this.status = "FAILED";
      this.error = r.error;
      this.cause = r.cause;
      this.checkpoint = r.checkpoint;
      this.history.add("ExecutionFailed", { error: r.error, cause: r.cause }, cursor);
    } else {
      this.checkpoint = r.checkpoint;
      if (r.reason === "timeout") {
        this.status = "TIMED_OUT";
        this.error = "States.Timeout";
        this.cause = undefined;
        this.history.add("ExecutionTimedOut", { error: this.error }, cursor);
      } else if (r.reason === "history") {
        this.status = "FAILED";
        this.error = "States.Runtime";
        this.cause = `The execution reached the maximum number of history events (${this.history.limit}).`;
        this.history.add("ExecutionFailed", { error: this.error, cause: this.cause }, cursor);
      } else {
        this.status = "ABORTED";
        this.error = this.stopRequest?.error;
        this.cause = this.stopRequest?.cause;
        this.history.add("ExecutionAborted", { error: this.error, cause: this.cause }, cursor);
      }
    }
    this.notify();
    const view = this.view();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(view);
  }

  private notify(): void {
    try {
      this.deps.onStatusChange?.(this.view());
    } catch {
      // An observer's failure must not break the execution.
    }
  }
}
