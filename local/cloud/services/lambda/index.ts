/**
 * Simulated AWS Lambda: an in-process function registry behind the Lambda REST API
 * (`POST /2015-03-31/functions/{FunctionName}/invocations`, GetFunction, GetFunctionConfiguration,
 * ListFunctions).
 *
 * Handlers are plain async functions (`(event, context) => result`, e.g. a middy handler) that run in
 * this process on the cloud's clock. What Lambda does around them is reproduced: the payload
 * round-trips through JSON, the context carries the request id and a deadline, the function times
 * out after `timeoutSeconds` of cloud time (`Sandbox.Timedout`), a thrown error comes back as a
 * function error `{errorType, errorMessage, trace}` with `X-Amz-Function-Error: Unhandled`, and
 * asynchronous (`Event`) invocations are queued and retried twice on function errors.
 *
 * Faults `{kind:"lambda", function:<name>, mode:"crash-before"|"crash-after"|"timeout", times?}`:
 * - `crash-before` (alias `crash`): the runtime dies before the handler runs → `Runtime.ExitError`;
 * - `crash-after`: the handler runs to the end (its side effects happen), then the runtime dies
 *   before the response is returned → `Runtime.ExitError`;
 * - `timeout`: the handler runs (side effects happen) but the invocation is reported as timed out
 *   once `timeoutSeconds` of cloud time have passed → `Sandbox.Timedout`.
 *
 * On a scaled clock (`npm start`'s 60×) the handler's own time is this machine's real work — SDK
 * round trips, dynalite, CPU — which AWS would bill in the same real milliseconds. Scaling it would
 * turn 300 ms of a busy laptop into a 30 s timeout, so there the timeout counts real milliseconds
 * (`timeoutSeconds` of wall time, `timeoutSeconds × factor` of cloud time).
 */
import type { Context } from "aws-lambda";
import { type Backend, type Cloud, invocationScope } from "../../cloud.ts";
import { clockScale } from "../../../../lib/clock.ts";
import { AwsError } from "../../protocol/errors.ts";
import type { RequestContext, ServiceDefinition } from "../../protocol/types.ts";

/** A Lambda handler as deployed (a middy handler fits: extra parameters are ignored). */
// `any`: events and results are whatever the function takes
export type LambdaHandler = (event: any, context: Context, ...rest: any[]) => unknown;

export interface LambdaFunctionSpec {
  name: string;
  handler: LambdaHandler;
  /** AWS default 3 s; maximum 900 s. */
  timeoutSeconds?: number;
  /** AWS default 128 MB. */
  memorySize?: number;
  /**
   * Function environment. Functions share this process's `process.env`: the variables are written
   * into it synchronously just before each invocation of this function, so read them at invocation
   * time (as `lib/env.ts` does), not at import time.
   */
  environment?: Record<string, string>;
  description?: string;
  /** Handler string shown by GetFunction (`functions/bake.handler`); informational. */
  handlerName?: string;
  runtime?: string;
}

export type InvocationType = "RequestResponse" | "Event" | "DryRun";

export interface InvokeOptions {
  type?: InvocationType;
  /** `Tail` returns the last 4 KB of the log, base64, as `X-Amz-Log-Result` does. */
  logType?: "None" | "Tail";
  /** Base64 JSON client context (`X-Amz-Client-Context`). */
  clientContext?: string;
  /** Only `$LATEST` exists here. */
  qualifier?: string;
}

/** What an invocation returns, as the Invoke API carries it. */
export interface InvokeResult {
  /** 200 RequestResponse, 202 Event, 204 DryRun. */
  statusCode: 200 | 202 | 204;
  requestId: string;
  executedVersion: string;
  /** The response payload: JSON text (empty for Event and DryRun). */
  payload: string;
  /** Present when the function failed: `Unhandled` (errors, timeouts, crashes). */
  functionError?: "Unhandled";
  /** Base64 tail of the log when `logType` is `Tail`. */
  logResult?: string;
}

export type InvocationOutcome = "success" | "error" | "timeout" | "crash";

