/**
 * The sample service every simulated instance runs. Its state lives in the instance's filesystem,
 * written by `usr/local/bin/sample-app` (the same files a real host would have):
 *
 * - `opt/sample-app/COMMIT`, `opt/sample-app/SERVICE`: what `install` put there;
 * - `var/lib/sample-app/in-service`: present between `service-in` and `service-out`;
 * - `run/sample-app.port`: the loopback port of the real HTTP server (written here; `0` when the
 *   simulator runs the app without a socket, `app.realServers` off).
 *
 * Routes:
 * - `GET /`: 200 `{commit, instance, service}` when installed, 503 "not installed" otherwise.
 *   A `bad-commit` fault for the installed commit turns it into a 500 (`mode: "500"`) or makes it
 *   slow (`mode: "slow"`, `latencyMs`), so canary alarms, not the smoke test, catch a bad commit.
 * - `GET /health`: the load balancer's check. 200 when installed and in service, 503 otherwise
 *   (the body says why).
 * - `GET /health?deep=1`: the smoke test's check. 200 when installed and able to answer, whether
 *   or not it is in service yet (the smoke test runs before service-in); 503 when not installed.
 *
 * Every file read is synchronous (a few bytes), so no clock hold is needed to answer.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Clock } from "../../lib/clock.ts";
import type { AppHandle } from "../cloud/contracts.ts";
import type { FaultRule } from "../cloud/faults.ts";

/** The template filesystem base AMIs are made from (holds `usr/local/bin/sample-app`). */
export const APP_ROOTFS = fileURLToPath(new URL("./rootfs/", import.meta.url));

/** Paths of the app's state, relative to an instance's root. */
export const APP_PATHS = {
  cli: "usr/local/bin/sample-app",
  commit: "opt/sample-app/COMMIT",
  service: "opt/sample-app/SERVICE",
  inService: "var/lib/sample-app/in-service",
  port: "run/sample-app.port",
} as const;

/**
 * Response header carrying the app's modelled latency (simulated ms) to the simulated ALB, which
 * strips it. On real and scaled clocks the ALB's TargetResponseTime is this latency: the real time
 * a request took is this one machine's socket and CPU time, shared by the ALB, the pipeline and the
 * load (2 ms of it under load is 120 ms at ×60; a stalled event loop, seconds), not the target's.
 */
export const APP_LATENCY_HEADER = "x-kiln-app-latency-ms";

/** Default latency of a `bad-commit` fault in `slow` mode without `latencyMs`. */
const DEFAULT_SLOW_MS = 2_000;

export interface StartAppOptions {
  /** Instance id the app reports in `GET /`. */
  instance: string;
  /** The instance's filesystem root. */
  rootDir: string;
  clock: Clock;
  /** The cloud's fault table (only the standing `bad-commit` rules are read). */
  faults?: { active(kind: string, attrs?: Record<string, unknown>): FaultRule | undefined };
  /**
   * Open a real HTTP server on 127.0.0.1 (port written to `run/sample-app.port`). Off for large
   * benchmarks (`app.realServers`), where only the in-process `request()` answers.
   */
  realServer: boolean;
}

export interface AppResponse {
  status: number;
  body: string;
  /** Simulated service time (a slow bad commit); the real server waits this long on the clock. */
  latencyMs: number;
}

interface AppState {
  commit?: string;
  service?: string;
  inService: boolean;
}

function readState(rootDir: string): AppState {
  const commit = readLine(join(rootDir, APP_PATHS.commit));
  return {
    commit: commit && /^[0-9a-f]{7,40}$/.test(commit) ? commit : undefined,
    service: readLine(join(rootDir, APP_PATHS.service)),
    inService: existsSync(join(rootDir, APP_PATHS.inService)),
  };
}

function readLine(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").split("\n", 1)[0]?.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Answers one request against the instance's current files, the way the real server does. Pure
 * apart from the synchronous reads, so health checks in virtual time can call it directly.
 */
export function answer(path: string, opts: Pick<StartAppOptions, "instance" | "rootDir" | "faults">): AppResponse {
  // A request target is a path; prefixing keeps `//host/x` from being read as another host.
  const url = new URL(`http://app.local${path.startsWith("/") ? path : `/${path}`}`);
  const state = readState(opts.rootDir);
  const json = (status: number, body: unknown, latencyMs = 0): AppResponse => ({ status, body: JSON.stringify(body), latencyMs });
  if (url.pathname === "/health") {
    if (!state.commit) return json(503, { status: "not installed" });
    if (url.searchParams.has("deep")) {
      return json(200, { status: "ok", commit: state.commit, service: state.service, inService: state.inService });
    }
    return state.inService
      ? json(200, { status: "ok", commit: state.commit })
      : json(503, { status: "out of service", commit: state.commit });
  }
  if (url.pathname === "/") {
    if (!state.commit) return json(503, { status: "not installed" });
    const fault = opts.faults?.active("bad-commit", { commit: state.commit, instanceId: opts.instance });
    if (fault?.mode === "500") return json(500, { error: "internal error", commit: state.commit });
    const latencyMs = fault?.mode === "slow" ? Number(fault.latencyMs ?? DEFAULT_SLOW_MS) : 0;
    return json(200, { commit: state.commit, instance: opts.instance, service: state.service }, latencyMs);
  }
  return json(404, { status: "not found" });
}

/**
 * Starts the sample app of one instance: a real HTTP server on 127.0.0.1 (unless `realServer` is
 * false) plus the same logic in process via `request()`.
 */
export async function startApp(opts: StartAppOptions): Promise<AppHandle> {
  const { clock, rootDir } = opts;
  let server: http.Server | undefined;
  let port = 0;
  if (opts.realServer) {
    const srv = http.createServer((req, res) => {
      const r = answer(req.url ?? "/", opts);
      const send = () => {
        // The modelled latency travels to the simulated ALB, which strips it (see APP_LATENCY_HEADER).
        res.writeHead(r.status, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(r.body),
          [APP_LATENCY_HEADER]: String(r.latencyMs),
        });
        res.end(r.body);
      };
      // The delay runs on the cloud clock so a slow commit is slow in simulated time too.
      if (r.latencyMs > 0) clock.sleep(r.latencyMs).then(send, send);
      else send();
    });
    server = srv;
    await clock.hold(
      new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => resolve());
      }),
    );
    port = (srv.address() as AddressInfo).port;
  }
  // Port 0 tells `sample-app smoke-test` that this app answers in process only (no socket).
  mkdirSync(join(rootDir, "run"), { recursive: true });
  writeFileSync(join(rootDir, APP_PATHS.port), `${port}\n`);
  let stopped = false;
  return {
    port,
    async request(path: string) {
      if (stopped) throw new Error(`sample app of ${opts.instance} is stopped`);
      return answer(path, opts);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      rmSync(join(rootDir, APP_PATHS.port), { force: true });
      if (!server) return;
      const srv = server;
      srv.closeAllConnections();
      await clock.hold(new Promise<void>((resolve) => srv.close(() => resolve())));
    },
  };
}
