/**
 * The local Step Functions engine: starts executions of ASL definitions and routes task-token
 * callbacks to them. All time is the injected clock's; all randomness the injected source's.
 */
import { Execution, type ExecutionInit } from "./execution.ts";
import { type ExecRuntime, TokenError, TokenRegistry } from "./runtime.ts";
import type { EngineDeps } from "./types.ts";

export interface EngineOptions {
  /** History events per execution before it fails (25,000 on AWS; lower it in tests). */
  historyLimit?: number;
  /** Child executions for `states:startExecution` (the API layer provides these). */
  startChild?: ExecRuntime["startChild"];
  awaitChild?: ExecRuntime["awaitChild"];
}

export class Engine {
  readonly tokens = new TokenRegistry();
  private rng: number;

  constructor(
    readonly deps: EngineDeps,
    readonly options: EngineOptions = {},
  ) {
    this.rng = 0x9e3779b9;
  }

  /** The injected random source, or a fixed-seed one (mulberry32) so runs are reproducible. */
  random(): number {
    if (this.deps.random) return this.deps.random();
    this.rng = (this.rng + 0x6d2b79f5) >>> 0;
    let t = this.rng;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Creates and starts an execution (ExecutionStarted is written before this returns). */
  start(init: ExecutionInit): Execution {
    const exec = new Execution(
      { historyLimit: this.options.historyLimit, ...init },
      {
        deps: this.deps,
        tokens: this.tokens,
        random: () => this.random(),
        startChild: this.options.startChild,
        awaitChild: this.options.awaitChild,
      },
    );
    exec.start();
    return exec;
  }

  /** SendTaskSuccess: `output` is the JSON text the caller sent. */
  sendTaskSuccess(token: string, output: string): void {
    const w = this.tokens.lookup(token);
    let value: unknown;
    try {
      value = JSON.parse(output);
    } catch {
      throw new TokenError("InvalidOutput", `Invalid Output: '${output}'`);
    }
    w.success(value);
  }

  sendTaskFailure(token: string, error = "", cause = ""): void {
    this.tokens.lookup(token).failure(error, cause);
  }

  /** Resets the task's HeartbeatSeconds clock; writes no history event. */
  sendTaskHeartbeat(token: string): void {
    this.tokens.lookup(token).heartbeat();
  }
}
