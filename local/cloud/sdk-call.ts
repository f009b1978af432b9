/**
 * The glue between the local Step Functions engine and the simulated cloud.
 *
 * - `createAwsCaller(cloud)` implements the `arn:aws:states:::aws-sdk:<service>:<action>` integration
 *   and the optimised ones (`events:putEvents`, `sns:publish`, `dynamodb:getItem|putItem|…`,
 *   `states:startExecution`): the call goes through the real AWS SDK v3 client and command, in
 *   process, so parameters are in SDK shape (PascalCase members, DynamoDB low-level JSON) and the
 *   service's real serializer and parser run.
 * - `createLambdaInvoker(cloud)` is the engine's `invokeLambda`: a RequestResponse Invoke through the
 *   Lambda API action (so `api` faults on `lambda`/`Invoke` apply), returning the parsed payload and
 *   the function error.
 */
import type { Cloud } from "./cloud.ts";
import { AwsError } from "./protocol/errors.ts";
import type { InvokeOutput } from "./services/lambda/index.ts";

/** The engine's `callAws`. */
export type AwsCaller = (service: string, action: string, params: unknown) => Promise<unknown>;

/** The engine's `invokeLambda`. */
export type LambdaInvoker = (
  functionArn: string,
  payload: unknown,
  opts?: {
    timeoutMs?: number;
    invocationType?: string;
    qualifier?: string;
    /** The invoking execution's role (the state machine's `roleArn`) and name: the call is authorized as that role. */
    assumedRole?: { roleArn: string; session: string };
  },
) => Promise<LambdaInvocation>;

export interface LambdaInvocation {
  /** The response payload, parsed from JSON (the raw text when it is not JSON; null when empty). */
  payload: unknown;
  /** `Unhandled` when the function failed; `payload` is then `{errorType, errorMessage, trace?}`. */
  functionError?: string;
  statusCode: number;
  executedVersion: string;
  requestId: string;
}

/**
 * An AWS error raised by a call the engine made. `name` is the SDK's error name (the modeled
 * exception shape name, or the wire code for unmodeled errors such as every EC2 error), so the
 * engine can build the Step Functions error name from it (see `sfnErrorName`).
 */
export class AwsCallError extends Error {
  constructor(
    name: string,
    message: string,
    /** Integration service name as written in the Resource (`ec2`, `dynamodb`, …). */
    readonly service: string,
    readonly action: string,
    readonly statusCode?: number,
    /** `client` or `server`, as the SDK classifies it. */
    readonly fault?: string,
    options?: { cause?: unknown; requestId?: string },
  ) {
    super(message, options);
    this.name = name;
    this.$metadata = { httpStatusCode: statusCode, requestId: options?.requestId };
  }
  /** The SDK's response metadata, for callers that read errors the SDK way. */
  readonly $metadata: { httpStatusCode?: number; requestId?: string };
}

interface SdkClient {
  send(command: unknown): Promise<Record<string, unknown>>;
  destroy(): void;
}
type SdkModule = Record<string, unknown>;
type Loader = () => Promise<{ module: SdkModule; client: new (cfg: ReturnType<Cloud["clientConfig"]>) => SdkClient }>;

/**
 * Integration service names (as in `aws-sdk:<service>:<action>` and the optimised integrations) →
 * the SDK v3 package that implements them.
 */
const LOADERS: Record<string, Loader> = {
  ec2: async () => {
    const m = await import("@aws-sdk/client-ec2");
    return { module: m as unknown as SdkModule, client: m.EC2Client as never };
  },
  autoscaling: async () => {
    const m = await import("@aws-sdk/client-auto-scaling");
    return { module: m as unknown as SdkModule, client: m.AutoScalingClient as never };
  },
  elasticloadbalancingv2: async () => {
    const m = await import("@aws-sdk/client-elastic-load-balancing-v2");
    return { module: m as unknown as SdkModule, client: m.ElasticLoadBalancingV2Client as never };
  },
  ssm: async () => {
    const m = await import("@aws-sdk/client-ssm");
    return { module: m as unknown as SdkModule, client: m.SSMClient as never };
  },
  sns: async () => {
    const m = await import("@aws-sdk/client-sns");
    return { module: m as unknown as SdkModule, client: m.SNSClient as never };
  },
  dynamodb: async () => {
    const m = await import("@aws-sdk/client-dynamodb");
    return { module: m as unknown as SdkModule, client: m.DynamoDBClient as never };
  },
  eventbridge: async () => {
    const m = await import("@aws-sdk/client-eventbridge");
    return { module: m as unknown as SdkModule, client: m.EventBridgeClient as never };
  },
  sfn: async () => {
    const m = await import("@aws-sdk/client-sfn");
    return { module: m as unknown as SdkModule, client: m.SFNClient as never };
  },
  cloudwatch: async () => {
    const m = await import("@aws-sdk/client-cloudwatch");
    return { module: m as unknown as SdkModule, client: m.CloudWatchClient as never };
  },
  lambda: async () => {
    const m = await import("@aws-sdk/client-lambda");
    return { module: m as unknown as SdkModule, client: m.LambdaClient as never };
  },
  scheduler: async () => {
    const m = await import("@aws-sdk/client-scheduler");
    return { module: m as unknown as SdkModule, client: m.SchedulerClient as never };
  },
};

