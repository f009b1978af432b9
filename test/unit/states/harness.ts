/**
 * Test harness: an Engine on a VirtualClock with fake Lambda functions and AWS calls.
 */
import { VirtualClock } from "../../../lib/clock.ts";
import { Engine, type EngineOptions } from "../../../local/states/engine/engine.ts";
import type { Execution } from "../../../local/states/engine/execution.ts";
import type { EngineDeps, ExecutionView, HistoryEvent, LambdaResult, StatesGraph } from "../../../local/states/engine/types.ts";

export type FakeFn = (payload: unknown, call: number) => unknown | Promise<unknown>;

/** An error a fake function throws: it becomes a Lambda function error with this errorType. */
export class FnError extends Error {
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Harness {
  clock: VirtualClock;
  engine: Engine;
  calls: { fn: string; payload: unknown; at: number }[];
  awsCalls: { service: string; action: string; params: unknown; at: number }[];
  statuses: string[];
  run(
    def: StatesGraph,
    input?: unknown,
    name?: string,
  ): Promise<{ exec: Execution; view: ExecutionView; events: HistoryEvent[] }>;
  start(def: StatesGraph, input?: unknown, name?: string): Execution;
}

export function lambdaArn(name: string): string {
  return `arn:aws:lambda:us-east-1:123456789012:function:${name}`;
}

export function harness(
  opts: {
    fns?: Record<string, FakeFn>;
    aws?: (service: string, action: string, params: unknown) => unknown | Promise<unknown>;
    engine?: EngineOptions;
    seed?: number;
  } = {},
): Harness {
  const clock = new VirtualClock();
  const calls: Harness["calls"] = [];
  const awsCalls: Harness["awsCalls"] = [];
  const statuses: string[] = [];
  const counts = new Map<string, number>();
  let s = opts.seed ?? 7;
  const deps: EngineDeps = {
    clock,
    random: () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648;
    },
    region: "us-east-1",
    accountId: "123456789012",
    async invokeLambda(arn, payload): Promise<LambdaResult> {
      const name = arn.split(":").length >= 7 ? arn.split(":")[6]! : arn;
      calls.push({ fn: name, payload, at: clock.now() });
      const fn = opts.fns?.[name];
      if (!fn) {
        const e = new Error(`Function not found: ${arn}`);
        e.name = "ResourceNotFoundException";
        throw e;
      }
      const n = (counts.get(name) ?? 0) + 1;
      counts.set(name, n);
      try {
        return { payload: await fn(payload, n), statusCode: 200, executedVersion: "$LATEST" };
      } catch (e) {
        if (e instanceof FnError)
          return { functionError: "Unhandled", payload: { errorType: e.errorType, errorMessage: e.message, trace: [] } };
        throw e;
      }
    },
    async callAws(service, action, params) {
      awsCalls.push({ service, action, params, at: clock.now() });
      if (!opts.aws) throw Object.assign(new Error("no fake aws"), { name: "UnknownOperationException" });
      return opts.aws(service, action, params);
    },
    onStatusChange: (v) => statuses.push(v.status),
  };
  const engine = new Engine(deps, opts.engine);
  let n = 0;
  const start = (def: StatesGraph, input: unknown = {}, name = `run-${++n}`) =>
    engine.start({
      executionArn: `arn:aws:states:us-east-1:123456789012:execution:test:${name}`,
      stateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:test",
      name,
      definition: def,
      input: JSON.stringify(input),
    });
  return {
    clock,
    engine,
    calls,
    awsCalls,
    statuses,
    start,
    async run(def, input = {}, name) {
      const exec = start(def, input, name);
      const view = await exec.whenDone();
      return { exec, view, events: exec.history.events };
    },
  };
}

/** The event types of a history, in order. */
export function types(events: HistoryEvent[]): string[] {
  return events.map((e) => e.type);
}

/** Output of a finished execution, parsed. */
export function output(view: ExecutionView): unknown {
  return view.output === undefined ? undefined : JSON.parse(view.output);
}

/** A one-state machine around a state definition. */
export function single(state: Record<string, unknown>, extra: Partial<StatesGraph> = {}): StatesGraph {
  return { StartAt: "S", States: { S: { End: true, ...state } as unknown as StatesGraph["States"][string] }, ...extra };
}
