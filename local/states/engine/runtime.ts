/**
 * Per-execution runtime pieces: cancellation, variable scopes, the event history and task tokens.
 */
import type { Clock, TimerHandle } from "../../../lib/clock.ts";
import { AbortedSignal } from "./errors.ts";
import type { EngineDeps, ExecutionView, HistoryEvent, QueryLanguage } from "./types.ts";

type AbortReason = AbortedSignal["reason"];

/**
 * Cancellation shared by every await of a branch: the execution's root, and one child per Parallel
 * branch / Map iteration (so a failing branch can stop its siblings without stopping the run).
 */
export class Cancel {
  reason?: AbortReason;
  private readonly listeners = new Set<(r: AbortReason) => void>();
  private readonly detach?: () => void;

  constructor(parent?: Cancel) {
    if (parent) {
      if (parent.reason) this.reason = parent.reason;
      else this.detach = parent.onAbort((r) => this.abort(r));
    }
  }

  get aborted(): boolean {
    return this.reason !== undefined;
  }

  abort(reason: AbortReason): void {
    if (this.reason) return;
    this.reason = reason;
    for (const l of [...this.listeners]) l(reason);
    this.listeners.clear();
  }

  onAbort(fn: (r: AbortReason) => void): () => void {
    if (this.reason) {
      fn(this.reason);
      return () => {};
    }
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Stops listening to the parent (call when the branch is over). */
  dispose(): void {
    this.detach?.();
  }

  throwIfAborted(): void {
    if (this.reason) throw new AbortedSignal(this.reason);
  }

  /** Resolves or rejects like `p`, unless the branch is aborted first. */
  race<T>(p: Promise<T>): Promise<T> {
    this.throwIfAborted();
    return new Promise<T>((resolve, reject) => {
      const off = this.onAbort((r) => reject(new AbortedSignal(r)));
      p.then(
        (v) => {
          off();
          resolve(v);
        },
        (e) => {
          off();
          reject(e);
        },
      );
    });
  }

  /** Sleeps `ms` on the clock; an abort clears the timer and rejects. */
  sleep(clock: Clock, ms: number): Promise<void> {
    this.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      let handle: TimerHandle | undefined = undefined;
      const off = this.onAbort((r) => {
        clock.clearTimeout(handle);
        reject(new AbortedSignal(r));
      });
      handle = clock.setTimeout(() => {
        off();
        resolve();
      }, ms);
    });
  }
}

/**
 * Workflow variables. Each Parallel branch and Map iteration gets a child scope: it reads the outer
 * variables, and its own `Assign`s stay local to it (ASL: inner scopes cannot assign outer variables).
 */
export class Scope {
  private readonly local = new Map<string, unknown>();
  constructor(readonly parent?: Scope) {}

  get(name: string): { found: boolean; value?: unknown } {
    if (this.local.has(name)) return { found: true, value: this.local.get(name) };
    return this.parent ? this.parent.get(name) : { found: false };
  }

  /** Every visible variable, inner names shadowing outer ones (JSONata bindings). */
  all(): Record<string, unknown> {
    return { ...(this.parent?.all() ?? {}), ...Object.fromEntries(this.local) };
  }

  assign(values: Record<string, unknown>): void {
    for (const [k, v] of Object.entries(values)) this.local.set(k, v);
  }

  snapshot(): Record<string, unknown> {
    return structuredClone(Object.fromEntries(this.local));
  }

  restore(values: Record<string, unknown>): void {
    this.local.clear();
    this.assign(structuredClone(values));
  }
}

/** The link from one event to the event that caused it (`previousEventId`), per branch of the run. */
export interface Cursor {
  last: number;
}

/** Execution event history with AWS ids, `previousEventId`, and the history-size limit. */
export class History {
  readonly events: HistoryEvent[] = [];
  private limitHit = false;
  /** Set by the terminal event: nothing that happens later belongs in this run's history. */
  private closed = false;

  constructor(
    private readonly clock: Clock,
    /** Standard workflows: 25,000 events per execution. */
    readonly limit: number,
    private readonly onLimit: () => void,
  ) {}