/** Other spellings that reach the same client: optimised-integration prefixes and signing names. */
const ALIASES: Record<string, string> = {
  events: "eventbridge",
  states: "sfn",
  stepfunctions: "sfn",
  elasticloadbalancing: "elasticloadbalancingv2",
  monitoring: "cloudwatch",
};

/** PascalCase service names Step Functions puts before aws-sdk error names (`Ec2.…`, `DynamoDb.…`). */
const SFN_SERVICE_NAMES: Record<string, string> = {
  ec2: "Ec2",
  autoscaling: "AutoScaling",
  elasticloadbalancingv2: "ElasticLoadBalancingV2",
  ssm: "Ssm",
  sns: "Sns",
  dynamodb: "DynamoDb",
  eventbridge: "EventBridge",
  sfn: "Sfn",
  cloudwatch: "CloudWatch",
  lambda: "Lambda",
  scheduler: "Scheduler",
};

/**
 * The Step Functions error name for an aws-sdk integration error, per the Step Functions developer
 * guide ("AWS SDK service integrations"): `<ServiceName>.<ErrorName>`, both PascalCase, with an
 * `Exception` suffix added when the service's own name lacks it (`S3.BucketAlreadyExistsException`).
 * How dotted EC2 codes (`InvalidInstanceID.NotFound`) are rendered is not documented: they are kept
 * as-is with the suffix appended.
 */
export function sfnErrorName(service: string, errorName: string): string {
  const canonical = ALIASES[service] ?? service;
  const svc = SFN_SERVICE_NAMES[canonical] ?? canonical.charAt(0).toUpperCase() + canonical.slice(1);
  const name = errorName.endsWith("Exception") ? errorName : `${errorName}Exception`;
  return `${svc}.${name}`;
}

/**
 * Builds the engine's `callAws(service, action, params)`. `action` is the integration's camelCase
 * action (`describeInstances`); it selects `<Action>Command` of the service's SDK client. Results
 * come back as the SDK returns them, made JSON-safe for the state data: `$metadata` removed,
 * Dates as ISO-8601 strings, blobs as base64 (the Lambda `Invoke` payload as UTF-8 text).
 * Clients are in process and make a single attempt (`sdk.maxAttempts`, default 1): retrying is the
 * state machine's job, and SDK backoff would sleep in wall time.
 */
export function createAwsCaller(cloud: Cloud): AwsCaller {
  const clients = new Map<string, Promise<{ module: SdkModule; client: SdkClient }>>();
  const load = (canonical: string) => {
    let p = clients.get(canonical);
    if (!p) {
      const loader = LOADERS[canonical]!;
      // Loading an SDK module is real I/O: hold the clock so virtual time does not jump past it.
      p = cloud.clock.hold(loader()).then(({ module, client }) => ({
        module,
        client: new client({ ...cloud.clientConfig(), maxAttempts: Number(cloud.setting("sdk.maxAttempts", 1)) }),
      }));
      clients.set(canonical, p);
    }
    return p;
  };

  return async (service, action, params) => {
    const canonical = ALIASES[service] ?? service;
    if (!LOADERS[canonical]) {
      throw new AwsCallError(
        "States.Runtime",
        `The aws-sdk integration for service '${service}' is not available in the local cloud`,
        service,
        action,
      );
    }
    const { module, client } = await load(canonical);
    const commandName = `${action.charAt(0).toUpperCase()}${action.slice(1)}Command`;
    const Command = module[commandName] as (new (input: unknown) => unknown) | undefined;
    if (typeof Command !== "function") {
      throw new AwsCallError(
        "States.Runtime",
        `The API action '${action}' is not supported by service '${service}'`,
        service,
        action,
      );
    }
    // Step Functions writes every API's parameters in PascalCase; the SFN API itself is camelCase.
    const input = prepareInput(canonical, commandName, canonical === "sfn" ? recase(params ?? {}, lowerFirst) : (params ?? {}));
    let out: Record<string, unknown>;
    try {
      out = await client.send(new Command(input));
    } catch (err) {
      throw toCallError(err, service, action);
    }
    const { $metadata: _meta, ...rest } = out;
    const safe = jsonSafe(rest, canonical === "lambda" && commandName === "InvokeCommand" ? "Payload" : undefined);
    return canonical === "sfn" ? recase(safe, upperFirst) : safe;
  };
}

