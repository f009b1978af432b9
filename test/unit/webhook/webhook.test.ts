import { describe, expect, it } from "vitest";
import { handleWebhook, type WebhookDeps } from "../../../lib/webhook/webhook.ts";
import { baseDeps, capturingLog, type DeliveryOptions, delivery, fixture, SECRET } from "./helpers.ts";

const PUSH = fixture("push-main");
const PUSH_BEFORE = (PUSH as { before?: string }).before;
const COMMIT = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
const withPush = (over: Record<string, unknown>) => ({ ...PUSH, ...over });
const withRepo = (over: Record<string, unknown>) => ({ ...PUSH, repository: { ...(PUSH.repository as object), ...over } });

async function answer(body: string | object, o: DeliveryOptions = {}, depsOver: Partial<WebhookDeps> = {}) {
  const deps = baseDeps(depsOver);
  const res = await handleWebhook(await delivery(body, o), deps);
  return { res, json: JSON.parse(res.body) as Record<string, unknown>, calls: deps.calls };
}

describe("webhook: accepted deliveries", () => {
  it("a push to main starts the deploy execution for the mapped service and answers 202", async () => {
    const { res, json, calls } = await answer(PUSH, { deliveryId: "d-1" });
    expect(res.statusCode).toBe(202);
    expect(json).toMatchObject({
      service: "web",
      environment: "production",
      commit: COMMIT,
      executionArn: expect.stringContaining(":execution:kiln-deploy:web-0d1a26e67d8f-push"),
    });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual({
      input: {
        service: "web",
        environment: "production",
        commit: COMMIT,
        trigger: "push",
        // The configured spelling of the repository (the payload says Acme/web).
        repository: expect.stringMatching(/^acme\/web$/i),
        branch: "main",
        ...(PUSH_BEFORE ? { before: PUSH_BEFORE } : {}),
        pusher: "octocat",
        requestedBy: "github:octocat",
        deliveryId: "d-1",
      },
    });
  });

  it.each([
    ["main", "web", "production"],
    ["develop", "web", "staging"],
  ])("maps branch %s to %s/%s", async (branch, service, environment) => {
    const { res, json } = await answer(withPush({ ref: `refs/heads/${branch}` }));
    expect(res.statusCode).toBe(202);
    expect(json).toMatchObject({ service, environment });
  });

  it("answers ping with 200", async () => {
    const { res, json, calls } = await answer(fixture("ping"), { event: "ping" });
    expect(res.statusCode).toBe(200);
    expect(json).toEqual({ ok: true, zen: "Design for failure.", hookId: 489301672 });
    expect(calls).toHaveLength(0);
  });

  it("decodes a base64 body from a Function URL", async () => {
    const { res, calls } = await answer(PUSH, { base64: true });
    expect(res.statusCode).toBe(202);
    expect(calls).toHaveLength(1);
  });

  it("accepts application/json with a charset", async () => {
    const { res } = await answer(PUSH, { contentType: "application/json; charset=utf-8" });
    expect(res.statusCode).toBe(202);
  });

  it("verifies with the previous secret during a rotation", async () => {
    const { res } = await answer(PUSH, { secret: "old-secret" }, { secrets: async () => [SECRET, "old-secret"] });
    expect(res.statusCode).toBe(202);
  });

  it("re-reads a rotated secret once when the cached one does not match", async () => {
    const asked: boolean[] = [];
    const secrets = async (o?: { refresh?: boolean }) => {
      asked.push(Boolean(o?.refresh));
      return o?.refresh ? ["new-secret"] : [SECRET];
    };
    const { res } = await answer(PUSH, { secret: "new-secret" }, { secrets });
    expect(res.statusCode).toBe(202);
    expect(asked).toEqual([false, true]);
  });

  it("a monorepo push deploys every service mapped to the branch", async () => {
    const { routingFromConfig } = await import("../../../lib/webhook/routing.ts");
    const routing = routingFromConfig({
      services: {
        web: { repository: "acme/web", branches: { main: "production" } },
        worker: { repository: "acme/web", branches: { main: "production" } },
      },
    });
    const { res, json, calls } = await answer(PUSH, {}, { routing });
    expect(res.statusCode).toBe(202);
    expect(calls.map((c) => c.input.service)).toEqual(["web", "worker"]);
    expect(json).toMatchObject({ commit: COMMIT, deployments: [{ service: "web" }, { service: "worker" }] });
  });
});

