/**
 * kiln's structured log: JSON lines, one per event, as CloudWatch Logs indexes them. Used by the
 * webhook, the pager and the lock; every handler's failures go through lib/handler.ts.
 */

/** Minimal structured logger (console-compatible). Never pass secrets or signatures. */
export interface Log {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** JSON lines on stdout/stderr (what CloudWatch Logs indexes). */
const LEVELS = { info: 0, warn: 1, error: 2, silent: 3 } as const;
/** `KILN_LOG_LEVEL` (info | warn | error | silent; default info) — the local stack's terminal uses warn. */
const enabled = (level: "info" | "warn" | "error") =>
  LEVELS[level] >= (LEVELS[(process.env.KILN_LOG_LEVEL ?? "info") as keyof typeof LEVELS] ?? 0);

export const jsonLog: Log = {
  info: (msg, fields) => enabled("info") && console.log(JSON.stringify({ level: "info", msg, ...fields })),
  warn: (msg, fields) => enabled("warn") && console.warn(JSON.stringify({ level: "warn", msg, ...fields })),
  error: (msg, fields) => enabled("error") && console.error(JSON.stringify({ level: "error", msg, ...fields })),
};

export const silentLog: Log = { info() {}, warn() {}, error() {} };
