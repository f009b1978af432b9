/**
 * Task resources: what a Task's `Resource` ARN calls, and how the result and errors come back, as
 * Step Functions shapes them. The engine only calls injected functions (EngineDeps), so the same
 * code serves unit tests with fakes and the local stack wired to the simulated cloud.
 */
import { RuntimeError, StatesError } from "./errors.ts";
import type { ExecRuntime } from "./runtime.ts";
import type { LambdaResult } from "./types.ts";

export type Pattern = "request-response" | "waitForTaskToken" | "sync" | "sync:2";

export type ParsedResource =
  | { kind: "lambda-function"; functionArn: string; resourceType: "lambda"; resource: string }
  | {
      kind: "service";
      /** `lambda`, `states`, `sns`, `events`, `dynamodb`, or for aws-sdk the SDK service name. */
      service: string;
      /** Action as written (`invoke`, `describeInstances`). */
      action: string;
      sdk: boolean;
      pattern: Pattern;
      /** What history events report: `lambda`/`invoke`, `aws-sdk:ec2`/`describeInstances`. */
      resourceType: string;
      resource: string;
    }
  | { kind: "activity"; arn: string; resourceType: "activity"; resource: string };

/** Parses a Task `Resource`. Throws States.Runtime for forms the engine does not run. */
export function parseResource(arn: string): ParsedResource {
  const fn = /^arn:aws[\w-]*:lambda:[^:]*:[^:]*:function:.+$/.exec(arn);
  if (fn) return { kind: "lambda-function", functionArn: arn, resourceType: "lambda", resource: arn };
  if (/^arn:aws[\w-]*:states:[^:]*:[^:]*:activity:/.test(arn))
    return { kind: "activity", arn, resourceType: "activity", resource: arn };
  const m =
    /^arn:aws[\w-]*:states:[^:]*:[^:]*:(aws-sdk:)?([A-Za-z0-9-]+):([A-Za-z0-9]+)(?:\.(waitForTaskToken|sync:2|sync))?$/.exec(arn);
  if (!m) throw new RuntimeError(`The resource '${arn}' is not a supported Task resource`);
  const sdk = m[1] !== undefined;
  const service = m[2]!;
  const action = m[3]!;
  const pattern = (m[4] as Pattern | undefined) ?? "request-response";
  return {
    kind: "service",
    service,
    action,
    sdk,
    pattern,
    resourceType: sdk ? `aws-sdk:${service}` : service,
    resource: m[4] ? `${action}.${m[4]}` : action,
  };
}