/** One finished (or running) invocation, kept for inspection. */
export interface InvocationRecord {
  requestId: string;
  functionName: string;
  type: InvocationType;
  /** 1-based attempt (async retries). */
  attempt: number;
  start: string;
  end?: string;
  durationMs?: number;
  outcome?: InvocationOutcome;
  errorType?: string;
  errorMessage?: string;
  /** START / END / REPORT lines and the error line, as the Lambda log stream has them. */
  log: string[];
}

interface FunctionEntry {
  spec: Required<Pick<LambdaFunctionSpec, "name" | "handler" | "timeoutSeconds" | "memorySize">> & LambdaFunctionSpec;
  arn: string;
  lastModified: string;
  codeSha256: string;
}

/** Maximum synchronous request/response payload (6 MB) and asynchronous request payload (256 KB). */
const SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024;
const ASYNC_PAYLOAD_LIMIT = 256 * 1024;

export class LambdaBackend implements Backend {
  readonly definition: ServiceDefinition;
  private readonly functions = new Map<string, FunctionEntry>();
  private readonly records: InvocationRecord[] = [];
  private readonly timers = new Set<ReturnType<Cloud["clock"]["setTimeout"]>>();
  private stopped = false;

  constructor(private readonly cloud: Cloud) {
    this.definition = lambdaDefinition(this);
  }

