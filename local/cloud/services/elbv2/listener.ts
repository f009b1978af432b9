/**
 * The real HTTP side of the ALB: each listener is an `http.Server` on 127.0.0.1 (random port; its
 * URL is `Listener.url`, shown in the world snapshot and by `ElbBackend.listenerUrl`). A request is
 * routed like the in-process path (`ElbBackend.route`) and proxied over real HTTP to the chosen
 * instance app's loopback port, with the ALB's errors: 502 when the target cannot be reached, 504
 * after the load balancer's idle timeout, 503 when the chosen group has no target to send to.
 * Every request is held on the clock so a virtual clock never jumps past live traffic.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock } from "../../../../lib/clock.ts";
import { APP_LATENCY_HEADER } from "../../../app/server.ts";
import type { ElbBackend } from "./backend.ts";
import type { Listener } from "./model.ts";

export function attachServers(backend: ElbBackend): void {
  const servers = new Map<string, http.Server>();
  const { cloud } = backend;

  const handle = (l: Listener, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> =>
    new Promise<void>((resolve) => {
      const lb = backend.lbs.get(l.lbArn);
      res.on("close", () => resolve());
      const send = (status: number, body: string, headers: Record<string, string> = {}) => {
        if (!res.headersSent)
          res.writeHead(status, {
            "content-type": "text/html",
            server: "awselb/2.0",
            "content-length": Buffer.byteLength(body),
            ...headers,
          });
        res.end(body);
      };
      if (!lb) return send(503, "503 Service Temporarily Unavailable");
      const path = req.url ?? "/";
      const routed = backend.route(l, { path, host: req.headers.host, method: req.method });
      if (routed.kind === "error") {
        backend.elbError(lb, routed.status);
        req.resume();
        return send(routed.status, routed.body);
      }
      if (routed.kind === "fixed") {
        req.resume();
        return send(routed.status, routed.body, { "content-type": routed.contentType, ...(routed.headers ?? {}) });
      }
      const { tg, target, instance } = routed;
      const app = instance?.state === "running" ? instance.app : undefined;
      if (!app || app.port <= 0) {
        backend.elbError(lb, 502);
        req.resume();
        return send(502, "502 Bad Gateway");
      }
      target.inFlight++;
      let finished = false;
      const done = () => {
        if (finished) return;
        finished = true;
        target.inFlight--;
        cloud.clock.clearTimeout(idle);
      };
      const started = cloud.clock.now();
      const headers = {
        ...req.headers,
        "x-forwarded-for": req.socket.remoteAddress ?? "127.0.0.1",
        "x-forwarded-proto": "http",
        "x-forwarded-port": String(l.port),
        "x-amzn-trace-id": `Root=1-${Math.floor(started / 1000).toString(16)}-${cloud.hex(24)}`,
        connection: "close",
      };
      const upstream = http.request(
        { host: "127.0.0.1", port: app.port, method: req.method, path, headers, agent: false },
        (up) => {
          backend.targetAnswered(
            lb,
            tg,
            up.statusCode ?? 0,
            targetResponseMs(cloud.clock, started, up.headers[APP_LATENCY_HEADER]),
          );
          // Hop-by-hop headers of the upstream connection are not the client's (the ALB keeps its own
          // connection); the app's latency header is the simulation's own.
          const { connection: _c, "keep-alive": _k, "transfer-encoding": _t, [APP_LATENCY_HEADER]: _l, ...passed } = up.headers;
          // Buffered, then written with the headers in one go: streaming small bodies behind separately
          // flushed headers costs a delayed-ACK round trip per request on keep-alive connections.
          const chunks: Buffer[] = [];
          up.on("data", (c: Buffer) => chunks.push(c));
          up.on("end", () => {
            const body = Buffer.concat(chunks);
            res.writeHead(up.statusCode ?? 502, { ...passed, "content-length": String(body.length), server: "awselb/2.0" });
            res.end(body);
            done();
          });
          up.on("error", () => {
            if (!res.headersSent) send(502, "502 Bad Gateway");
            else res.destroy();
            done();
          });
        },
      );
      // The ALB closes a connection idle longer than idle_timeout.timeout_seconds (default 60) with a 504.
      const idleMs = Number(backend.lbAttributes.get(lb.arn)?.get("idle_timeout.timeout_seconds") ?? "60") * 1000;
      const idle = cloud.clock.setTimeout(() => {
        upstream.destroy();
        if (!res.headersSent) {
          backend.elbError(lb, 504);
          send(504, "504 Gateway Time-out");
        } else res.destroy();
        done();
      }, idleMs);
      upstream.on("error", () => {
        if (!res.headersSent) {
          backend.elbError(lb, 502);
          send(502, "502 Bad Gateway");
        } else res.destroy();
        done();
      });
      req.pipe(upstream);
    });

  backend.servers = {
    async open(l) {
      if (servers.has(l.arn) || !cloud.setting("elbv2.listen", true)) return;
      const srv = http.createServer({ noDelay: true, keepAlive: true }, (req, res) => {
        void cloud.clock.hold(handle(l, req, res));
      });
      servers.set(l.arn, srv);
      await cloud.clock.hold(
        new Promise<void>((resolve, reject) => {
          srv.once("error", reject);
          srv.listen(0, "127.0.0.1", () => resolve());
        }),
      );
      l.url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    },
    async close(l) {
      const srv = servers.get(l.arn);
      if (!srv) return;
      servers.delete(l.arn);
      l.url = undefined;
      srv.closeAllConnections();
      await cloud.clock.hold(new Promise<void>((resolve) => srv.close(() => resolve())));
    },
    async closeAll() {
      await Promise.all([...servers.keys()].map((arn) => this.close(backend.listeners.get(arn) ?? ({ arn } as Listener))));
    },
  };
}

/**
 * TargetResponseTime of one proxied request, in simulated ms. Virtual time: the clock's elapsed
 * time (it stands still during real I/O, so only the app's modelled wait counts). Real and scaled
 * time: the app's modelled latency. On AWS the target is its own machine; here the app, the ALB, the
 * pipeline's Lambdas and the test's load share one event loop, and a stall of that loop (a busy
 * step, a loaded CI machine) is not the target's latency. Counting it biased the judge against
 * whichever group served during the pipeline's own work: green, at 100 %, on a busy machine.
 */
export function targetResponseMs(clock: Clock, started: number, header: string | string[] | undefined): number {
  if (clock.kind === "virtual") return clock.now() - started;
  const modelled = Number(Array.isArray(header) ? header[0] : header);
  return Number.isFinite(modelled) && modelled >= 0 ? modelled : clock.now() - started;
}
