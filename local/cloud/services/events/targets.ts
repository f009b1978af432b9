/**
 * Delivery to targets, shared by EventBridge rules and EventBridge Scheduler, and the rule input
 * shaping (Input, InputPath, InputTransformer).
 *
 * Deliveries go through the target service's API action in process (`cloud.router.invoke`), so
 * `api` faults (throttling, 5xx) on `states`/`StartExecution` or `lambda`/`Invoke` reach the retry
 * policy exactly as real delivery failures would.
 */
import type { Cloud } from "../../cloud.ts";
import { AwsError } from "../../protocol/errors.ts";
import type { AwsCaller } from "../../sdk-call.ts";

/** Outcome of one delivery attempt. */
export interface DeliveryResult {
  /** `delivered` to a simulated service; `captured` for target types kept only for inspection. */
  status: "delivered" | "captured";
  /** What the target answered with (execution ARN, Lambda request id, message id). */
  detail?: string;
}

/**
 * Delivers `input` (JSON text) to the target `arn`:
 * - Lambda function → asynchronous (`Event`) Invoke;
 * - Step Functions state machine → StartExecution with `input`;
 * - SNS topic → Publish with `input` as the message;
 * - Scheduler universal target `arn:aws:scheduler:::aws-sdk:<service>:<action>` → that API call
 *   with `input` as its parameters (needs `caller`);
 * - anything else (SQS, Kinesis, HTTP destinations…) is captured, not delivered.
 * Throws the target's AwsError on failure.
 */
export async function deliverToTarget(cloud: Cloud, arn: string, input: string, caller?: AwsCaller): Promise<DeliveryResult> {
  const service = arn.split(":")[2];
  if (service === "lambda") {
    const out = (await cloud.router.invoke("lambda", "Invoke", {
      FunctionName: arn,
      InvocationType: "Event",
      Payload: Buffer.from(input, "utf8"),
    })) as { RequestId?: string };
    return { status: "delivered", detail: out.RequestId };
  }
  if (service === "states" && /:stateMachine:/.test(arn)) {
    const out = (await cloud.router.invoke("states", "StartExecution", { stateMachineArn: arn, input })) as {
      executionArn?: string;
    };
    return { status: "delivered", detail: out.executionArn };
  }
  if (service === "sns") {
    const out = (await cloud.router.invoke("sns", "Publish", { TopicArn: arn, Message: input })) as { MessageId?: string };
    return { status: "delivered", detail: out.MessageId };
  }
  const universal = /^arn:aws[a-z-]*:scheduler:::aws-sdk:([a-z0-9]+):([A-Za-z0-9]+)$/.exec(arn);
  if (universal) {
    if (!caller) throw new AwsError("ValidationException", `Universal targets are not available here: ${arn}`);
    let params: unknown;
    try {
      params = JSON.parse(input || "{}");
    } catch {
      throw new AwsError("ValidationException", `Input of universal target ${arn} is not valid JSON`);
    }
    try {
      await caller(universal[1]!, universal[2]!, params);
    } catch (err) {
      const e = err as { name?: string; message?: string; statusCode?: number };
      throw new AwsError(e.name ?? "InternalFailure", e.message ?? String(err), e.statusCode ?? 400);
    }
    return { status: "delivered" };
  }
  return { status: "captured" };
}

/** Throttling codes and server faults are retried by EventBridge and Scheduler; client errors are not. */
export function isRetryableDelivery(err: unknown): boolean {
  if (!(err instanceof AwsError)) return true;
  if (err.status >= 500 || err.status === 429) return true;
  return /Throttl|TooManyRequests|RequestLimitExceeded|LimitExceeded|ServiceUnavailable|InternalFailure/.test(err.code);
}

/**
 * A JSONPath as EventBridge accepts in InputPath and InputPathsMap: `$`, `.key`, `['key']`,
 * `["key"]` and `[n]`. Returns undefined when the path does not resolve.
 */
export function readPath(root: unknown, path: string): unknown {
  if (!path.startsWith("$")) throw new AwsError("ValidationException", `Invalid JSONPath ${path}`);
  let node: unknown = root;
  const re = /\.([^.[\]]+)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]/gy;
  re.lastIndex = 1;
  while (re.lastIndex < path.length) {
    const m = re.exec(path);
    if (!m) throw new AwsError("ValidationException", `Invalid JSONPath ${path}`);
    const key = m[1] ?? m[3] ?? m[4];
    if (key !== undefined)
      node = node && typeof node === "object" && !Array.isArray(node) ? (node as Record<string, unknown>)[key] : undefined;
    else node = Array.isArray(node) ? node[Number(m[2])] : undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** Checks an InputPath / InputPathsMap path without evaluating it. */
export function checkPath(path: string): void {
  readPath({}, path);
}

export interface InputTransformerSpec {
  InputPathsMap?: Record<string, string>;
  InputTemplate: string;
}

/**
 * Applies an InputTransformer: each `<name>` in the template is replaced by the value its path
 * selects. Inside a JSON string literal the value is inserted as text (strings without their
 * quotes); outside, as JSON. A path that selects nothing gives an empty string inside quotes and
 * `null` outside. `vars` adds predefined variables (`aws.events.rule-name`, …).
 */
export function transformInput(spec: InputTransformerSpec, event: unknown, vars: Record<string, unknown> = {}): string {
  const values: Record<string, unknown> = { ...vars };
  for (const [name, path] of Object.entries(spec.InputPathsMap ?? {})) values[name] = readPath(event, path);
  const t = spec.InputTemplate;
  let out = "";
  let inString = false;
  for (let i = 0; i < t.length; i++) {
    const c = t[i]!;
    if (c === "\\" && inString) {
      out += c + (t[i + 1] ?? "");
      i++;
      continue;
    }
    if (c === '"') {
      inString = !inString;
      out += c;
      continue;
    }
    if (c === "<") {
      const end = t.indexOf(">", i);
      const name = end > i ? t.slice(i + 1, end) : "";
      if (name && Object.hasOwn(values, name)) {
        const v = values[name];
        if (inString)
          out +=
            v === undefined || v === null
              ? ""
              : typeof v === "string"
                ? JSON.stringify(v).slice(1, -1)
                : JSON.stringify(JSON.stringify(v)).slice(1, -1);
        else out += v === undefined ? "null" : JSON.stringify(v);
        i = end;
        continue;
      }
    }
    out += c;
  }
  return out;
}
