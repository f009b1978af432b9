/**
 * One health check of one target: in process through the app's `request()` on the cloud clock
 * (virtual time), or a real HTTP GET to the app's loopback port (scaled and real time).
 */
import http from "node:http";
import type { Clock } from "../../../../lib/clock.ts";
import type { SimInstance } from "../../contracts.ts";
import type { HealthCheck } from "./model.ts";

export interface CheckResult {
  ok: boolean;
  /** Failure reason code (`Target.ResponseCodeMismatch`, `Target.Timeout`, `Target.FailedHealthChecks`). */
  reason?: string;
  /** Status code that failed the matcher. */
  code?: number;
}

/** True when `status` satisfies an ALB matcher: `200`, `200,202`, `200-299`. */
export function matches(matcher: string, status: number): boolean {
  return matcher.split(",").some((part) => {
    const [lo, hi] = part.trim().split("-").map(Number);
    if (lo === undefined || Number.isNaN(lo)) return false;
    return hi === undefined ? status === lo : status >= lo && status <= (Number.isNaN(hi) ? lo : hi);
  });
}

/** Runs one check against an instance's app. An instance that is not running times out (nothing answers). */
export async function probe(
  clock: Clock,
  hc: HealthCheck,
  instance: SimInstance | undefined,
  real: boolean,
): Promise<CheckResult> {
  const timeoutMs = hc.timeoutSeconds * 1000;
  const app = instance?.state === "running" ? instance.app : undefined;
  if (!app) {
    await clock.sleep(timeoutMs);
    return { ok: false, reason: "Target.Timeout" };
  }
  if (real && app.port > 0) return realProbe(clock, hc, app.port, timeoutMs);
  let res: { status: number; latencyMs: number };
  try {
    res = await app.request(hc.path);
  } catch {
    return { ok: false, reason: "Target.FailedHealthChecks" };
  }
  if (res.latencyMs >= timeoutMs) {
    await clock.sleep(timeoutMs);
    return { ok: false, reason: "Target.Timeout" };
  }
  if (res.latencyMs > 0) await clock.sleep(res.latencyMs);
  return judge(hc, res.status);
}

function judge(hc: HealthCheck, status: number): CheckResult {
  return matches(hc.matcher, status) ? { ok: true } : { ok: false, reason: "Target.ResponseCodeMismatch", code: status };
}

function realProbe(clock: Clock, hc: HealthCheck, port: number, timeoutMs: number): Promise<CheckResult> {
  const work = new Promise<CheckResult>((resolve) => {
    let done = false;
    const finish = (r: CheckResult) => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      resolve(r);
    };
    const req = http.get(
      {
        host: "127.0.0.1",
        port,
        path: hc.path,
        agent: false,
        headers: { "user-agent": "ELB-HealthChecker/2.0", connection: "close" },
      },
      (res) => {
        res.resume();
        res.on("end", () => finish(judge(hc, res.statusCode ?? 0)));
        res.on("error", () => finish({ ok: false, reason: "Target.FailedHealthChecks" }));
      },
    );
    // The timeout runs on the cloud clock, so a scaled clock shortens it like every other duration.
    const timer = clock.setTimeout(() => {
      req.destroy();
      finish({ ok: false, reason: "Target.Timeout" });
    }, timeoutMs);
    req.on("error", () => finish({ ok: false, reason: "Target.FailedHealthChecks" }));
  });
  return clock.hold(work);
}