  /** Registers (or replaces) a function and returns its ARN. */
  registerFunction(spec: LambdaFunctionSpec): string {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(spec.name)) throw new Error(`invalid Lambda function name ${JSON.stringify(spec.name)}`);
    const timeoutSeconds = spec.timeoutSeconds ?? 3;
    if (!(timeoutSeconds >= 1 && timeoutSeconds <= 900))
      throw new Error(`Lambda timeout must be 1..900 s, got ${timeoutSeconds}`);
    const arn = this.functionArn(spec.name);
    this.functions.set(spec.name, {
      spec: { ...spec, timeoutSeconds, memorySize: spec.memorySize ?? 128 },
      arn,
      lastModified: lambdaTimestamp(this.cloud.clock.now()),
      codeSha256: Buffer.from(this.cloud.hex(64), "hex").toString("base64"),
    });
    return arn;
  }

  removeFunction(name: string): boolean {
    return this.functions.delete(name);
  }

  functionArn(name: string): string {
    return `arn:aws:lambda:${this.cloud.region}:${this.cloud.accountId}:function:${name}`;
  }

  /** Registered function names. */
  functionNames(): string[] {
    return [...this.functions.keys()];
  }

  /** Invokes with a JS value as payload (it is serialised to JSON, as the SDK would). */
  invoke(nameOrArn: string, payload: unknown, opts: InvokeOptions = {}): Promise<InvokeResult> {
    const text = payload === undefined ? "" : JSON.stringify(payload);
    return this.invokeRaw(nameOrArn, Buffer.from(text, "utf8"), opts);
  }

  /** Invokes with the raw request body (JSON bytes), as the Invoke API receives it. */
  async invokeRaw(nameOrArn: string, body: Buffer, opts: InvokeOptions = {}): Promise<InvokeResult> {
    const type = opts.type ?? "RequestResponse";
    if (type !== "RequestResponse" && type !== "Event" && type !== "DryRun") {
      throw new AwsError(
        "InvalidParameterValueException",
        `1 validation error detected: Value '${type}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]`,
      );
    }
    const fn = this.resolve(nameOrArn, opts.qualifier);
    const limit = type === "Event" ? ASYNC_PAYLOAD_LIMIT : SYNC_PAYLOAD_LIMIT;
    if (body.length > limit) {
      const message =
        type === "Event"
          ? `Request must be smaller than ${ASYNC_PAYLOAD_LIMIT} bytes for the InvokeAsync operation`
          : `Request must be smaller than ${SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction operation`;
      throw new AwsError("RequestTooLargeException", message, 413);
    }
    // Lambda parses the request payload before running anything: invalid JSON is a 400, not a function error.
    // An empty request payload reaches the Node.js runtime as `{}`.
    let event: unknown = {};
    const text = body.toString("utf8");
    if (text.trim() !== "") {
      try {
        event = JSON.parse(text);
      } catch (err) {
        throw new AwsError("InvalidRequestContentException", `Could not parse request body into json: ${(err as Error).message}`);
      }
    }
    const requestId = uuid(this.cloud);
    if (type === "DryRun") return { statusCode: 204, requestId, executedVersion: "$LATEST", payload: "" };
    if (type === "Event") {
      this.queueAsync(fn, event, requestId, 1, opts.clientContext);
      return { statusCode: 202, requestId, executedVersion: "$LATEST", payload: "" };
    }
    const run = await this.run(fn, event, requestId, "RequestResponse", 1, opts.clientContext);
    return {
      statusCode: 200,
      requestId,
      executedVersion: "$LATEST",
      payload: run.payload,
      ...(run.outcome === "success" ? {} : { functionError: "Unhandled" as const }),
      ...(opts.logType === "Tail" ? { logResult: Buffer.from(run.record.log.join("\n").slice(-4096)).toString("base64") } : {}),
    };
  }

  /** Recent invocations, oldest first. */
  invocations(functionName?: string): InvocationRecord[] {
    return functionName ? this.records.filter((r) => r.functionName === functionName) : [...this.records];
  }

  snapshot(): unknown {
    return {
      functions: [...this.functions.values()].map((f) => ({
        name: f.spec.name,
        arn: f.arn,
        timeoutSeconds: f.spec.timeoutSeconds,
        memorySize: f.spec.memorySize,
        environment: Object.keys(f.spec.environment ?? {}),
      })),
      invocations: this.records.slice(-50),
    };
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) this.cloud.clock.clearTimeout(t);
    this.timers.clear();
  }

  /** GetFunction / GetFunctionConfiguration shape. */
  configuration(nameOrArn: string, qualifier?: string): Record<string, unknown> {
    const f = this.resolve(nameOrArn, qualifier);
    return {
      FunctionName: f.spec.name,
      FunctionArn: f.arn,
      Runtime: f.spec.runtime ?? "nodejs20.x",
      Role: `arn:aws:iam::${this.cloud.accountId}:role/${f.spec.name}-role`,
      Handler: f.spec.handlerName ?? "index.handler",
      CodeSize: 0,
      Description: f.spec.description ?? "",
      Timeout: f.spec.timeoutSeconds,
      MemorySize: f.spec.memorySize,
      LastModified: f.lastModified,
      CodeSha256: f.codeSha256,
      Version: "$LATEST",
      ...(f.spec.environment ? { Environment: { Variables: { ...f.spec.environment } } } : {}),
      TracingConfig: { Mode: "PassThrough" },
      State: "Active",
      LastUpdateStatus: "Successful",
      PackageType: "Zip",
      Architectures: ["x86_64"],
      EphemeralStorage: { Size: 512 },
    };
  }

  /**
   * Finds a function by name, full ARN (`arn:aws:lambda:…:function:name[:qualifier]`) or partial
   * ARN (`123456789012:function:name`). Only the `$LATEST` qualifier exists here.
   */
  private resolve(nameOrArn: string, qualifier?: string): FunctionEntry {
    const m =
      /^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?([A-Za-z0-9_-]+)(?::([A-Za-z0-9$_-]+))?$/.exec(
        nameOrArn,
      );
    const name = m?.[1];
    const q = qualifier ?? m?.[2];
    const f = name ? this.functions.get(name) : undefined;
    if (!f || (q !== undefined && q !== "$LATEST")) {
      const shown = name ? `${this.functionArn(name)}${q && q !== "$LATEST" ? `:${q}` : ""}` : nameOrArn;
      throw new AwsError("ResourceNotFoundException", `Function not found: ${shown}`, 404);
    }
    return f;
  }

  private queueAsync(fn: FunctionEntry, event: unknown, requestId: string, attempt: number, clientContext?: string): void {
    if (this.stopped) return;
    // Lambda's internal queue hands async events to the function shortly after the 202; function
    // errors are retried twice, one minute and then two minutes apart (AWS docs, "asynchronous invocation").
    const retries = Number(this.cloud.setting("lambda.asyncRetries", 2));
    const delay =
      attempt === 1
        ? Number(this.cloud.setting("lambda.asyncDelayMs", 100))
        : Number(this.cloud.setting("lambda.asyncRetryDelayMs", 60_000)) * 2 ** (attempt - 2);
    const timer = this.cloud.clock.setTimeout(() => {
      this.timers.delete(timer);
      if (this.stopped) return;
      void this.run(fn, event, requestId, "Event", attempt, clientContext).then((r) => {
        if (r.outcome !== "success" && attempt <= retries) this.queueAsync(fn, event, requestId, attempt + 1, clientContext);
      });
    }, delay);
    this.timers.add(timer);
  }

  private async run(
    fn: FunctionEntry,
    event: unknown,
    requestId: string,
    type: InvocationType,
    attempt: number,
    clientContext?: string,
  ): Promise<{ outcome: InvocationOutcome; payload: string; record: InvocationRecord }> {
    const clock = this.cloud.clock;
    const started = clock.now();
    const timeoutMs = fn.spec.timeoutSeconds * 1000 * clockScale(clock);
    const deadline = started + timeoutMs;
    const record: InvocationRecord = {
      requestId,
      functionName: fn.spec.name,
      type,
      attempt,
      start: new Date(started).toISOString(),
      log: [`START RequestId: ${requestId} Version: $LATEST`],
    };
    this.records.push(record);
    const max = Number(this.cloud.setting("lambda.invocationLogSize", 500));
    if (this.records.length > max) this.records.splice(0, this.records.length - max);

    const fault = this.cloud.faults.match("lambda", { function: fn.spec.name, type });
    const mode = fault ? String(fault.mode ?? "crash-before") : undefined;

    const finish = (outcome: InvocationOutcome, payload: string, error?: { errorType: string; errorMessage: string }) => {
      const end = clock.now();
      const duration = end - started;
      record.end = new Date(end).toISOString();
      record.durationMs = duration;
      record.outcome = outcome;
      if (error) {
        record.errorType = error.errorType;
        record.errorMessage = error.errorMessage;
        record.log.push(`${record.end}\t${requestId}\tERROR\t${error.errorType}: ${error.errorMessage}`);
      }
      record.log.push(`END RequestId: ${requestId}`);
      record.log.push(
        `REPORT RequestId: ${requestId}\tDuration: ${duration.toFixed(2)} ms\tBilled Duration: ${Math.max(1, Math.ceil(duration))} ms\tMemory Size: ${fn.spec.memorySize} MB\tMax Memory Used: ${Math.min(fn.spec.memorySize, 64)} MB`,
      );
      this.cloud.bus.emit("lambda-invocation", record);
      return { outcome, payload, record };
    };
    const exitError = () => {
      const e = {
        errorType: "Runtime.ExitError",
        errorMessage: `RequestId: ${requestId} Error: Runtime exited with error: exit status 1`,
      };
      return finish("crash", JSON.stringify(e), e);
    };

    if (mode === "crash-before" || mode === "crash") return exitError();

    const context = this.context(fn, requestId, deadline, clientContext);
    if (fn.spec.environment) Object.assign(process.env, fn.spec.environment);
    // The handler gets its own copy of the event: Lambda hands each invocation freshly parsed JSON.
    const handlerEvent = event === null || typeof event !== "object" ? event : structuredClone(event);
    let settled: Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }>;
    const scope = { requestId, functionName: fn.spec.name, stopped: false };
    try {
      settled = Promise.resolve(invocationScope.run(scope, () => fn.spec.handler(handlerEvent, context))).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    } catch (error) {
      settled = Promise.resolve({ ok: false as const, error });
    }

    let timer: ReturnType<typeof clock.setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = clock.setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const timeoutResult = () => {
      // Lambda stops the sandbox at the timeout: whatever the handler still had pending never reaches AWS.
      scope.stopped = true;
      const e = {
        errorType: "Sandbox.Timedout",
        errorMessage: `${requestId} Task timed out after ${fn.spec.timeoutSeconds.toFixed(2)} seconds`,
      };
      return finish("timeout", JSON.stringify(e), e);
    };

    if (mode === "timeout") {
      // The handler keeps running (its side effects happen) but the caller only ever sees the timeout.
      await timedOut;
      return timeoutResult();
    }
    const first = await Promise.race([settled, timedOut]);
    clock.clearTimeout(timer);
    if (first === "timeout") return timeoutResult();
    if (mode === "crash-after") return exitError();
    if (!first.ok) {
      const e = errorPayload(first.error);
      return finish("error", JSON.stringify(e), e);
    }
    let payload: string;
    try {
      // Lambda serialises the result with JSON.stringify; `undefined` becomes `null`.
      payload = JSON.stringify(first.value === undefined ? null : first.value);
    } catch (err) {
      const e = {
        errorType: "Runtime.MarshalError",
        errorMessage: `Unable to stringify response body: ${(err as Error).message}`,
      };
      return finish("error", JSON.stringify(e), e);
    }
    if (Buffer.byteLength(payload) > SYNC_PAYLOAD_LIMIT) {
      const e = {
        errorType: "Function.ResponseSizeTooLarge",
        errorMessage: `Response payload size exceeded maximum allowed payload size (${SYNC_PAYLOAD_LIMIT} bytes).`,
      };
      return finish("error", JSON.stringify(e), e);
    }
    return finish("success", payload);
  }

  private context(fn: FunctionEntry, requestId: string, deadline: number, clientContext?: string): Context {
    const clock = this.cloud.clock;
    let parsedClientContext: Context["clientContext"];
    if (clientContext) {
      try {
        parsedClientContext = JSON.parse(Buffer.from(clientContext, "base64").toString("utf8"));
      } catch {
        parsedClientContext = undefined;
      }
    }
    const unsupported = () => {
      throw new Error(
        "context.done/succeed/fail are not supported by the simulated runtime: return or throw from an async handler",
      );
    };
    return {
      callbackWaitsForEmptyEventLoop: true,
      functionName: fn.spec.name,
      functionVersion: "$LATEST",
      invokedFunctionArn: fn.arn,
      memoryLimitInMB: String(fn.spec.memorySize),
      awsRequestId: requestId,
      logGroupName: `/aws/lambda/${fn.spec.name}`,
      logStreamName: `${clock.date().toISOString().slice(0, 10).replace(/-/g, "/")}/[$LATEST]${this.cloud.hex(32)}`,
      ...(parsedClientContext ? { clientContext: parsedClientContext } : {}),
      getRemainingTimeInMillis: () => Math.max(0, deadline - clock.now()),
      done: unsupported,
      fail: unsupported,
      succeed: unsupported,
    };
  }
}

