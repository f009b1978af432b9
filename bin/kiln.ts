/**
 * kiln — bake AMIs and roll EC2 fleets blue/green with Step Functions.
 *
 * Exit codes: 0 success · 1 the operation or deployment failed · 2 bad arguments ·
 * 3 unknown service or execution · 4 no local stack running.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseClock } from "../lib/clock.ts";
import {
  abort,
  decide,
  deploy,
  formatLogs,
  formatStatus,
  formatSteps,
  logs,
  push,
  redrive,
  resolveUnit,
  rollback,
  rotate,
  status,
} from "../local/cli/commands.ts";
import { formatLeaks, leaks } from "../local/cli/leaks.ts";
import { runCloud, runConsole, runStart, runUp } from "../local/cli/run.ts";
import { awsTarget, CliError, EXIT, localTarget, type Target } from "../local/cli/target.ts";
import { follow, watchStatus, type WatchOpts, type WatchStream } from "../local/cli/watch.ts";

/** Aborted on the first Ctrl-C (or SIGTERM): a watch ends after its current poll and exits cleanly. */
function interrupted(): AbortSignal {
  const c = new AbortController();
  const stop = () => c.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  c.signal.addEventListener("abort", () => {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  });
  return c.signal;
}

const USAGE = `usage: kiln <command> [options]

Local stack (the embedded default — no AWS account needed):
  start [--once] [--clock scaled:N] [--bad-commit]   boot the stack, seed the example service, push a commit
                                                     and show the deployment live (npm start)
  up [--port N] [--clock C] [--no-seed]              run the local stack (cloud, engine, functions, console)
  cloud [--port 4566] [--clock virtual|scaled:N|real] [--scenario file]
                                                     run the simulated AWS cloud alone

Operations (against the local stack, or AWS with --profile/--region):
  console [--port N]                   the web console (executions, graph, history, approve/abort/redrive)
  deploy <service> --commit <sha> [--env E] [--reason text] [--watch]
                                       request a deployment of a commit: it joins the same queue as a push
                                       (--watch: follow it, queued then started, to its end: exit 0 SUCCEEDED,
                                       1 FAILED/ABORTED/TIMED_OUT with the cause)
  push <service> [--commit sha] [--env E | --branch b] [--watch]
                                       send a signed GitHub push webhook (local stack); --watch as for deploy
  status [service] [--env E] [--json] [--watch [--interval S]]
                                       live commit, traffic, fleets, lock holder and queued request, recent
                                       executions (a canary step n/m with its weight); --watch redraws a
                                       terminal every S wall seconds (default 2), prints a snapshot per change
                                       when piped (--json: one object per line), Ctrl-C stops
  history <service> [--env E] [--json] recent deployments of a service's environment
  logs <execution | service [--env E]> [--raw] [--json]
                                       one line per step (start, duration, outcome; polling loops folded
                                       with a count; causes as text); a service means its newest deployment;
                                       --raw: the history events as recorded
  approve <execution>                  approve a deployment waiting at its approval gate
  reject <execution> [--reason text]   reject it (traffic stays on blue)
  abort <execution | service [--env E]> [--reason text]
                                       restore blue, remove green, release the lock
  redrive <execution> [--force]        retry a failed execution from the failed step (--force: even
                                       when its commit failed the canary, which is re-judged on fresh traffic)
  rollback <service> [--env E] [--reason text]
                                       return to the previous fleet within its fast-rollback window
  rotate <service> [--env E]           rebake the live commit on the newest base AMI if due
  leaks [--json]                       kiln-tagged resources outside policy (exit 1 when any are listed)

--env defaults to the service's \`production\` environment, else its only one.
Options: --json  --profile P  --region R  --stage S  -h/--help  -V/--version
Exit codes: 0 ok · 1 failed or refused · 2 bad arguments · 3 unknown or finished service/environment/execution
            (nothing was started) · 4 no local stack`;

const OPTIONS = {
  json: { type: "boolean" },
  once: { type: "boolean" },
  "bad-commit": { type: "boolean" },
  "no-seed": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  port: { type: "string" },
  clock: { type: "string" },
  scenario: { type: "string" },
  commit: { type: "string" },
  branch: { type: "string" },
  reason: { type: "string" },
  profile: { type: "string" },
  region: { type: "string" },
  stage: { type: "string" },
  service: { type: "string" },
  env: { type: "string" },
  force: { type: "boolean" },
  watch: { type: "boolean" },
  raw: { type: "boolean" },
  interval: { type: "string" },
  version: { type: "boolean", short: "V" },
} as const;

