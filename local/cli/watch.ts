/**
 * The CLI's following modes: `kiln push|deploy --watch` (one deployment to its end) and
 * `kiln status --watch` (the status, redrawn). Both poll through AWS APIs like every command; the
 * interval is wall time (an operator's terminal), and the sleep is injectable so tests drive it on
 * the stack's clock.
 */
import { readableCause } from "../../lib/ops/history.ts";
import { lockStatus } from "../../lib/ops/status.ts";
import { describeExecution } from "../../lib/ops/target.ts";
import { type ExecutionLog, formatStatus, formatStepLine, logs, type Out, resolveUnit, status } from "./commands.ts";
import { CliError, EXIT, type Target } from "./target.ts";

export interface WatchOpts {
  /** Between polls (default 2 s of wall time). */
  everyMs?: number;
  /** Waits `ms`; tests pass the stack clock's sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** Stops the watch (Ctrl-C): the loop ends after the current poll. */
  signal?: AbortSignal;
}

const wallSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Follows a started (or queued) deployment to its end, printing each step as it starts and ends.
 * Exit 0 when it SUCCEEDED, 1 when it FAILED, was ABORTED or TIMED_OUT (with the readable cause),
 * or when a queued request was replaced by a newer one before its turn.
 */
export async function follow(
  t: Target,
  execution: { arn: string; queued?: { unit: { service: string; environment: string } } },
  out: Out,
  opts: WatchOpts = {},
): Promise<number> {
  const sleep = opts.sleep ?? wallSleep;
  const every = opts.everyMs ?? 2_000;
  const name = execution.arn.split(":").at(-1)!;
  let said = "";
  // A queued request has no execution yet: it starts when the holder releases the lock.
  while (!(await describeExecution(t.clients.sfn, execution.arn))) {
    if (opts.signal?.aborted) return EXIT.ok;
    const unit = execution.queued?.unit;
    if (!unit || !t.tables.LockTable) throw new CliError(`no execution ${execution.arn}`, EXIT.notFound);
    const lock = await lockStatus(unit, t.clients.dynamodb, t.tables.LockTable);
    if (lock.queued?.name !== name) {
      out(`${name} did not start: ${lock.queued ? `replaced in the queue by ${lock.queued.name}` : "it left the queue"}`);
      return EXIT.failed;
    }
    const holder = lock.holder?.name ?? lock.holder?.executionArn ?? "the lock's holder";
    if (said !== holder) out(`queued behind ${holder}`);
    said = holder;
    await sleep(every);
  }
  out(`following ${execution.arn}`);
  const shown: string[] = [];
  for (;;) {
    const l: ExecutionLog = await logs(t, execution.arn);
    // A line is printed when its step starts and again when it ends (not at every poll of a loop).
    l.steps.forEach((s, i) => {
      const key = `${s.state}|${s.start}|${s.outcome}`;
      if (shown[i] !== key) out(formatStepLine(s));
      shown[i] = key;
    });
    if (l.status !== "RUNNING" && l.status !== "PENDING_REDRIVE") {
      out(`${l.status} ${execution.arn}`);
      if (l.status === "SUCCEEDED") return EXIT.ok;
      const cause = l.error ? readableCause(l.error, l.cause) : lastCause(l);
      if (cause) out(`  cause: ${cause}`);
      return EXIT.failed;
    }
    if (opts.signal?.aborted) return EXIT.ok;
    await sleep(every);
  }
}

function lastCause(l: ExecutionLog): string | undefined {
  return [...l.steps].reverse().find((s) => s.cause)?.cause;
}

/** ANSI: cursor home + clear screen, the redraw of a TTY watch. */
export const CLEAR = "\x1b[H\x1b[2J";

/** Where `status --watch` writes: a TTY is redrawn in place, anything else gets successive snapshots. */
export interface WatchStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

/**
 * `kiln status --watch`: on a TTY, clears and redraws every interval; otherwise prints a snapshot
 * only when it changed (a blank line between snapshots), or with `json` one JSON object per line
 * per change. Runs until `signal` aborts (Ctrl-C).
 */
export async function watchStatus(
  t: Target,
  service: string | undefined,
  opts: WatchOpts & { env?: string; json?: boolean; stream: WatchStream },
): Promise<number> {
  if (service) resolveUnit(service, opts.env);
  const sleep = opts.sleep ?? wallSleep;
  const every = opts.everyMs ?? 2_000;
  let last: string | undefined;
  while (!opts.signal?.aborted) {
    const s = await status(t, service, opts.env);
    const lines: string[] = [];
    if (opts.json) lines.push(JSON.stringify(s));
    else formatStatus(s, (l) => lines.push(l));
    const text = lines.join("\n");
    if (opts.stream.isTTY && !opts.json) opts.stream.write(`${CLEAR}${text}\n\n(every ${every / 1000} s · Ctrl-C to stop)\n`);
    else if (text !== last) opts.stream.write(`${last !== undefined && !opts.json ? "\n" : ""}${text}\n`);
    last = text;
    if (opts.signal?.aborted) break;
    await sleep(every);
  }
  return EXIT.ok;
}