export function pascal(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Service names as they appear in aws-sdk integration error names (`Ec2.…`, `DynamoDb.…`). */
const SDK_SERVICE_NAMES: Record<string, string> = {
  ec2: "Ec2",
  dynamodb: "DynamoDb",
  sfn: "Sfn",
  ssm: "Ssm",
  sns: "Sns",
  sqs: "Sqs",
  s3: "S3",
  lambda: "Lambda",
  autoscaling: "AutoScaling",
  elasticloadbalancingv2: "ElasticLoadBalancingV2",
  eventbridge: "EventBridge",
  cloudwatch: "CloudWatch",
  scheduler: "Scheduler",
  iam: "Iam",
  sts: "Sts",
};

/** Prefixes of the optimised integrations' error names. */
const OPTIMISED_NAMES: Record<string, string> = {
  dynamodb: "DynamoDB",
  sns: "SNS",
  events: "EventBridge",
  states: "StepFunctions",
  sqs: "SQS",
};

interface AwsLikeError {
  name?: string;
  statusCode?: number;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

/**
 * The Step Functions error name for a failed aws-sdk call: `<Service>.<Code>` in PascalCase, with
 * an `Exception` suffix always present (AWS docs: "always add the Exception suffix"). Services
 * whose errors are not modelled (EC2: dotted codes such as `InvalidInstanceID.NotFound`) surface as
 * `<Service>.<Service>Exception`, with the real code in the cause.
 */
export function sdkErrorName(service: string, code: string): string {
  const svc = SDK_SERVICE_NAMES[service] ?? pascal(service);
  if (code.includes(".") || service === "ec2") return `${svc}.${svc}Exception`;
  const c = pascal(code);
  return `${svc}.${c.endsWith("Exception") ? c : `${c}Exception`}`;
}

/** Maps a rejected `callAws` to the task error. */
export function awsCallError(service: string, sdk: boolean, err: unknown): StatesError {
  if (err instanceof StatesError) return err;
  const e = (err ?? {}) as AwsLikeError;
  const code = e.code ?? e.Code ?? e.name ?? "UnknownError";
  // The host may already name a Step Functions error (an unsupported action is States.Runtime).
  if (code.startsWith("States.")) return new StatesError(code, e.message ?? "");
  const status = e.statusCode ?? e.$metadata?.httpStatusCode ?? 400;
  const svcLabel = sdk ? (SDK_SERVICE_NAMES[service] ?? pascal(service)) : (OPTIMISED_NAMES[service] ?? pascal(service));
  const name = sdk ? sdkErrorName(service, code) : `${svcLabel}.${code}`;
  const cause = `${e.message ?? code} (Service: ${svcLabel}, Status Code: ${status}, Error Code: ${code}, Request ID: ${e.$metadata?.requestId ?? "00000000-0000-0000-0000-000000000000"})`;
  return new StatesError(name, cause);
}

/** Lambda exceptions Step Functions reports under their own name (`Lambda.TooManyRequestsException`, …). */
const LAMBDA_INVOKE_ERRORS = new Set([
  "ServiceException",
  "TooManyRequestsException",
  "ResourceNotFoundException",
  "ResourceConflictException",
  "InvalidParameterValueException",
  "InvalidRequestContentException",
  "RequestTooLargeException",
  "UnsupportedMediaTypeException",
  "EC2ThrottledException",
  "EC2UnexpectedException",
  "ENILimitReachedException",
  "KMSAccessDeniedException",
  "ResourceNotReadyException",
  "SnapStartException",
  "AWSLambdaException",
  "SdkClientException",
]);

/** An invocation that did not run (throttled, missing function, Lambda fault). */
export function lambdaInvokeError(err: unknown): StatesError {
  if (err instanceof StatesError) return err;
  const e = (err ?? {}) as AwsLikeError;
  const code = e.code ?? e.name ?? "ServiceException";
  if (code.startsWith("States.")) return new StatesError(code, e.message ?? "");
  const name = LAMBDA_INVOKE_ERRORS.has(code) || code.endsWith("Exception") ? `Lambda.${code}` : "Lambda.ServiceException";
  const status = e.statusCode ?? e.$metadata?.httpStatusCode ?? (code === "TooManyRequestsException" ? 429 : 500);
  return new StatesError(
    name,
    `${e.message ?? code} (Service: AWSLambda; Status Code: ${status}; Error Code: ${code}; Request ID: ${e.$metadata?.requestId ?? "00000000-0000-0000-0000-000000000000"}; Proxy: null)`,
  );
}

/**
 * A function error becomes the task error `errorType`, with the cause as Lambda returned it
 * (`{"errorMessage":…,"errorType":…,"trace":[…]}`). Without an errorType (crash, out of memory,
 * some timeouts) Step Functions reports `Lambda.Unknown`.
 */
export function lambdaFunctionError(res: LambdaResult): StatesError {
  const p = (res.payload ?? {}) as { errorType?: unknown; errorMessage?: unknown; trace?: unknown; stackTrace?: unknown };
  if (typeof p.errorType !== "string" || !p.errorType) {
    return new StatesError(
      "Lambda.Unknown",
      `The cause could not be determined because Lambda did not return an error type. Returned payload: ${JSON.stringify(res.payload ?? null)}`,
    );
  }
  const trace = Array.isArray(p.trace) ? p.trace : Array.isArray(p.stackTrace) ? p.stackTrace : [];
  return new StatesError(p.errorType, JSON.stringify({ errorMessage: p.errorMessage ?? "", errorType: p.errorType, trace }));
}

/** The `lambda:invoke` result shape (Payload plus the SDK response metadata Step Functions adds). */
export function lambdaInvokeOutput(res: LambdaResult, requestId: string): Record<string, unknown> {
  const status = res.statusCode ?? 200;
  const headers = {
    Connection: "keep-alive",
    "Content-Type": "application/json",
    "X-Amz-Executed-Version": res.executedVersion ?? "$LATEST",
    "x-amzn-Remapped-Content-Length": "0",
    "x-amzn-RequestId": requestId,
  };
  return {
    ExecutedVersion: res.executedVersion ?? "$LATEST",
    Payload: res.payload ?? null,
    SdkHttpMetadata: {
      AllHttpHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
      HttpHeaders: headers,
      HttpStatusCode: status,
    },
    SdkResponseMetadata: { RequestId: requestId },
    StatusCode: status,
  };
}

/** Drops the SDK's `$metadata` from an aws-sdk result (Step Functions returns the API output only). */
export function sdkOutput(out: unknown): unknown {
  if (out && typeof out === "object" && !Array.isArray(out) && "$metadata" in out) {
    const { $metadata: _m, ...rest } = out as Record<string, unknown>;
    return rest;
  }
  return out ?? {};
}

/** Runs a Lambda invocation as Step Functions does and returns `{raw, output}` or throws the task error. */
export async function invokeLambda(
  rt: ExecRuntime,
  functionName: string,
  payload: unknown,
  opts: { timeoutMs?: number; invocationType?: string; qualifier?: string },
): Promise<LambdaResult> {
  let res: LambdaResult;
  try {
    res = await rt.deps.invokeLambda(functionName, payload, {
      ...opts,
      assumedRole: { roleArn: rt.roleArn, session: rt.executionArn.split(":").at(-1)! },
    });
  } catch (err) {
    throw lambdaInvokeError(err);
  }
  if (res.functionError) throw lambdaFunctionError(res);
  return res;
}

/** Input of a child execution: Step Functions accepts an object or a JSON string. */
export function childInput(v: unknown): string {
  if (v === undefined) return "{}";
  return typeof v === "string" ? v : JSON.stringify(v);
}