  /**
   * Appends an event and moves the cursor to it. When the next event would reach the limit, the
   * execution is failed instead (the failure is the last event): AbortedSignal("history") is thrown
   * and later non-terminal events are dropped.
   */
  add(type: string, details?: Record<string, unknown>, cursor?: Cursor): number {
    const terminal = /^Execution(Succeeded|Failed|Aborted|TimedOut)$/.test(type);
    if (this.closed) return -1;
    if (terminal) this.closed = true;
    if (!terminal && this.events.length >= this.limit - 1) {
      if (this.limitHit) return -1;
      this.limitHit = true;
      this.onLimit();
      throw new AbortedSignal("history");
    }
    const id = this.events.length + 1;
    const ev: HistoryEvent = { timestamp: this.clock.date(), type, id, previousEventId: cursor?.last ?? id - 1 };
    if (details) ev[detailsKey(type)] = dropUndefined(details);
    this.events.push(ev);
    if (cursor) cursor.last = id;
    return id;
  }

  /** Re-arms the limit check (a redrive may add events again if under the limit). */
  rearm(): void {
    this.limitHit = false;
    this.closed = false;
  }
}

/** The `<type>EventDetails` member name of a history event. */
export function detailsKey(type: string): string {
  if (type.endsWith("StateEntered")) return "stateEnteredEventDetails";
  if (type.endsWith("StateExited")) return "stateExitedEventDetails";
  return `${type.charAt(0).toLowerCase()}${type.slice(1)}EventDetails`;
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** What a waiting callback task does when SendTask* reaches it. */
export interface TokenWaiter {
  executionArn: string;
  success(output: unknown): void;
  failure(error: string, cause: string): void;
  heartbeat(): void;
}

/** Failure of SendTaskSuccess/Failure/Heartbeat, with the Step Functions error code. */
export class TokenError extends Error {
  constructor(
    readonly code: "InvalidToken" | "TaskTimedOut" | "TaskDoesNotExist" | "InvalidOutput",
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

/** Every task token the engine issued: open ones resolve their task, closed ones answer TaskTimedOut. */
export class TokenRegistry {
  private readonly open = new Map<string, TokenWaiter>();
  private readonly closed = new Set<string>();
  static readonly PREFIX = "AQB";

  issue(random: () => number, waiter: TokenWaiter): string {
    let body = "";
    while (body.length < 340) body += Math.floor(random() * 64).toString(36);
    const token = `${TokenRegistry.PREFIX}${Buffer.from(body).toString("base64url").slice(0, 340)}`;
    this.open.set(token, waiter);
    return token;
  }

  close(token: string): void {
    if (this.open.delete(token)) this.closed.add(token);
  }

  /** The waiter for a token, or the error Step Functions answers. */
  lookup(token: string): TokenWaiter {
    const w = this.open.get(token);
    if (w) return w;
    if (this.closed.has(token)) throw new TokenError("TaskTimedOut", "Task Timed Out: 'Provided task does not exist anymore'");
    if (!token.startsWith(TokenRegistry.PREFIX) || token.length < 100)
      throw new TokenError("InvalidToken", "Invalid Token: 'Invalid token'");
    throw new TokenError("TaskDoesNotExist", "Task Does Not Exist: 'Provided task does not exist'");
  }
}

/** Everything shared by the states of one execution. */
export interface ExecRuntime {
  readonly deps: EngineDeps;
  readonly clock: Clock;
  readonly history: History;
  readonly tokens: TokenRegistry;
  readonly executionArn: string;
  /** The state machine's role, which the execution assumes for its integrations. */
  readonly roleArn: string;
  random(): number;
  /** `$$.Execution` and `$$.StateMachine` of the context object. */
  contextBase(): { Execution: Record<string, unknown>; StateMachine: Record<string, unknown> };
  /** Starts a child execution (`states:startExecution` integrations) when the host can. */
  startChild?(params: Record<string, unknown>): Promise<{ executionArn: string; startDate: Date }>;
  /** Resolves when a child execution closes, with its DescribeExecution view. */
  awaitChild?(executionArn: string): Promise<ExecutionView>;
}

/** One thread of the run: a top-level run, a Parallel branch, or a Map iteration. */
export interface Frame {
  readonly rt: ExecRuntime;
  readonly scope: Scope;
  readonly cancel: Cancel;
  readonly cursor: Cursor;
  readonly queryLanguage: QueryLanguage;
}
