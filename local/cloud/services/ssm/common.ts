/** Small helpers shared by the SSM actions: pagination tokens, ids, attribute maps for faults. */
import type { Cloud } from "../../cloud.ts";
import type { SimInstance } from "../../contracts.ts";
import { AwsError } from "../../protocol/errors.ts";

/**
 * One page of `items` from an opaque `NextToken`. Tokens encode the offset; a token SSM did not
 * issue is rejected with `InvalidNextToken` as the real service does.
 */
export function paginate<T>(items: T[], maxResults: number, nextToken: string | undefined): { page: T[]; next?: string } {
  let offset = 0;
  if (nextToken) {
    const m = /^kiln:(\d+)$/.exec(Buffer.from(nextToken, "base64").toString("utf8"));
    if (!m) throw new AwsError("InvalidNextToken", "The specified token isn't valid.");
    offset = Number(m[1]);
  }
  const page = items.slice(offset, offset + maxResults);
  const end = offset + page.length;
  return { page, next: end < items.length ? Buffer.from(`kiln:${end}`).toString("base64") : undefined };
}

/** A UUIDv4 from the cloud's seeded source (command ids must be reproducible run to run). */
export function seededUuid(cloud: Cloud): string {
  const h = cloud.hex(32);
  const variant = ((Number.parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Attributes a fault rule can select an instance by: `instanceId`, every tag under its own key and
 * under `tag:<key>` (so `{kind:"ssm-agent", "tag:kiln:role":"green"}` works).
 */
export function instanceAttrs(inst: SimInstance | undefined, instanceId: string): Record<string, unknown> {
  const attrs: Record<string, unknown> = {};
  for (const [k, v] of inst?.tags ?? []) {
    attrs[k] = v;
    attrs[`tag:${k}`] = v;
  }
  attrs.instanceId = instanceId;
  return attrs;
}

export const INSTANCE_ID = /^(i-[0-9a-f]{8}|i-[0-9a-f]{17}|mi-[0-9a-f]{17})$/;

/** ISO-8601 duration as GetCommandInvocation reports ExecutionElapsedTime (`PT12.345S`). */
export function isoDuration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s - h * 3600 - m * 60;
  return `PT${h ? `${h}H` : ""}${m ? `${m}M` : ""}${Number(sec.toFixed(3))}S`;
}
