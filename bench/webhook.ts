/**
 * Webhook handler throughput and latency, in process: `functions/webhook.ts`'s deployed handler
 * invoked directly with GitHub-signed push events against a local stack (virtual clock, simulated
 * SSM for the secret, DynamoDB for the lock and queue, Step Functions for StartExecution). Every push
 * carries a new commit, so the first starts a deployment and the rest are queued behind it (latest
 * wins): the handler's full path, HMAC check to lock write, runs for each.
 */
import { randomBytes } from "node:crypto";
import { sign } from "@octokit/webhooks-methods";
import type { Context } from "aws-lambda";
import type { LambdaBackend } from "../local/cloud/services/lambda/index.ts";
import { Stack } from "../local/stack.ts";

export interface WebhookMeasure {
  requests: number;
  concurrency: number;
  /** Answers by HTTP status. */
  statuses: Record<string, number>;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface Answer {
  statusCode: number;
  body?: string;
}

/** Lambda's context, as far as middy and the handler read it. */
function context(): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: "kiln-local-webhook",
    functionVersion: "$LATEST",
    invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:kiln-local-webhook",
    memoryLimitInMB: "1024",
    awsRequestId: randomBytes(16).toString("hex"),
    logGroupName: "/aws/lambda/kiln-local-webhook",
    logStreamName: "bench",
    getRemainingTimeInMillis: () => 10_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

async function pushEvent(secret: string, i: number): Promise<Record<string, unknown>> {
  const commit = randomBytes(20).toString("hex");
  const body = JSON.stringify({
    ref: "refs/heads/main",
    before: "0".repeat(39) + "1",
    after: commit,
    created: false,
    deleted: false,
    forced: false,
    repository: { full_name: "example/web", pushed_at: 1_767_600_000 + i },
    pusher: { name: "bench", email: "bench@example.com" },
    head_commit: { id: commit, timestamp: "2026-01-05T09:00:00Z" },
  });
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: "/",
    rawQueryString: "",
    headers: {
      "content-type": "application/json",
      "user-agent": "GitHub-Hookshot/bench",
      "x-github-event": "push",
      "x-github-delivery": `bench-${i}-${randomBytes(4).toString("hex")}`,
      "x-hub-signature-256": await sign(secret, body),
    },
    requestContext: {
      http: { method: "POST", path: "/", protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "GitHub-Hookshot/bench" },
    },
    body,
    isBase64Encoded: false,
  };
}

/**
 * One stack, one warm handler module (its secret cache and clients live at module scope, as in a
 * warm Lambda container), then `requests` pushes at each concurrency in turn.
 */
export async function measureWebhook(opts: { requests?: number; concurrencies?: number[] } = {}): Promise<WebhookMeasure[]> {
  const requests = opts.requests ?? 200;
  const stack = await Stack.start({ clock: "virtual", port: false, console: false });
  try {
    const lambda = stack.cloud.backend<LambdaBackend>("lambda");
    const fnArn = stack.functions.webhook;
    if (!fnArn) throw new Error("serverless.yml has no webhook function");
    // The deployed handler reads its configuration from the environment Lambda gives it.
    const env = (lambda.configuration(fnArn).Environment as { Variables: Record<string, string> } | undefined)?.Variables ?? {};
    Object.assign(process.env, env);
    const { handler } = (await import("../functions/webhook.ts")) as { handler: (e: unknown, c: Context) => Promise<Answer> };
    // One warm-up call: the first pays module-level client creation and the secret fetch.
    await handler(await pushEvent(stack.webhookSecret, -1), context());
    const out: WebhookMeasure[] = [];
    for (const concurrency of opts.concurrencies ?? [1, 8]) {
      const events = await Promise.all(
        Array.from({ length: requests }, (_, i) => pushEvent(stack.webhookSecret, out.length * requests + i)),
      );
      const latencies: number[] = [];
      const statuses: Record<string, number> = {};
      let next = 0;
      const t0 = performance.now();
      const worker = async () => {
        while (next < events.length) {
          const ev = events[next++]!;
          const s = performance.now();
          const r = await handler(ev, context());
          latencies.push(performance.now() - s);
          statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const wall = performance.now() - t0;
      latencies.sort((a, b) => a - b);
      const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]!;
      out.push({
        requests,
        concurrency,
        statuses,
        perSecond: (requests / wall) * 1000,
        p50Ms: q(0.5),
        p99Ms: q(0.99),
        maxMs: latencies.at(-1)!,
      });
    }
    return out;
  } finally {
    await stack.stop();
  }
}
