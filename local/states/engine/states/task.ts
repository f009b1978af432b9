/**
 * Task: runs one unit of work through an integration (Lambda, an optimised service integration,
 * `aws-sdk:*`, a child execution), with the request-response, `.waitForTaskToken` and `.sync`
 * patterns, TimeoutSeconds and HeartbeatSeconds on the execution's clock, and the history events
 * Step Functions writes for each (Task* for service integrations, LambdaFunction* for the legacy
 * function-ARN form).
 */
import { AbortedSignal, HeartbeatTimeoutError, RuntimeError, StatesError, TimeoutError, asStatesError } from "../errors.ts";
import { type StateImpl, toJson } from "../executor.ts";
import {
  awsCallError,
  childInput,
  invokeLambda,
  lambdaInvokeOutput,
  type ParsedResource,
  parseResource,
  pascal,
  sdkOutput,
} from "../integrations.ts";
import { seededUuid } from "../intrinsics.ts";
import { applyInputPath, applyOutputPath, applyPayloadTemplate, applyResultPath, applyResultSelector } from "../io.ts";
import { PathNotFound, queryPath } from "../jsonpath.ts";
import { evaluateRequired, evaluateTemplate } from "../jsonata.ts";
import type { ExecRuntime, Frame } from "../runtime.ts";
import type { ExecutionView } from "../types.ts";
import { assignJsonPath, assignJsonata, nextOf } from "./common.ts";

/** ASL default when a Task has no TimeoutSeconds. */
const DEFAULT_TIMEOUT_SECONDS = 99_999_999;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

export const taskState: StateImpl = async (run) => {
  const { def, input, frame } = run;
  const rt = frame.rt;
  const res = parseResource(String(def.Resource));
  if (res.kind === "activity") throw new RuntimeError(`Activities are not supported by the local engine (${res.arn})`);

  // A callback task gets its token before its parameters are built: they usually pass $$.Task.Token.
  const callback = res.kind === "service" && res.pattern === "waitForTaskToken";
  const cb = deferred<unknown>();
  let onHeartbeat = () => {};
  const token = callback
    ? rt.tokens.issue(() => rt.random(), {
        executionArn: rt.executionArn,
        success: (out) => cb.resolve(out),
        failure: (error, cause) => cb.reject(new StatesError(error, cause)),
        heartbeat: () => onHeartbeat(),
      })
    : undefined;
  const taskCtx = token ? { Task: { Token: token } } : undefined;

  try {
    let params: unknown;
    let timeoutSeconds: unknown;
    let heartbeatSeconds: unknown;
    let effective = input;
    if (run.ql === "JSONata") {
      const env = run.jsonata({}, taskCtx);
      params =
        def.Arguments !== undefined
          ? await evaluateRequired(def.Arguments, env, "Arguments")
          : res.kind === "lambda-function"
            ? input
            : {};
      timeoutSeconds = await evaluateTemplate(def.TimeoutSeconds, env);
      heartbeatSeconds = await evaluateTemplate(def.HeartbeatSeconds, env);
    } else {
      const refs = run.refs(taskCtx);
      effective = applyInputPath(input, def.InputPath, refs);
      params =
        def.Parameters !== undefined
          ? applyPayloadTemplate(def.Parameters, effective, { refs, random: () => rt.random() })
          : effective;
      const read = (p: string) => {
        try {
          return queryPath(p, effective, refs);
        } catch (e) {
          if (e instanceof PathNotFound) throw new RuntimeError(`Invalid path '${p}' : No results for path: ${p}`);
          throw e;
        }
      };
      timeoutSeconds = def.TimeoutSecondsPath !== undefined ? read(def.TimeoutSecondsPath) : def.TimeoutSeconds;
      heartbeatSeconds = def.HeartbeatSecondsPath !== undefined ? read(def.HeartbeatSecondsPath) : def.HeartbeatSeconds;
    }
    const timeout = positiveInt(timeoutSeconds, "TimeoutSeconds");
    const heartbeat = positiveInt(heartbeatSeconds, "HeartbeatSeconds");

    const raw = await runIntegration(
      run.emit,
      frame,
      res,
      params,
      timeout,
      heartbeat,
      () => run.awaitOutside(cb.promise),
      (fn) => {
        onHeartbeat = fn;
      },
    );

    if (run.ql === "JSONata") {
      const env = run.jsonata({ result: raw }, taskCtx);
      const output = def.Output === undefined ? raw : await evaluateRequired(def.Output, env, "Output");
      return { output, next: nextOf(def), assign: await assignJsonata(def.Assign, env) };
    }
    const refs = run.refs(taskCtx);
    const result = applyResultSelector(raw, def.ResultSelector, { refs, random: () => rt.random() });
    const assign = assignJsonPath(run, def.Assign, result);
    const output = applyOutputPath(applyResultPath(input, result, def.ResultPath), def.OutputPath, refs);
    return { output, next: nextOf(def), assign };
  } finally {
    if (token) rt.tokens.close(token);
  }
};

