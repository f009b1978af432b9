/** Property-based: whatever arrives, the webhook answers (never throws) and starts nothing unless the delivery is valid. */
import { sign } from "@octokit/webhooks-methods";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { handleWebhook } from "../../../lib/webhook/webhook.ts";
import { baseDeps, fixture, SECRET } from "./helpers.ts";

const PUSH = fixture("push-main");
const STATUSES = new Set([200, 202, 400, 401, 405, 413, 415]);
const headerNames = [
  "content-type",
  "x-github-event",
  "x-github-delivery",
  "x-hub-signature-256",
  "x-hub-signature",
  "Content-Type",
  "X-Hub-Signature-256",
];

const anyHeaders = fc.dictionary(
  fc.oneof(fc.constantFrom(...headerNames), fc.string({ maxLength: 20 })),
  fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.constantFrom("push", "ping", "application/json", "sha256=", `sha256=${"0".repeat(64)}`, "sha1=abc"),
  ),
  { maxKeys: 8 },
);

describe("webhook properties", () => {
  it("arbitrary unsigned requests: an answer, never a start", async () => {
    await fc.assert(
      fc.asyncProperty(
        anyHeaders,
        fc.oneof(fc.string({ maxLength: 300 }), fc.json({ maxDepth: 3 }), fc.constant(JSON.stringify(PUSH))),
        fc.boolean(),
        fc.option(fc.constantFrom("POST", "GET", "PUT", "post"), { nil: undefined }),
        async (headers, body, isBase64Encoded, method) => {
          const deps = baseDeps();
          const res = await handleWebhook({ headers, body, isBase64Encoded, ...(method ? { method } : {}) }, deps);
          expect(STATUSES.has(res.statusCode)).toBe(true);
          expect(() => JSON.parse(res.body)).not.toThrow();
          expect(deps.calls).toHaveLength(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("validly signed arbitrary JSON: only a well-formed push to a mapped branch starts, and only with its own commit", async () => {
    await fc.assert(
      fc.asyncProperty(fc.json({ maxDepth: 4 }), fc.constantFrom("push", "ping", "issues", "release"), async (body, event) => {
        const deps = baseDeps();
        const res = await handleWebhook(
          {
            headers: {
              "content-type": "application/json",
              "x-github-event": event,
              "x-hub-signature-256": await sign(SECRET, body),
            },
            body,
          },
          deps,
        );
        expect(STATUSES.has(res.statusCode)).toBe(true);
        // Random JSON is never a push to a mapped repository with a 40-hex commit.
        expect(deps.calls).toHaveLength(0);
      }),
      { numRuns: 300 },
    );
  });

  it("signed mutations of a real push start iff ref, commit and repository are valid and mapped", async () => {
    const refs = fc.oneof(
      fc.constantFrom("refs/heads/main", "refs/heads/develop", "refs/heads/feature", "refs/tags/v1", "main", ""),
      fc.string({ maxLength: 30 }),
    );
    const afters = fc.oneof(
      fc.constantFrom("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "0".repeat(40), "0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C"),
      fc.stringMatching(/^[0-9a-f]{38,42}$/),
      fc.string({ maxLength: 45 }),
    );
    const names = fc.oneof(fc.constantFrom("Acme/web", "acme/WEB", "Acme/api", "Acme/other", ""), fc.string({ maxLength: 20 }));
    await fc.assert(
      fc.asyncProperty(
        refs,
        afters,
        names,
        fc.option(fc.boolean(), { nil: undefined }),
        async (ref, after, fullName, deleted) => {
          const payload = { ...PUSH, ref, after, deleted, repository: { ...(PUSH.repository as object), full_name: fullName } };
          const body = JSON.stringify(payload);
          const deps = baseDeps();
          const res = await handleWebhook(
            {
              headers: {
                "content-type": "application/json",
                "x-github-event": "push",
                "x-hub-signature-256": await sign(SECRET, body),
              },
              body,
            },
            deps,
          );
          const branch = ref.startsWith("refs/heads/") ? ref.slice(11) : undefined;
          const mapped =
            (fullName.toLowerCase() === "acme/web" && (branch === "main" || branch === "develop")) ||
            (fullName.toLowerCase() === "acme/api" && branch === "main");
          const valid =
            mapped && deleted !== true && /^[0-9a-f]{40}$/.test(after) && after !== "0".repeat(40) && fullName.length >= 3;
          expect(deps.calls.length > 0).toBe(valid);
          if (valid) {
            expect(res.statusCode).toBe(202);
            expect(deps.calls[0]!.input.commit).toBe(after);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