/** Builds the engine's `invokeLambda`: RequestResponse invocations through the Lambda API action. */
export function createLambdaInvoker(cloud: Cloud): LambdaInvoker {
  return async (functionArn, payload, opts = {}) => {
    const invoke = () =>
      cloud.router.invoke("lambda", "Invoke", {
        FunctionName: functionArn,
        InvocationType: opts.invocationType ?? "RequestResponse",
        ...(opts.qualifier ? { Qualifier: opts.qualifier } : {}),
        Payload: Buffer.from(payload === undefined ? "" : JSON.stringify(payload), "utf8"),
      }) as Promise<InvokeOutput>;
    const call = opts.assumedRole ? cloud.asRole(opts.assumedRole.roleArn, opts.assumedRole.session, invoke) : invoke();
    let out: InvokeOutput;
    try {
      out = opts.timeoutMs === undefined ? await call : await withTimeout(cloud, call, opts.timeoutMs, functionArn);
    } catch (err) {
      if (err instanceof AwsError) {
        throw new AwsCallError(err.code, err.message, "lambda", "invoke", err.status, err.status >= 500 ? "server" : "client", {
          cause: err,
        });
      }
      throw err;
    }
    return {
      payload: parsePayload(out.Payload),
      ...(out.FunctionError ? { functionError: out.FunctionError } : {}),
      statusCode: out.StatusCode,
      executedVersion: out.ExecutedVersion,
      requestId: out.RequestId,
    };
  };
}

function withTimeout<T>(cloud: Cloud, work: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = cloud.clock.setTimeout(
      () => reject(new AwsCallError("States.Timeout", `Invocation of ${what} exceeded ${ms} ms`, "lambda", "invoke")),
      ms,
    );
    work.then(
      (v) => {
        cloud.clock.clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        cloud.clock.clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function parsePayload(text: string): unknown {
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Step Functions passes the Lambda payload as JSON; the SDK wants bytes. */
function prepareInput(canonical: string, commandName: string, params: unknown): unknown {
  if (canonical === "lambda" && commandName === "InvokeCommand" && params && typeof params === "object") {
    const p = params as Record<string, unknown>;
    if (p.Payload !== undefined && !(p.Payload instanceof Uint8Array)) {
      return { ...p, Payload: Buffer.from(typeof p.Payload === "string" ? p.Payload : JSON.stringify(p.Payload), "utf8") };
    }
  }
  return params;
}

function toCallError(err: unknown, service: string, action: string): AwsCallError {
  if (err instanceof AwsCallError) return err;
  const e = err as {
    name?: string;
    message?: string;
    $fault?: string;
    $metadata?: { httpStatusCode?: number; requestId?: string };
  };
  return new AwsCallError(
    e?.name || "UnknownError",
    e?.message || String(err),
    service,
    action,
    e?.$metadata?.httpStatusCode,
    e?.$fault,
    {
      cause: err,
      ...(e?.$metadata?.requestId ? { requestId: e.$metadata.requestId } : {}),
    },
  );
}

const lowerFirst = (k: string) => k.charAt(0).toLowerCase() + k.slice(1);
const upperFirst = (k: string) => k.charAt(0).toUpperCase() + k.slice(1);

/** Renames every object key with `fn`, deeply (SFN's camelCase API behind PascalCase parameters). */
function recase(value: unknown, fn: (k: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => recase(v, fn));
  if (value && typeof value === "object" && !(value instanceof Date) && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [fn(k), recase(v, fn)]));
  }
  return value;
}

/** Deep copy fit for state data: Dates → ISO strings, bytes → base64 (or UTF-8 for `textKey`). */
function jsonSafe(value: unknown, textKey?: string, key?: string): unknown {
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString(key !== undefined && key === textKey ? "utf8" : "base64");
  if (Array.isArray(value)) return value.map((v) => jsonSafe(v, textKey));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = jsonSafe(v, textKey, k);
    return out;
  }
  return value;
}
