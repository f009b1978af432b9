import type { Clock } from "../clock.ts";

/** The fetch surface used; tests inject one that captures the calls. */
export type Fetch = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string },
) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

export interface RetryPolicy {
  /** Attempts in total (first try included). */
  attempts: number;
  baseMs: number;
  maxMs: number;
}

/**
 * Bounded so a page goes out (or the invocation fails and Lambda's own async retries take over)
 * well within the pager Lambda's timeout: at most ~15 s of waiting.
 */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 500, maxMs: 8_000 };

/** A delivery that failed: `permanent` when retrying cannot help (the endpoint rejected the message). */
export class DeliveryError extends Error {
  override readonly name = "kiln.DeliveryFailed";
  constructor(
    message: string,
    readonly permanent: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * POSTs JSON with retries: network errors, 429 and 5xx are retried with exponential backoff and
 * full jitter on the shared clock (honouring `Retry-After`, capped); other 4xx fail at once as
 * permanent. Returns the response body of the accepted request.
 */
export async function postJson(
  url: string,
  body: unknown,
  deps: { fetch: Fetch; clock: Pick<Clock, "sleep">; retry?: RetryPolicy; random?: () => number; what: string },
): Promise<{ status: number; body: string; attempts: number }> {
  const policy = deps.retry ?? DEFAULT_RETRY;
  const random = deps.random ?? Math.random;
  let last = "";
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    let retryAfterMs: number | undefined;
    try {
      const res = await deps.fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const text = await res.text().catch(() => "");
      if (res.status >= 200 && res.status < 300) return { status: res.status, body: text, attempts: attempt };
      last = `HTTP ${res.status} ${text.slice(0, 200)}`;
      if (res.status !== 429 && res.status < 500) throw new DeliveryError(`${deps.what}: rejected (${last})`, true);
      const ra = Number(res.headers.get("retry-after"));
      if (Number.isFinite(ra) && ra > 0) retryAfterMs = Math.min(ra * 1000, policy.maxMs);
    } catch (err) {
      if (err instanceof DeliveryError) throw err;
      last = `${(err as Error)?.name ?? "Error"}: ${(err as Error)?.message ?? String(err)}`;
    }
    if (attempt < policy.attempts) {
      const backoff = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
      await deps.clock.sleep(retryAfterMs ?? Math.round(backoff * random()));
    }
  }
  throw new DeliveryError(`${deps.what}: gave up after ${policy.attempts} attempts (${last})`, false);
}
