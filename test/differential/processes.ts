/**
 * Child processes for the tests that talk to real third-party tools: moto's server, the AWS CLI,
 * boto3, and `kiln cloud` itself. Every wait is bounded; every process is killed by its own pid.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import net from "node:net";

/** A free TCP port on 127.0.0.1 (the kernel's choice; closed again before it is returned). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether `python3 -c <code>` exits 0 (a module is importable, a tool works). */
export function pythonHas(code: string): boolean {
  const r = spawnSync("python3", ["-c", code], { encoding: "utf8", timeout: 30_000 });
  return r.status === 0;
}

/** A running child process that printed its readiness line. */
export interface Running {
  child: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `cmd args` and resolves once a line of its output matches `ready`; rejects (and kills it)
 * if it exits first or `timeoutMs` passes.
 */
export async function startProcess(
  cmd: string,
  args: string[],
  opts: { ready: RegExp; timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<Running> {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const running: Running = {
    child,
    output: () => text,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      void running.stop(500);
      reject(new Error(`${cmd} ${args.join(" ")} was not ready within ${opts.timeoutMs} ms:\n${text}`));
    }, opts.timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      if (opts.ready.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(" ")} exited (${code ?? signal}) before it was ready:\n${text}`));
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return running;
}

/** The result of a short command: exit status and its output. */
export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion without blocking the event loop (a server may run in this process). */
export async function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs: number; input?: string },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} did not finish within ${opts.timeoutMs} ms\n${stdout}\n${stderr}`));
    }, opts.timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}