/** The usage lines of one command (`kiln <command> --help`), or undefined for an unknown one. */
export function commandUsage(command: string): string | undefined {
  const lines = USAGE.split("\n");
  // The command is what the user typed: compared as text, never made into a pattern.
  const at = lines.findIndex((l) => l.startsWith("  ") && l.slice(2).split(" ")[0] === command);
  if (at < 0) return undefined;
  let end = at + 1;
  while (end < lines.length && /^ {20,}\S/.test(lines[end]!)) end++;
  return [`usage: kiln ${lines[at]!.trim().replace(/\s{2,}.*$/, "")}`, "", ...lines.slice(at, end), "", ...lines.slice(-4)].join(
    "\n",
  );
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return `kiln ${pkg.version}`;
}

const REMOTE_COMMANDS = new Set([
  "console",
  "deploy",
  "push",
  "status",
  "history",
  "logs",
  "approve",
  "reject",
  "abort",
  "redrive",
  "rollback",
  "rotate",
  "leaks",
]);

/** `target` replaces the stack the CLI would find (tests drive the CLI against a target they built). */
export async function main(
  argv: string[],
  out: (line: string) => void = (l) => console.log(l),
  opts: {
    target?: Target;
    /** `status --watch` writes here (default stdout; tests pass a fake TTY). */
    stream?: WatchStream;
    /** The watches' sleep and stop signal (tests drive them on the stack's clock). */
    watch?: Pick<WatchOpts, "sleep" | "signal">;
  } = {},
): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    // Node's parseArgs text ("To specify a positional argument starting with a '-'…") is not ours.
    const e = err as Error & { code?: string };
    const what = /option '([^']+)'/.exec(e.message)?.[1];
    const cmd = argv.find((a) => !a.startsWith("-"));
    const help = cmd && commandUsage(cmd) ? `kiln ${cmd} --help` : "kiln --help";
    if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && what) console.error(`kiln: unknown option ${what} (see ${help})`);
    else if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE")
      console.error(`kiln: ${e.message.replace(/^Option /, "option ")} (see ${help})`);
    else console.error(`kiln: ${e.message} (see ${help})`);
    return EXIT.usage;
  }
  const { values: v, positionals } = parsed;
  const [command, arg] = positionals;
  if (v.version) {
    out(version());
    return EXIT.ok;
  }
  if (v.help || !command) {
    out((command && commandUsage(command)) || USAGE);
    return command || v.help ? EXIT.ok : EXIT.usage;
  }
  if (v.clock !== undefined) {
    try {
      parseClock(v.clock);
    } catch (err) {
      console.error(`kiln: --clock: ${(err as Error).message}`);
      return EXIT.usage;
    }
  }
  const port = v.port === undefined ? undefined : Number(v.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) {
    console.error(`kiln: --port must be a port number, got ${v.port}`);
    return EXIT.usage;
  }
  const interval = v.interval === undefined ? undefined : Number(v.interval);
  if (interval !== undefined && !(Number.isFinite(interval) && interval >= 0.1 && interval <= 3600)) {
    console.error(`kiln: --interval must be a number of seconds between 0.1 and 3600, got ${v.interval}`);
    return EXIT.usage;
  }
  if ((v.watch || v.interval !== undefined) && command && !["status", "push", "deploy"].includes(command)) {
    console.error(`kiln: --watch applies to status, push and deploy (see kiln ${command} --help)`);
    return EXIT.usage;
  }
  const watchOpts: WatchOpts = { ...(interval !== undefined ? { everyMs: interval * 1000 } : {}), ...opts.watch };
  try {
    switch (command) {
      case "start":
        return await runStart({
          once: Boolean(v.once),
          clock: v.clock,
          badCommit: Boolean(v["bad-commit"]),
          service: v.service,
          port,
          out,
        });
      case "up":
        return await runUp({ port, clock: v.clock, seed: !v["no-seed"], out });
      case "cloud":
        return await runCloud({ port: port ?? 4566, clock: v.clock ?? "real", scenario: v.scenario, out });
    }
    if (!REMOTE_COMMANDS.has(command)) {
      console.error(`kiln: unknown command "${command}"\n\n${USAGE}`);
      return EXIT.usage;
    }
    const target: Target =
      opts.target ??
      (v.profile || v.region ? await awsTarget({ profile: v.profile, region: v.region, stage: v.stage }) : localTarget());
    switch (command) {
      case "console":
        return await runConsole({ port, target, out });
      case "deploy": {
        const r = await deploy(target, arg, { commit: v.commit, env: v.env, reason: v.reason }, v.json ? () => {} : out);
        if (v.json) out(JSON.stringify(r.result));
        if (!v.watch || r.code !== EXIT.ok) return r.code;
        const unit = resolveUnit(arg, v.env);
        const arn =
          typeof r.result.executionArn === "string"
            ? r.result.executionArn
            : `${target.stateMachines.deploy!.replace(":stateMachine:", ":execution:")}:${String(r.result.name)}`;
        return await follow(target, { arn, queued: { unit } }, out, {
          ...watchOpts,
          signal: opts.watch?.signal ?? interrupted(),
        });
      }
      case "push": {
        const r = await push(target, arg, { commit: v.commit, branch: v.branch, env: v.env }, () => {});
        out(v.json ? JSON.stringify(r) : `${r.status} ${JSON.stringify(r.body)}`);
        if (r.status >= 300) return EXIT.failed;
        if (!v.watch) return EXIT.ok;
        const b = r.body;
        const arn =
          typeof b.executionArn === "string"
            ? b.executionArn
            : typeof b.executionName === "string"
              ? `${target.stateMachines.deploy!.replace(":stateMachine:", ":execution:")}:${b.executionName}`
              : undefined;
        if (!arn) {
          out(`nothing to follow: ${typeof b.reason === "string" ? b.reason : "the push started no deployment"}`);
          return EXIT.failed;
        }
        const unit = {
          service: String(b.service ?? arg),
          environment: String(b.environment ?? resolveUnit(arg, v.env).environment),
        };
        return await follow(target, { arn, queued: { unit } }, out, {
          ...watchOpts,
          signal: opts.watch?.signal ?? interrupted(),
        });
      }
      case "status": {
        if (v.watch)
          return await watchStatus(target, arg, {
            ...watchOpts,
            env: v.env,
            json: v.json,
            stream: opts.stream ?? process.stdout,
            signal: opts.watch?.signal ?? interrupted(),
          });
        if (v.interval !== undefined) throw new CliError("--interval applies to --watch", EXIT.usage);
        const s = await status(target, arg, v.env);
        if (v.json) out(JSON.stringify(s, null, 2));
        else formatStatus(s, out);
        return EXIT.ok;
      }
      case "history": {
        if (!arg) throw new CliError("history needs a service", EXIT.usage);
        const s = await status(target, arg, resolveUnit(arg, v.env).environment);
        const execs = s.services[0]?.executions ?? [];
        if (v.json) out(JSON.stringify(execs, null, 2));
        else
          for (const e of execs)
            out(
              `${e.status.padEnd(9)} ${e.name}  ${e.startDate ?? ""} → ${e.stopDate ?? ""}${e.redriveCount ? `  redriven ${e.redriveCount}×` : ""}`,
            );
        return EXIT.ok;
      }
      case "logs": {
        const l = await logs(target, arg, { env: v.env });
        if (v.json) out(JSON.stringify(l, null, 2));
        else if (v.raw) formatLogs(l, out);
        else formatSteps(l, out);
        return EXIT.ok;
      }
      case "approve":
        await decide(target, arg, true, {}, out);
        return EXIT.ok;
      case "reject":
        await decide(target, arg, false, { reason: v.reason }, out);
        return EXIT.ok;
      case "abort":
        await abort(target, arg, { env: v.env, reason: v.reason }, out);
        return EXIT.ok;
      case "redrive":
        await redrive(target, arg, out, { force: v.force });
        return EXIT.ok;
      case "rollback":
        await rollback(target, arg, { env: v.env, reason: v.reason }, out);
        return EXIT.ok;
      case "rotate":
        await rotate(target, arg, { env: v.env }, out);
        return EXIT.ok;
      case "leaks": {
        const found = await leaks(target);
        if (v.json) out(JSON.stringify(found, null, 2));
        else formatLeaks(found, out);
        return found.length > 0 ? EXIT.failed : EXIT.ok;
      }
      default:
        console.error(`kiln: unknown command "${command}"\n\n${USAGE}`);
        return EXIT.usage;
    }
  } catch (err) {
    if (err instanceof CliError) {
      console.error(`kiln: ${err.message}`);
      return err.code;
    }
    console.error(`kiln: ${(err as Error).name}: ${(err as Error).message}`);
    return EXIT.failed;
  }
}
