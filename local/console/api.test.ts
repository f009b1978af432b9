import { describe, expect, it } from "vitest";
import { ConsoleRequestError, checkSameOrigin, parseActionRequest, parseExecutionArn, type RequestFacts } from "./api.ts";

const DEPLOY = "arn:aws:states:us-east-1:123456789012:stateMachine:kiln-local-deploy";
const ABORT = "arn:aws:states:us-east-1:123456789012:stateMachine:kiln-local-abort";
const MACHINES = { deploy: DEPLOY, abort: ABORT };
const EXEC = "arn:aws:states:us-east-1:123456789012:execution:kiln-local-deploy:web-0123456789ab-push";
const ABORT_EXEC = "arn:aws:states:us-east-1:123456789012:execution:kiln-local-abort:web-abort-x1";

function refused(fn: () => unknown): { status: number; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConsoleRequestError) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("parseActionRequest", () => {
  it.each<[{ action: string; execution: string; reason?: string }]>([
    [{ action: "redrive", execution: EXEC }],
    [{ action: "approve", execution: EXEC }],
    [{ action: "abort", execution: EXEC }],
    [{ action: "reject", execution: EXEC, reason: "  wrong commit  " }],
    [{ action: "redrive", execution: ABORT_EXEC }],
  ])("accepts %j", (body) => {
    const r = parseActionRequest(JSON.stringify(body), MACHINES);
    expect(r).toEqual({ ...body, ...(body.reason ? { reason: body.reason.trim() } : {}) });
  });

  it.each([
    ["not JSON", "{action: redrive}", 400, /not JSON/],
    ["an unknown action", JSON.stringify({ action: "delete", execution: EXEC }), 400, /action/],
    ["no execution", JSON.stringify({ action: "redrive" }), 400, /execution/],
    [
      "an execution name instead of an ARN",
      JSON.stringify({ action: "redrive", execution: "web-0123-push" }),
      400,
      /execution: must be an execution ARN/,
    ],
    ["a state machine ARN", JSON.stringify({ action: "redrive", execution: DEPLOY }), 400, /execution ARN/],
    ["markup in the ARN", JSON.stringify({ action: "redrive", execution: `${EXEC}<script>` }), 400, /execution ARN/],
    ["an extra field", JSON.stringify({ action: "redrive", execution: EXEC, sudo: true }), 400, /sudo|unrecognized/i],
    [
      "force on an approval",
      JSON.stringify({ action: "approve", execution: EXEC, force: true }),
      400,
      /force is only taken when redriving/,
    ],
    [
      "a force that is not a boolean",
      JSON.stringify({ action: "redrive", execution: EXEC, force: "yes" }),
      400,
      /force|boolean/i,
    ],
    [
      "a reason on redrive",
      JSON.stringify({ action: "redrive", execution: EXEC, reason: "x" }),
      400,
      /only taken when rejecting/,
    ],
    ["an empty reason", JSON.stringify({ action: "reject", execution: EXEC, reason: "   " }), 400, /reason/],
    ["a 501-character reason", JSON.stringify({ action: "reject", execution: EXEC, reason: "x".repeat(501) }), 400, /reason/],
    ["an array body", JSON.stringify([{ action: "redrive", execution: EXEC }]), 400, /invalid request/],
    [
      "an execution of another stack's machine",
      JSON.stringify({ action: "redrive", execution: EXEC.replace("kiln-local-deploy", "other-deploy") }),
      404,
      /not an execution of this stack/,
    ],
    [
      "approving a non-deployment",
      JSON.stringify({ action: "approve", execution: ABORT_EXEC }),
      400,
      /only deployments can be approved/,
    ],
    ["aborting an abort", JSON.stringify({ action: "abort", execution: ABORT_EXEC }), 400, /only deployments can be aborted/],
  ])("refuses %s", (_what, body, status, message) => {
    const r = refused(() => parseActionRequest(body, MACHINES));
    expect(r.status).toBe(status);
    expect(r.message).toMatch(message);
  });
});

describe("parseExecutionArn", () => {
  it("returns a valid ARN", () => expect(parseExecutionArn(EXEC)).toBe(EXEC));
  it.each([[null], [""], ["web-0123"], [`${EXEC}/../x`]])("refuses %j", (v) => {
    expect(refused(() => parseExecutionArn(v)).status).toBe(400);
  });
});

describe("checkSameOrigin", () => {
  const HOSTS = ["127.0.0.1:4100", "localhost:4100"];
  const post: RequestFacts = {
    method: "POST",
    host: "127.0.0.1:4100",
    origin: "http://127.0.0.1:4100",
    fetchSite: "same-origin",
    contentType: "application/json",
  };

  it.each<[string, RequestFacts]>([
    ["a page load", { method: "GET", host: "127.0.0.1:4100" }],
    ["a link followed from another site", { method: "GET", host: "localhost:4100", fetchSite: "cross-site" }],
    ["a same-origin POST", post],
    [
      "a POST from a client that sends no Origin (curl)",
      { method: "POST", host: "127.0.0.1:4100", contentType: "application/json; charset=utf-8" },
    ],
  ])("lets %s through", (_what, req) => {
    expect(() => checkSameOrigin(req, HOSTS)).not.toThrow();
  });

  it.each<[string, RequestFacts, number]>([
    ["a rebound DNS name in Host", { method: "GET", host: "evil.example:4100" }, 421],
    ["no Host", { method: "GET" }, 421],
    ["a POST from another origin", { ...post, origin: "http://evil.example" }, 403],
    ["a POST from another port of this host", { ...post, origin: "http://127.0.0.1:9999" }, 403],
    ["a cross-site POST without Origin", { ...post, origin: undefined, fetchSite: "cross-site" }, 403],
    ["a form post", { ...post, contentType: "application/x-www-form-urlencoded" }, 415],
    ["a text/plain post", { ...post, contentType: "text/plain" }, 415],
    ["a POST without a content type", { ...post, contentType: undefined }, 415],
  ])("refuses %s", (_what, req, status) => {
    expect(refused(() => checkSameOrigin(req, HOSTS)).status).toBe(status);
  });
});
