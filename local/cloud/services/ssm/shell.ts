/**
 * Runs one `aws:runShellScript` invocation for real with bash, the way the SSM agent does on Linux:
 * the commands are written to `_script.sh` in the invocation's orchestration directory, run in a new
 * process group (so a timeout or cancel kills the whole tree), and stdout/stderr go to files next to
 * the script. Files rather than pipes matter: a script that starts a daemon in the background keeps
 * the inherited descriptors open, and waiting on pipes would hang until the daemon exits.
 */
import { spawn } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, mkdir, open, writeFile } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import path from "node:path";
import type { Clock } from "../../../../lib/clock.ts";
import { type SandboxMode, sandboxAvailable, sandboxed } from "./sandbox.ts";

export interface ShellOptions {
  clock: Clock;
  /** Orchestration directory for this invocation (script and output files are written here). */
  dir: string;
  /** The script: the document's `commands` joined by newlines. */
  script: string;
  /** Working directory; it must exist (the agent does not create it). */
  cwd: string;
  /** The complete environment of the process (nothing is inherited). */
  env: Record<string, string>;
  /**
   * Wall-clock safeguard in milliseconds. Only used where the cloud clock cannot fire a timer while
   * the process runs (virtual time holds the clock): a runaway process must not hang the host.
   */
  wallLimitMs?: number;
  /** Bytes of each stream read back (the API truncates further by characters). */
  captureBytes?: number;
  /** The only directory the script may write to (the instance's), and what to do without namespaces (sandbox.ts). */
  sandbox?: { writable: string; mode: SandboxMode };
}

export interface ShellResult {
  /** Exit status; 137 when killed (the agent's CommandStoppedPreemptivelyExitCode on Linux). */
  exitCode: number;
  stdout: string;
  stderr: string;
  /** True when `kill()` or the wall safeguard ended the process. */
  killed: boolean;
  /** True when the wall safeguard (not a caller) killed it. */
  wallTimedOut: boolean;
}

export interface ShellRun {
  /** Settles when bash has exited; held on the clock so virtual time cannot jump past it. */
  readonly done: Promise<ShellResult>;
  /** SIGKILLs the process group (idempotent; before spawn it prevents the spawn). */
  kill(): void;
}

/** Exit code the Linux agent reports for a process it stopped (timeout or cancel): 128 + SIGKILL. */
export const KILLED_EXIT_CODE = 137;

export function runShellScript(opts: ShellOptions): ShellRun {
  let pid: number | undefined;
  let killed = false;
  let wallTimedOut = false;
  const killGroup = () => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  const run = async (): Promise<ShellResult> => {
    await mkdir(opts.dir, { recursive: true });
    const scriptPath = path.join(opts.dir, "_script.sh");
    const outPath = path.join(opts.dir, "stdout");
    const errPath = path.join(opts.dir, "stderr");
    await writeFile(scriptPath, `${opts.script}\n`, { mode: 0o700 });
    const cwdOk = await access(opts.cwd, fsConstants.R_OK | fsConstants.X_OK).then(
      () => true,
      () => false,
    );
    if (!cwdOk) {
      return {
        exitCode: 1,
        stdout: "",
        stderr: `failed to run commands: working directory ${opts.cwd} does not exist or is not accessible`,
        killed: false,
        wallTimedOut: false,
      };
    }
    const out = await open(outPath, "w");
    const err = await open(errPath, "w");
    let exitCode: number;
    try {
      if (killed) return { exitCode: KILLED_EXIT_CODE, stdout: "", stderr: "", killed: true, wallTimedOut: false };
      const how = commandFor(opts, scriptPath);
      if ("refused" in how) {
        await writeFile(errPath, `failed to run commands: ${how.refused}\n`);
        return {
          exitCode: 1,
          stdout: "",
          stderr: `failed to run commands: ${how.refused}\n`,
          killed: false,
          wallTimedOut: false,
        };
      }
      exitCode = await new Promise<number>((resolve) => {
        const child = spawn(how.command, how.args, {
          cwd: opts.cwd,
          env: opts.env,
          detached: true, // own process group: kill(-pid) reaches every child of the script
          stdio: ["ignore", out.fd, err.fd],
        });
        pid = child.pid;
        // Host safeguard, deliberately on the wall clock: see ShellOptions.wallLimitMs.
        const guard =
          opts.wallLimitMs && opts.wallLimitMs > 0
            ? globalThis.setTimeout(() => {
                wallTimedOut = true;
                killed = true;
                killGroup();
              }, opts.wallLimitMs)
            : undefined;
        child.once("error", (e) => {
          if (guard) globalThis.clearTimeout(guard);
          void writeFile(errPath, `failed to run commands: ${e.message}\n`, { flag: "a" }).catch(() => {});
          resolve(127);
        });
        child.once("exit", (code, signal) => {
          if (guard) globalThis.clearTimeout(guard);
          resolve(code ?? (signal ? 128 + (signalNumber(signal) ?? 9) : 1));
        });
        if (killed) killGroup();
      });
    } finally {
      await out.close();
      await err.close();
    }
    const limit = opts.captureBytes ?? 128 * 1024;
    const [stdout, stderr] = await Promise.all([readHead(outPath, limit), readHead(errPath, limit)]);
    return { exitCode: killed ? KILLED_EXIT_CODE : exitCode, stdout, stderr, killed, wallTimedOut };
  };
  const done = opts.clock.hold(run());
  return {
    done,
    kill() {
      if (killed) return;
      killed = true;
      killGroup();
    },
  };
}

let warnedUnsandboxed = false;

/** bash on the script, in the sandbox where there is one; `refused` when the sandbox is required and unavailable. */
function commandFor(opts: ShellOptions, scriptPath: string): { command: string; args: string[] } | { refused: string } {
  const mode = opts.sandbox?.mode ?? "off";
  if (!opts.sandbox || mode === "off") return { command: "bash", args: [scriptPath] };
  const can = sandboxAvailable();
  if (can.ok) return sandboxed(opts.sandbox.writable, opts.cwd, [scriptPath]);
  if (mode === "required") return { refused: `the Run Command sandbox is required (ssm.sandbox) but unavailable: ${can.why}` };
  if (!warnedUnsandboxed) {
    warnedUnsandboxed = true;
    process.emitWarning(
      `Run Command scripts run without a sandbox (they can write wherever this user can): ${can.why}. Set ssm.sandbox to "required" to refuse instead.`,
      "KilnSandboxWarning",
    );
  }
  return { command: "bash", args: [scriptPath] };
}

async function readHead(file: string, bytes: number): Promise<string> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await fh.close();
  }
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return (osConstants.signals as Record<string, number | undefined>)[signal];
}
