/**
 * GitHub push webhook → deployment. Verifies `X-Hub-Signature-256` (HMAC-SHA256 of the raw body,
 * compared in constant time by `@octokit/webhooks-methods`), answers `ping`, maps the repository
 * and branch to services, and starts (or queues) one deployment per service. Every rejection is a
 * JSON answer with a reason and starts nothing. See docs/triggers.md.
 */
import { verifyWithFallback } from "@octokit/webhooks-methods";
import { z } from "zod";
import type { DeployRequest, StartOrQueueResult } from "../lock/lock.ts";
import { type Log, silentLog } from "../log.ts";
import type { PushTarget, ServiceRouting } from "./routing.ts";

/**
 * Largest body accepted, in bytes. GitHub caps payloads at 25 MB and drops larger ones; a push
 * payload lists at most 20 commits (plus their file lists), so real ones are tens of KB. 1 MB is
 * ample and keeps the HMAC and the JSON parse of a hostile request cheap.
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** What the handler passes in: a Lambda Function URL / HTTP API v2 request, reduced. */
export interface WebhookRequest {
  method?: string;
  headers: Record<string, string | undefined>;
  body?: string | null;
  isBase64Encoded?: boolean;
}

export interface WebhookResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface WebhookDeps {
  /**
   * The webhook secret(s). More than one while a secret is being rotated (the SSM value may hold
   * the new and the old secret on separate lines). `refresh` asks for a value fresher than the cache.
   */
  secrets(opts?: { refresh?: boolean }): Promise<string[]>;
  routing: ServiceRouting;
  /** Start or queue one deployment (`startOrQueue` bound to its clients). */
  start(req: DeployRequest): Promise<StartOrQueueResult>;
  maxBodyBytes?: number;
  log?: Log;
}

const ZERO_SHA = /^0{40}$/;
const COMMIT = /^[0-9a-f]{40}$/;
const SIGNATURE_256 = /^sha256=[0-9a-f]{64}$/;
const DELIVERY_ID = /^[A-Za-z0-9-]{1,100}$/;

/** The fields of GitHub's push payload kiln reads; everything else is ignored. */
const PushPayload = z.object({
  ref: z.string().min(1).max(1024),
  before: z.string().max(100).optional(),
  after: z.string().max(100),
  created: z.boolean().optional(),
  deleted: z.boolean().optional(),
  forced: z.boolean().optional(),
  repository: z.object({
    full_name: z.string().min(3).max(200),
    // An integer (epoch seconds) in push payloads; ISO 8601 in other events.
    pushed_at: z.union([z.number(), z.string()]).nullish(),
  }),
  pusher: z.object({ name: z.string().max(200), email: z.string().nullish() }).optional(),
  head_commit: z.object({ id: z.string(), timestamp: z.string().optional() }).nullish(),
});

const PingPayload = z.object({ zen: z.string().optional(), hook_id: z.number().optional() });