/** The function-error payload the Node.js runtime returns for a thrown value. */
export function errorPayload(error: unknown): { errorType: string; errorMessage: string; trace: string[] } {
  if (error instanceof Error) {
    return {
      errorType: error.name || "Error",
      errorMessage: error.message,
      trace: (error.stack ?? "").split("\n").filter((l) => l.trim() !== ""),
    };
  }
  // The Node.js runtime reports thrown non-Errors with their typeof as the type.
  return {
    errorType: typeof error,
    errorMessage: typeof error === "string" ? error : (JSON.stringify(error) ?? String(error)),
    trace: [],
  };
}

/** Lambda's `LastModified` format: `2026-01-05T09:00:00.000+0000`. */
function lambdaTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "+0000");
}

function uuid(cloud: Cloud): string {
  const h = cloud.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[Number.parseInt(h[16]!, 16) % 4]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const FN = "(?<FunctionName>[^/]+)";

function lambdaDefinition(backend: LambdaBackend): ServiceDefinition {
  return {
    signingName: "lambda",
    protocol: "rest-json",
    routes: [
      {
        method: "POST",
        pattern: new RegExp(`^/2015-03-31/functions/${FN}/invocations/?$`),
        action: "Invoke",
        bind: (m, query, body, headers) => ({
          FunctionName: m.FunctionName,
          Qualifier: query.get("Qualifier") ?? undefined,
          InvocationType: headers["x-amz-invocation-type"],
          LogType: headers["x-amz-log-type"],
          ClientContext: headers["x-amz-client-context"],
          Payload: body,
        }),
        render: (out) => {
          const o = out as InvokeOutput;
          const headers: Record<string, string> = {
            "content-type": "application/json",
            "x-amz-executed-version": o.ExecutedVersion,
          };
          if (o.FunctionError) headers["x-amz-function-error"] = o.FunctionError;
          if (o.LogResult) headers["x-amz-log-result"] = o.LogResult;
          return { status: o.StatusCode, headers, body: o.Payload };
        },
      },
      {
        method: "GET",
        pattern: new RegExp(`^/2015-03-31/functions/${FN}/configuration/?$`),
        action: "GetFunctionConfiguration",
        bind: (m, query) => ({ FunctionName: m.FunctionName, Qualifier: query.get("Qualifier") ?? undefined }),
      },
      {
        method: "GET",
        pattern: new RegExp(`^/2015-03-31/functions/${FN}/?$`),
        action: "GetFunction",
        bind: (m, query) => ({ FunctionName: m.FunctionName, Qualifier: query.get("Qualifier") ?? undefined }),
      },
      {
        method: "GET",
        pattern: /^\/2015-03-31\/functions\/?$/,
        action: "ListFunctions",
        bind: (_m, query) => ({ Marker: query.get("Marker") ?? undefined, MaxItems: query.get("MaxItems") ?? undefined }),
      },
    ],
    actions: {
      Invoke: async (input: InvokeInput, _ctx: RequestContext): Promise<InvokeOutput> => {
        if (!input.FunctionName) throw new AwsError("ValidationException", "FunctionName is required");
        const payload =
          input.Payload === undefined
            ? Buffer.alloc(0)
            : Buffer.isBuffer(input.Payload)
              ? input.Payload
              : Buffer.from(input.Payload);
        const r = await backend.invokeRaw(input.FunctionName, payload, {
          type: (input.InvocationType ?? "RequestResponse") as InvocationType,
          ...(input.LogType === "Tail" ? { logType: "Tail" as const } : {}),
          ...(input.ClientContext ? { clientContext: input.ClientContext } : {}),
          ...(input.Qualifier ? { qualifier: input.Qualifier } : {}),
        });
        return {
          StatusCode: r.statusCode,
          ExecutedVersion: r.executedVersion,
          Payload: r.payload,
          ...(r.functionError ? { FunctionError: r.functionError } : {}),
          ...(r.logResult ? { LogResult: r.logResult } : {}),
          RequestId: r.requestId,
        };
      },
      GetFunction: (input: { FunctionName: string; Qualifier?: string }) => {
        const Configuration = backend.configuration(input.FunctionName, input.Qualifier);
        return {
          Configuration,
          Code: {
            RepositoryType: "S3",
            Location: `https://awslambda-local.s3.amazonaws.com/snapshots/${Configuration.FunctionName}`,
          },
          Tags: {},
        };
      },
      GetFunctionConfiguration: (input: { FunctionName: string; Qualifier?: string }) =>
        backend.configuration(input.FunctionName, input.Qualifier),
      ListFunctions: (input: { Marker?: string; MaxItems?: string }) => {
        const max = input.MaxItems === undefined ? 50 : Number(input.MaxItems);
        if (!Number.isInteger(max) || max < 1 || max > 10_000)
          throw new AwsError("InvalidParameterValueException", `Invalid MaxItems: ${input.MaxItems}`);
        const names = backend.functionNames().sort();
        const start = input.Marker ? Number(Buffer.from(input.Marker, "base64").toString("utf8")) : 0;
        if (!Number.isInteger(start) || start < 0) throw new AwsError("InvalidParameterValueException", "Invalid Marker");
        const page = names.slice(start, start + max);
        const next = start + max < names.length ? Buffer.from(String(start + max)).toString("base64") : undefined;
        return { Functions: page.map((n) => backend.configuration(n)), ...(next ? { NextMarker: next } : {}) };
      },
    },
  };
}

interface InvokeInput {
  FunctionName: string;
  Qualifier?: string;
  InvocationType?: string;
  LogType?: string;
  ClientContext?: string;
  Payload?: Buffer | Uint8Array | string;
}

/** Output of the Invoke action (in process), rendered by the route into status, headers and body. */
export interface InvokeOutput {
  StatusCode: 200 | 202 | 204;
  ExecutedVersion: string;
  /** JSON text. */
  Payload: string;
  FunctionError?: string;
  LogResult?: string;
  RequestId: string;
}

/** Registers the simulated Lambda service as "lambda" and returns its backend. */
export function registerLambda(cloud: Cloud): LambdaBackend {
  const backend = new LambdaBackend(cloud);
  cloud.register("lambda", backend);
  return backend;
}
