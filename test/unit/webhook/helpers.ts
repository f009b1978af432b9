import { readFileSync } from "node:fs";
import { sign } from "@octokit/webhooks-methods";
import type { DeployRequest, StartOrQueueResult } from "../../../lib/lock/lock.ts";
import type { Log } from "../../../lib/log.ts";
import { routingFromConfig } from "../../../lib/webhook/routing.ts";
import type { WebhookDeps, WebhookRequest } from "../../../lib/webhook/webhook.ts";

export const SECRET = "It's a Secret to Everybody";

export function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), "utf8"));
}

export const routing = routingFromConfig({
  services: {
    web: { repository: "acme/web", branches: { main: "production", develop: "staging" } },
    api: { repository: "Acme/api", branches: { main: "production" } },
  },
});

export interface DeliveryOptions {
  event?: string;
  secret?: string;
  contentType?: string;
  deliveryId?: string;
  base64?: boolean;
  /** Replace the computed signature headers. */
  headers?: Record<string, string | undefined>;
  method?: string;
}

let seq = 0;

/** A webhook request as a Function URL delivers it, signed like GitHub signs it. */
export async function delivery(body: string | object, o: DeliveryOptions = {}): Promise<WebhookRequest> {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  const headers: Record<string, string | undefined> = {
    "content-type": o.contentType ?? "application/json",
    "user-agent": "GitHub-Hookshot/a1b2c3d",
    "x-github-event": o.event ?? "push",
    "x-github-delivery": o.deliveryId ?? `72d3162e-cc78-11e3-81ab-4c9367dc${String(++seq).padStart(4, "0")}`,
    "x-github-hook-id": "489301672",
    "x-hub-signature-256": raw ? await sign(o.secret ?? SECRET, raw) : undefined,
    ...o.headers,
  };
  return {
    method: o.method ?? "POST",
    headers,
    body: o.base64 ? Buffer.from(raw, "utf8").toString("base64") : raw,
    isBase64Encoded: o.base64 ?? false,
  };
}

/** Records every start; answers as if the lock were free. */
export function recordingStart() {
  const calls: DeployRequest[] = [];
  const start = async (req: DeployRequest): Promise<StartOrQueueResult> => {
    calls.push(req);
    return {
      action: "started",
      executionArn: `arn:aws:states:us-east-1:123456789012:execution:kiln-deploy:${req.input.service}-${req.input.commit.slice(0, 12)}-push`,
      name: `${req.input.service}-${req.input.commit.slice(0, 12)}-push`,
      duplicate: false,
    };
  };
  return { calls, start };
}

export function capturingLog(): Log & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    void lines.push(JSON.stringify({ level, msg, ...fields }));
  return { lines, info: rec("info"), warn: rec("warn"), error: rec("error") };
}

export function baseDeps(over: Partial<WebhookDeps> = {}): WebhookDeps & { calls: DeployRequest[] } {
  const { calls, start } = recordingStart();
  return { secrets: async () => [SECRET], routing, start, calls, ...over } as WebhookDeps & { calls: DeployRequest[] };
}