describe("webhook: rejections start nothing", () => {
  const sha1Only = { "x-hub-signature-256": undefined, "x-hub-signature": "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6" };
  it.each<[string, string | object, DeliveryOptions, Partial<WebhookDeps>, number, string]>([
    ["missing signature", PUSH, { headers: { "x-hub-signature-256": undefined } }, {}, 401, "missing_signature"],
    ["wrong secret", PUSH, { secret: "not the secret" }, {}, 401, "bad_signature"],
    ["sha1 only (X-Hub-Signature)", PUSH, { headers: sha1Only }, {}, 401, "unsupported_signature"],
    [
      "sha1= in X-Hub-Signature-256",
      PUSH,
      { headers: { "x-hub-signature-256": "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6" } },
      {},
      401,
      "unsupported_signature",
    ],
    ["malformed signature", PUSH, { headers: { "x-hub-signature-256": "sha256=zz" } }, {}, 401, "bad_signature"],
    [
      "uppercase hex signature",
      PUSH,
      { headers: { "x-hub-signature-256": `sha256=${"A".repeat(64)}` } },
      {},
      401,
      "bad_signature",
    ],
    [
      "form-encoded payload=",
      `payload=${encodeURIComponent(JSON.stringify(PUSH))}`,
      { contentType: "application/x-www-form-urlencoded" },
      {},
      415,
      "unsupported_content_type",
    ],
    ["text/plain", PUSH, { contentType: "text/plain" }, {}, 415, "unsupported_content_type"],
    ["no content type", PUSH, { headers: { "content-type": undefined } }, {}, 415, "unsupported_content_type"],
    ["non-JSON body", "{not json", {}, {}, 400, "invalid_json"],
    ["JSON array", "[1,2]", {}, {}, 400, "invalid_payload"],
    ["body over the limit", PUSH, {}, { maxBodyBytes: 1024 }, 413, "payload_too_large"],
    ["base64 body over the limit", PUSH, { base64: true }, { maxBodyBytes: 1024 }, 413, "payload_too_large"],
    ["commit not 40 hex", withPush({ after: "0d1a26e" }), {}, {}, 400, "invalid_commit"],
    ["commit in uppercase", withPush({ after: COMMIT.toUpperCase() }), {}, {}, 400, "invalid_commit"],
    ["missing repository", { ...PUSH, repository: undefined }, {}, {}, 400, "invalid_payload"],
    ["missing event header", PUSH, { headers: { "x-github-event": undefined } }, {}, 400, "missing_event"],
    ["malformed delivery id", PUSH, { deliveryId: "../../etc" }, {}, 400, "bad_delivery_id"],
    ["GET", PUSH, { method: "GET" }, {}, 405, "method_not_allowed"],
  ])("%s → %i", async (_, body, o, d, status, error) => {
    const { res, json, calls } = await answer(body, o, d);
    expect(res.statusCode).toBe(status);
    expect(json).toMatchObject({ error, message: expect.any(String) });
    expect(calls).toHaveLength(0);
  });

  it("415 for form-encoded mode says how to switch", async () => {
    const { json } = await answer(`payload=${encodeURIComponent(JSON.stringify(PUSH))}`, {
      contentType: "application/x-www-form-urlencoded",
    });
    expect(json.message).toMatch(/application\/json/);
    expect(json.hint).toMatch(/Content type: application\/json/);
  });

  it("a tampered body fails verification", async () => {
    const req = await delivery(PUSH);
    req.body = (req.body as string).replace("octocat", "mallory");
    const deps = baseDeps();
    const res = await handleWebhook(req, deps);
    expect(res.statusCode).toBe(401);
    expect(deps.calls).toHaveLength(0);
  });

  it("an invalid base64 body is 400", async () => {
    const req = await delivery(PUSH);
    req.isBase64Encoded = true;
    req.body = "%%%not base64%%%";
    const deps = baseDeps();
    expect((await handleWebhook(req, deps)).statusCode).toBe(400);
    expect(deps.calls).toHaveLength(0);
  });

  it("kiln's own failure (SSM, Step Functions) answers 503 so GitHub can redeliver", async () => {
    const { res, json } = await answer(
      PUSH,
      {},
      { start: async () => Promise.reject(Object.assign(new Error("down"), { name: "ServiceUnavailable" })) },
    );
    expect(res.statusCode).toBe(503);
    expect(json).toMatchObject({ error: "unavailable" });
    const noSecret = await answer(PUSH, {}, { secrets: async () => Promise.reject(new Error("ParameterNotFound")) });
    expect(noSecret.res.statusCode).toBe(503);
    expect(noSecret.calls).toHaveLength(0);
  });
});

describe("webhook: ignored deliveries answer 202 with a reason", () => {
  it.each<[string, string | object, DeliveryOptions, RegExp]>([
    ["unknown event", { action: "opened" }, { event: "issues" }, /not handled/],
    ["tag push", fixture("push-tag"), {}, /tag push/],
    ["branch deletion", fixture("push-delete-branch"), {}, /deleted/],
    ["after all zeros without deleted flag", withPush({ after: "0".repeat(40), deleted: false }), {}, /deleted/],
    ["unmapped branch", withPush({ ref: "refs/heads/feature/x" }), {}, /no service deploys Acme\/web branch feature\/x/],
    ["unmapped repository", withRepo({ full_name: "Acme/other" }), {}, /no service deploys Acme\/other/],
    ["a note ref", withPush({ ref: "refs/notes/commits" }), {}, /not a branch/],
  ])("%s", async (_, body, o, reason) => {
    const { res, json, calls } = await answer(body, o);
    expect(res.statusCode).toBe(202);
    expect(json).toMatchObject({ ignored: true, reason: expect.stringMatching(reason) });
    expect(calls).toHaveLength(0);
  });

  it("matches the repository case-insensitively, like GitHub", async () => {
    const { res, calls } = await answer(withRepo({ full_name: "ACME/WEB" }));
    expect(res.statusCode).toBe(202);
    expect(calls).toHaveLength(1);
  });

  it("a branch named like an Object.prototype member does not match anything", async () => {
    const { json } = await answer(withPush({ ref: "refs/heads/constructor" }));
    expect(json).toMatchObject({ ignored: true });
  });
});

describe("webhook: logging", () => {
  it("never logs the secret or the signature", async () => {
    const log = capturingLog();
    const req = await delivery(PUSH);
    await handleWebhook(req, baseDeps({ log }));
    await handleWebhook(await delivery(PUSH, { secret: "wrong" }), baseDeps({ log }));
    const all = log.lines.join("\n");
    expect(log.lines.length).toBeGreaterThan(0);
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain((req.headers["x-hub-signature-256"] as string).slice(7));
  });
});