const json = (statusCode: number, body: Record<string, unknown>): WebhookResponse => ({
  statusCode,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

/** Rejections: `error` is a stable code, `message` says what to change. */
const reject = (statusCode: number, error: string, message: string, extra: Record<string, unknown> = {}) =>
  json(statusCode, { error, message, ...extra });

const ignored = (reason: string, extra: Record<string, unknown> = {}) => json(202, { ignored: true, reason, ...extra });

function lowerHeaders(h: Record<string, string | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) if (typeof v === "string") out[k.toLowerCase()] = v;
  return out;
}

function decodeBody(req: WebhookRequest, max: number): { ok: true; raw: string } | { ok: false; res: WebhookResponse } {
  const body = typeof req.body === "string" ? req.body : "";
  const tooLarge = () => ({
    ok: false as const,
    res: reject(413, "payload_too_large", `the body exceeds ${max} bytes; kiln only needs push payloads, which are far smaller`),
  });
  if (!req.isBase64Encoded) {
    if (Buffer.byteLength(body, "utf8") > max) return tooLarge();
    return { ok: true, raw: body };
  }
  // Function URLs base64-encode bodies they do not consider text; decode strictly (Node's decoder skips junk).
  if (body.length > Math.ceil(max / 3) * 4 + 4) return tooLarge();
  if (body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) {
    return { ok: false, res: reject(400, "bad_encoding", "isBase64Encoded is set but the body is not valid base64") };
  }
  const bytes = Buffer.from(body, "base64");
  if (bytes.length > max) return tooLarge();
  return { ok: true, raw: bytes.toString("utf8") };
}

/**
 * Handles one webhook delivery. Never throws: failures of kiln's own dependencies (SSM, Step
 * Functions, DynamoDB) answer 503 so GitHub records the delivery as failed and it can be
 * redelivered, which is safe (a redelivery starts nothing new).
 */
export async function handleWebhook(req: WebhookRequest, deps: WebhookDeps): Promise<WebhookResponse> {
  const log = deps.log ?? silentLog;
  const headers = lowerHeaders(req.headers);
  const deliveryId = headers["x-github-delivery"];
  const event = headers["x-github-event"];
  const ctx = { deliveryId, event };
  try {
    const res = await handle(req, headers, deps, log);
    log.info("webhook answered", { ...ctx, status: res.statusCode, answer: safeSummary(res.body) });
    return res;
  } catch (err) {
    const e = err as Error;
    log.error("webhook failed", { ...ctx, error: e?.name, message: e?.message });
    return reject(
      503,
      "unavailable",
      `kiln could not process this delivery (${e?.name ?? "Error"}); redeliver it from GitHub once resolved`,
    );
  }
}

function safeSummary(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

async function handle(
  req: WebhookRequest,
  headers: Record<string, string>,
  deps: WebhookDeps,
  log: Log,
): Promise<WebhookResponse> {
  if (req.method && req.method.toUpperCase() !== "POST") {
    return {
      ...reject(405, "method_not_allowed", "GitHub webhooks are POSTed"),
      headers: { "content-type": "application/json", allow: "POST" },
    };
  }
  const max = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const decoded = decodeBody(req, max);
  if (!decoded.ok) return decoded.res;
  const raw = decoded.raw;

  // 1. Authenticate before looking at anything else the sender controls.
  const signature = headers["x-hub-signature-256"];
  if (!signature) {
    if (headers["x-hub-signature"]) {
      return reject(
        401,
        "unsupported_signature",
        "only X-Hub-Signature (HMAC-SHA1) was sent; kiln requires X-Hub-Signature-256 (HMAC-SHA256)",
      );
    }
    return reject(401, "missing_signature", "X-Hub-Signature-256 is missing: set a secret on the GitHub webhook");
  }
  if (signature.startsWith("sha1=")) {
    return reject(401, "unsupported_signature", "X-Hub-Signature-256 must be sha256=<hex>; sha1 signatures are not accepted");
  }
  if (!SIGNATURE_256.test(signature))
    return reject(401, "bad_signature", "X-Hub-Signature-256 is malformed: expected sha256=<64 hex digits>");
  if (raw.length === 0) return reject(400, "empty_body", "the request has no body");
  if (!(await verified(raw, signature, deps))) {
    return reject(401, "bad_signature", "X-Hub-Signature-256 does not match the body: check the webhook secret");
  }

  // 2. Shape of the delivery.
  const contentType = (headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (contentType === "application/x-www-form-urlencoded") {
    return reject(
      415,
      "unsupported_content_type",
      "the webhook sends form-encoded payload=…; set its Content type to application/json in GitHub",
      {
        hint: "Repository settings → Webhooks → Edit → Content type: application/json",
      },
    );
  }
  if (contentType !== "application/json") {
    return reject(
      415,
      "unsupported_content_type",
      `Content-Type must be application/json, got ${JSON.stringify(contentType || "(none)")}`,
    );
  }
  const event = headers["x-github-event"];
  if (!event) return reject(400, "missing_event", "X-GitHub-Event is missing");
  const deliveryId = headers["x-github-delivery"];
  if (deliveryId !== undefined && !DELIVERY_ID.test(deliveryId))
    return reject(400, "bad_delivery_id", "X-GitHub-Delivery is malformed");
  if (event !== "push" && event !== "ping")
    return ignored(`event ${JSON.stringify(event.slice(0, 50))} is not handled; kiln deploys on push`);

  let payload: unknown;
  try {
    payload = JSON.parse(raw);
  } catch {
    return reject(400, "invalid_json", "the body is not valid JSON");
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload))
    return reject(400, "invalid_payload", "the body must be a JSON object");

  if (event === "ping") {
    const p = PingPayload.safeParse(payload);
    return json(200, {
      ok: true,
      ...(p.success && p.data.zen ? { zen: p.data.zen } : {}),
      ...(p.success && p.data.hook_id ? { hookId: p.data.hook_id } : {}),
    });
  }

  // 3. The push.
  const parsed = PushPayload.safeParse(payload);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`)
      .join("; ");
    return reject(400, "invalid_payload", `not a push payload: ${issues}`);
  }
  const p = parsed.data;
  const repository = p.repository.full_name;
  if (p.ref.startsWith("refs/tags/")) return ignored(`tag push (${p.ref}): kiln deploys branches`, { repository });
  if (!p.ref.startsWith("refs/heads/")) return ignored(`ref ${p.ref} is not a branch`, { repository });
  const branch = p.ref.slice("refs/heads/".length);
  if (p.deleted === true || ZERO_SHA.test(p.after)) return ignored(`branch ${branch} was deleted`, { repository, branch });
  if (!COMMIT.test(p.after)) return reject(400, "invalid_commit", "after must be a commit id of 40 lowercase hex characters");

  const targets = deps.routing.findServicesForPush(repository, branch);
  if (targets.length === 0) return ignored(`no service deploys ${repository} branch ${branch}`, { repository, branch });

  const commit = p.after;
  const pusher = p.pusher?.name;
  // GitHub's `before`: the commit the branch pointed at. The queue orders pushes by it, never by clocks.
  const before = p.before && COMMIT.test(p.before) && !ZERO_SHA.test(p.before) ? p.before : undefined;
  const results: Record<string, unknown>[] = [];
  for (const t of targets)
    results.push(await deployOne(t, { commit, branch, pusher, deliveryId, before, forced: p.forced === true }, deps, log));
  // One service (the usual case): its answer as is. Several (a monorepo): each, under `deployments`.
  return json(202, results.length === 1 ? results[0]! : { commit, deployments: results });
}

async function verified(raw: string, signature: string, deps: WebhookDeps): Promise<boolean> {
  const check = async (secrets: string[]) => {
    const [first, ...rest] = secrets;
    return first ? verifyWithFallback(first, raw, signature, rest) : false;
  };
  if (await check(await deps.secrets())) return true;
  // The secret may have been rotated since it was cached: look once more, fresh.
  return check(await deps.secrets({ refresh: true }));
}

async function deployOne(
  t: PushTarget,
  push: { commit: string; branch: string; pusher?: string; deliveryId?: string; before?: string; forced: boolean },
  deps: WebhookDeps,
  log: Log,
): Promise<Record<string, unknown>> {
  const r = await deps.start({
    input: {
      service: t.service,
      environment: t.environment,
      commit: push.commit,
      trigger: "push",
      // The configured spelling: `EXAMPLE/WEB` and `example/web` are the same GitHub repository.
      repository: t.repository,
      branch: push.branch,
      ...(push.before ? { before: push.before } : {}),
      ...(push.forced ? { forced: true } : {}),
      ...(push.pusher ? { pusher: push.pusher, requestedBy: `github:${push.pusher}` } : {}),
      ...(push.deliveryId ? { deliveryId: push.deliveryId } : {}),
    },
  });
  const base = { service: t.service, environment: t.environment, commit: push.commit };
  log.info("push handled", { ...base, deliveryId: push.deliveryId, action: r.action });
  switch (r.action) {
    case "started":
      return { ...base, executionArn: r.executionArn, ...(r.duplicate ? { duplicate: true } : {}) };
    case "queued":
      return {
        ...base,
        queued: true,
        // The execution it will start as, once its turn comes.
        executionName: r.name,
        position: r.position,
        runningExecutionArn: r.holder,
        reason: r.reason,
        ...(r.replaced ? { replaced: r.replaced } : {}),
        ...(r.superseding ? { superseding: r.superseding } : {}),
        ...(r.blockedBy ? { blockedBy: r.blockedBy } : {}),
      };
    case "ignored":
    case "busy":
      return { ...base, ignored: true, reason: r.reason };
  }
}
