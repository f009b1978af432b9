import { GetParameterCommand } from "@aws-sdk/client-ssm";
import type { Clock } from "../clock.ts";
import { ConfigInvalidError } from "../errors.ts";

/** The SSM surface used (an `SSMClient`, or a fake in tests). */
export interface SsmSender {
  send(command: any): Promise<any>;
}

/** Default time a decrypted parameter is reused (Lambda keeps the module warm between invocations). */
export const DEFAULT_SECRET_TTL_MS = 5 * 60_000;

/**
 * Decrypted SSM SecureString values cached in the module with a TTL, so a warm Lambda does not
 * call GetParameter for every request and a rotated secret is picked up within the TTL. Values are
 * never logged. Concurrent misses share one request.
 */
export class SecureParameterCache {
  private readonly cache = new Map<string, { value: string; at: number }>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly ssm: SsmSender,
    private readonly clock: Pick<Clock, "now">,
    private readonly ttlMs = DEFAULT_SECRET_TTL_MS,
  ) {}

  /** The parameter's decrypted value; `maxAgeMs` forces a refresh of an older cached value. */
  async get(name: string, opts: { maxAgeMs?: number } = {}): Promise<string> {
    const hit = this.cache.get(name);
    const maxAge = Math.min(opts.maxAgeMs ?? this.ttlMs, this.ttlMs);
    if (hit && this.clock.now() - hit.at < maxAge) return hit.value;
    let p = this.inflight.get(name);
    if (!p) {
      p = this.fetch(name).finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    return p;
  }

  /** Age of the cached value in ms (Infinity when not cached). */
  age(name: string): number {
    const hit = this.cache.get(name);
    return hit ? this.clock.now() - hit.at : Number.POSITIVE_INFINITY;
  }

  private async fetch(name: string): Promise<string> {
    try {
      const r = await this.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      const value = r.Parameter?.Value;
      if (typeof value !== "string" || value === "") throw new ConfigInvalidError(`SSM parameter ${name} is empty`);
      this.cache.set(name, { value, at: this.clock.now() });
      return value;
    } catch (err) {
      if ((err as Error).name === "ParameterNotFound") {
        throw new ConfigInvalidError(`SSM parameter ${name} does not exist: create it as a SecureString`, { cause: err });
      }
      throw err;
    }
  }
}