function positiveInt(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
    throw new RuntimeError(`The ${field} of a Task must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Schedules the work, races it against TimeoutSeconds, HeartbeatSeconds (callbacks) and the
 * branch's cancellation, and writes the task's history events.
 */
async function runIntegration(
  emit: (type: string, details?: Record<string, unknown>) => number,
  frame: Frame,
  res: Exclude<ParsedResource, { kind: "activity" }>,
  params: unknown,
  timeout: number | undefined,
  heartbeat: number | undefined,
  callback: () => Promise<unknown>,
  setHeartbeat: (fn: () => void) => void,
): Promise<unknown> {
  const rt = frame.rt;
  const clock = rt.clock;
  const legacy = res.kind === "lambda-function";
  const ids = { resourceType: res.resourceType, resource: res.resource };
  if (legacy) {
    emit("LambdaFunctionScheduled", {
      resource: res.functionArn,
      input: toJson(params),
      inputDetails: { truncated: false },
      timeoutInSeconds: timeout,
    });
    emit("LambdaFunctionStarted");
  } else {
    emit("TaskScheduled", {
      ...ids,
      region: rt.deps.region,
      parameters: toJson(params),
      timeoutInSeconds: timeout,
      heartbeatInSeconds: heartbeat,
    });
    emit("TaskStarted", ids);
  }

  // Once the task has closed (timed out, stopped), late results of its work write nothing: history
  // events stay in causal order (no TaskSubmitted after the task failed or the execution ended).
  let closed = false;
  const submitted = (out: unknown) => {
    if (!closed) emit("TaskSubmitted", { ...ids, output: toJson(out), outputDetails: { truncated: false } });
  };

  const work = async (): Promise<unknown> => {
    if (res.kind === "lambda-function") {
      const r = await invokeLambda(rt, res.functionArn, params, { timeoutMs: timeout ? timeout * 1000 : undefined });
      return r.payload;
    }
    if (res.service === "lambda" && !res.sdk && res.action === "invoke") {
      const p = (params ?? {}) as { FunctionName?: string; Payload?: unknown; Qualifier?: string; InvocationType?: string };
      if (typeof p.FunctionName !== "string")
        throw new StatesError("States.Runtime", "The lambda:invoke integration needs a FunctionName parameter");
      const r = await invokeLambda(rt, p.FunctionName, p.Payload, {
        timeoutMs: timeout ? timeout * 1000 : undefined,
        invocationType: p.InvocationType,
        qualifier: p.Qualifier,
      });
      const out = lambdaInvokeOutput(r, r.requestId ?? seededUuid(() => rt.random()));
      if (res.pattern === "waitForTaskToken") {
        submitted(out);
        return callback();
      }
      return out;
    }
    if (res.service === "states" && !res.sdk && res.action === "startExecution")
      return startChild(rt, res.pattern, params, submitted, callback);
    let out: unknown;
    try {
      out = sdkOutput(await rt.deps.callAws(res.service, pascal(res.action), params ?? {}));
    } catch (err) {
      throw awsCallError(res.service, res.sdk, err);
    }
    if (res.pattern === "waitForTaskToken") {
      submitted(out);
      return callback();
    }
    if (res.pattern !== "request-response")
      throw new RuntimeError(`The .${res.pattern} pattern is not supported for ${res.resourceType}:${res.action}`);
    return out;
  };

  const timeoutMs = (timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
  frame.cancel.throwIfAborted();
  const raw = await new Promise<unknown>((resolve, reject) => {
    let done = false;
    let off = () => {};
    let hb: ReturnType<typeof clock.setTimeout> | undefined;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      closed = true;
      clock.clearTimeout(timer);
      clock.clearTimeout(hb);
      off();
      fn();
    };
    // Without TimeoutSeconds the ASL default (99999999 s) is effectively "never": no timer is armed,
    // so a virtual clock never jumps years ahead while an integration does real I/O.
    // A callback task's deadlines end a wait on an outside caller (see Clock TimerOptions).
    const callbackTask = res.kind === "service" && res.pattern === "waitForTaskToken";
    const timer =
      timeout !== undefined
        ? clock.setTimeout(() => finish(() => reject(new TimeoutError())), timeoutMs, { awaitsOutside: callbackTask })
        : undefined;
    if (heartbeat && callbackTask) {
      const arm = () => {
        clock.clearTimeout(hb);
        hb = clock.setTimeout(() => finish(() => reject(new HeartbeatTimeoutError())), heartbeat * 1000, { awaitsOutside: true });
      };
      setHeartbeat(arm);
      arm();
    }
    off = frame.cancel.onAbort((r) => finish(() => reject(new AbortedSignal(r))));
    work().then(
      (v) => finish(() => resolve(v)),
      (e) => finish(() => reject(e)),
    );
  }).catch((e) => {
    if (e instanceof AbortedSignal) throw e;
    const err = asStatesError(e);
    const timedOut = err.error === "States.Timeout" || err.error === "States.HeartbeatTimeout";
    const details = { error: err.error, cause: err.causeText || undefined };
    if (legacy) emit(timedOut ? "LambdaFunctionTimedOut" : "LambdaFunctionFailed", details);
    else emit(timedOut ? "TaskTimedOut" : "TaskFailed", { ...ids, ...details });
    throw err;
  });

  if (legacy) emit("LambdaFunctionSucceeded", { output: toJson(raw), outputDetails: { truncated: false } });
  else emit("TaskSucceeded", { ...ids, output: toJson(raw), outputDetails: { truncated: false } });
  return raw;
}

/** `states:startExecution` (request-response, `.sync` returning strings, `.sync:2` returning JSON). */
async function startChild(
  rt: ExecRuntime,
  pattern: string,
  params: unknown,
  submitted: (out: unknown) => void,
  callback: () => Promise<unknown>,
): Promise<unknown> {
  const p = { ...((params ?? {}) as Record<string, unknown>) };
  p.Input = childInput(p.Input);
  let started: { executionArn: string; startDate: Date };
  try {
    if (rt.startChild) started = await rt.startChild(p);
    else {
      if (pattern === "sync" || pattern === "sync:2")
        throw new RuntimeError("states:startExecution.sync needs a host that can run child executions");
      const out = (await rt.deps.callAws("states", "StartExecution", p)) as {
        executionArn?: string;
        ExecutionArn?: string;
        startDate?: Date;
        StartDate?: Date;
      };
      started = {
        executionArn: String(out.executionArn ?? out.ExecutionArn),
        startDate: new Date(out.startDate ?? out.StartDate ?? rt.clock.now()),
      };
    }
  } catch (err) {
    throw awsCallError("states", false, err);
  }
  const first = { ExecutionArn: started.executionArn, StartDate: started.startDate.getTime() };
  if (pattern === "request-response") return first;
  submitted(first);
  if (pattern === "waitForTaskToken") return callback();
  if (!rt.awaitChild) throw new RuntimeError("states:startExecution.sync needs a host that can await child executions");
  const view = await rt.awaitChild(started.executionArn);
  const out = syncOutput(view, pattern === "sync:2");
  if (view.status !== "SUCCEEDED") throw new StatesError("States.TaskFailed", JSON.stringify(out));
  return out;
}

/** The `.sync` result: DescribeExecution in PascalCase; `.sync:2` parses Input and Output as JSON. */
function syncOutput(v: ExecutionView, parse: boolean): Record<string, unknown> {
  const j = (s: string | undefined) => (s === undefined ? undefined : parse ? JSON.parse(s) : s);
  const out: Record<string, unknown> = {
    ExecutionArn: v.executionArn,
    Input: j(v.input),
    InputDetails: { Included: true },
    Name: v.name,
    Output: j(v.output),
    OutputDetails: { Included: true },
    RedriveCount: v.redriveCount,
    RedriveStatus: v.redriveStatus,
    StartDate: v.startDate.getTime(),
    StateMachineArn: v.stateMachineArn,
    Status: v.status,
    StopDate: v.stopDate?.getTime(),
    Error: v.error,
    Cause: v.cause,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}
