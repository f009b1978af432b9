/**
 * The console's HTTP server: static files from `public/` and a small JSON API over a `Target`, so
 * the same console reads the local stack or a real AWS account. It listens on loopback only.
 *
 *   GET  /                       the page (services and executions, routed by the URL fragment)
 *   GET  /api/overview           every service of kiln.config.yaml: live commit, traffic, fleets, executions
 *   GET  /api/execution?arn=…    one execution: graph, state outcomes, history, step results, actions
 *   POST /api/actions            {action: approve|reject|abort|redrive, execution: <arn>, reason?, force?}
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock } from "../../lib/clock.ts";
import { abort, decide, redrive, status } from "../cli/commands.ts";
import { CliError, EXIT, type Target } from "../cli/target.ts";
import { type ActionRequest, ConsoleRequestError, checkSameOrigin, parseActionRequest, parseExecutionArn } from "./api.ts";
import { executionView } from "./execution.ts";

export interface ConsoleOptions {
  target: Target;
  /** The stack's clock: requests hold a virtual clock while they read, so time does not jump past them. */
  clock?: Clock;
  /** Default: a free port. */
  port?: number;
  /** Loopback address to bind (default 127.0.0.1). */
  host?: string;
}

export interface ConsoleServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  close(): Promise<void>;
}

const STATIC: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

const SECURITY_HEADERS = {
  // Everything the page needs is its own; no inline script or style, no framing.
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-resource-policy": "same-origin",
};

const MAX_BODY = 16 * 1024;

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      // Past the limit the rest is read and dropped, so the client still gets the 413.
      if (size > MAX_BODY) reject(new ConsoleRequestError("request body too large", 413));
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** HTTP status for an operator command's refusal. */
function cliStatus(err: CliError): number {
  if (err.code === EXIT.usage) return 400;
  if (err.code === EXIT.notFound) return 404;
  return 409;
}

/** Who the console says acted (it has no login of its own; the machine's user runs it). */
const CONSOLE_OPERATOR = `${process.env.USER || "operator"} (console)`;

/** Runs one validated action through the CLI's own command functions. */
export async function runAction(t: Target, req: ActionRequest): Promise<{ message: string; executionArn?: string }> {
  const lines: string[] = [];
  const out = (l: string) => lines.push(l);
  let executionArn: string | undefined;
  switch (req.action) {
    case "approve":
      await decide(t, req.execution, true, { by: CONSOLE_OPERATOR }, out);
      break;
    case "reject":
      await decide(t, req.execution, false, { reason: req.reason ?? "rejected from the console", by: CONSOLE_OPERATOR }, out);
      break;
    case "abort":
      executionArn = await abort(
        t,
        req.execution,
        { reason: req.reason ?? "aborted from the console", by: CONSOLE_OPERATOR },
        out,
      );
      break;
    case "redrive":
      await redrive(t, req.execution, out, { force: req.force === true });
      break;
  }
  return { message: lines.join("\n"), executionArn };
}

/** Starts the console on a loopback port. */
export async function startConsole(opts: ConsoleOptions): Promise<ConsoleServer> {
  const t = opts.target;
  const host = opts.host ?? "127.0.0.1";
  const publicDir = new URL("./public/", import.meta.url);
  const files = new Map(
    Object.entries(STATIC).map(([p, f]) => [p, { body: readFileSync(new URL(f.file, publicDir)), type: f.type }]),
  );
  let allowedHosts: string[] = [];

  const send = (res: http.ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { ...SECURITY_HEADERS, "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
    res.end(text);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://console.invalid");
    try {
      checkSameOrigin(
        {
          method,
          host: req.headers.host,
          origin: req.headers.origin,
          fetchSite: req.headers["sec-fetch-site"] as string | undefined,
          contentType: req.headers["content-type"],
        },
        allowedHosts,
      );
      const file = files.get(url.pathname);
      if (file && (method === "GET" || method === "HEAD")) {
        res.writeHead(200, { ...SECURITY_HEADERS, "content-type": file.type, "cache-control": "no-cache" });
        res.end(method === "HEAD" ? undefined : file.body);
        return;
      }
      if (url.pathname === "/api/overview" && method === "GET") {
        const s = await status(t, undefined);
        send(res, 200, { ...s, now: opts.clock?.date().toISOString() ?? new Date().toISOString() });
        return;
      }
      if (url.pathname === "/api/execution" && method === "GET") {
        const arn = parseExecutionArn(url.searchParams.get("arn"));
        try {
          send(res, 200, await executionView(t, arn));
        } catch (err) {
          if ((err as Error).name === "ExecutionDoesNotExist") throw new ConsoleRequestError(`no execution ${arn}`, 404);
          throw err;
        }
        return;
      }
      if (url.pathname === "/api/actions") {
        if (method !== "POST") throw new ConsoleRequestError("use POST", 405);
        const body = parseActionRequest(await readBody(req), t.stateMachines);
        send(res, 200, { ok: true, ...(await runAction(t, body)) });
        return;
      }
      throw new ConsoleRequestError(`no such page: ${url.pathname}`, 404);
    } catch (err) {
      if (err instanceof ConsoleRequestError) send(res, err.status, { ok: false, error: err.message });
      else if (err instanceof CliError) send(res, cliStatus(err), { ok: false, error: err.message });
      else send(res, 502, { ok: false, error: `${(err as Error).name}: ${(err as Error).message}` });
    }
  };

  const server = http.createServer((req, res) => {
    const work = handle(req, res).catch(() => res.destroy());
    void (opts.clock ? opts.clock.hold(work) : work);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  allowedHosts = [`${host}:${port}`, `localhost:${port}`];
  return {
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A browser's keep-alive connections would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

/** The local stack as a console target: in-process SDK clients on the stack's cloud. */
