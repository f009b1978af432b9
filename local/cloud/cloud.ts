import { AsyncLocalStorage } from "node:async_hooks";
import { EventEmitter } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { HttpResponse, type HttpRequest } from "@smithy/protocol-http";
import type { Clock } from "../../lib/clock.ts";
import { VirtualClock } from "../../lib/clock.ts";
import { Faults, type FaultRule } from "./faults.ts";
import { AwsError } from "./protocol/errors.ts";
import { refuseForeign } from "./protocol/origin.ts";
import { protocolError, Router } from "./protocol/router.ts";
import { type Credentials, generateCredentials, isPublic, verifySignature } from "./protocol/sigv4.ts";
import type { RawRequest, RawResponse, ServiceDefinition } from "./protocol/types.ts";

export const ACCOUNT_ID = "123456789012";

/**
 * The simulated Lambda invocation a piece of code runs in. When an invocation times out, Lambda
 * stops its sandbox: nothing it still had pending may reach AWS afterwards. The in-process
 * transport enforces that (a handler sleeping in an SDK retry backoff must not wake up and write).
 */
export const invocationScope = new AsyncLocalStorage<{ requestId: string; functionName: string; stopped: boolean }>();
export const REGION = "us-east-1";

/**
 * A role a service assumes to make calls: a state machine's `roleArn` for its Task integrations, a
 * schedule's `RoleArn` for its target (`Cloud.asPrincipal`). Inside a Lambda invocation the
 * function's own role applies (`invocationScope` wins). `session` names the call in denials, as
 * the assumed-role session name does on AWS.
 */
export const principalScope = new AsyncLocalStorage<{ principal: string; session: string }>();

/** The principal a service assuming `roleArn` calls as (`Stack.roles` holds its policies under it). */
export function rolePrincipal(roleArn: string): string {
  return `role:${roleArn}`;
}

/** A simulated service: its wire definition plus optional lifecycle and inspection hooks. */
export interface Backend {
  readonly definition?: ServiceDefinition;
  /** Called once the cloud listens (servers to open, timers to start). */
  start?(): Promise<void> | void;
  /** Called on shutdown: close servers, kill processes, clear timers. */
  stop?(): Promise<void> | void;
  /** World state for the admin API (`GET /_kiln/world`). */
  snapshot?(): unknown;
}

export interface CloudOptions {
  clock?: Clock;
  /** Seed of every random choice the cloud makes (jitter, fault rates). */
  seed?: number;
  /** Overrides of behaviour durations and settings, by key (e.g. `ec2.bootMs`). */
  settings?: Record<string, number | string | boolean>;
  faults?: FaultRule[];
  region?: string;
  /** Directory for instance sandboxes and image filesystems (default: a temp dir). */
  dataDir?: string;
  /** The credentials HTTP callers must sign with (default: fresh ones for this cloud). */
  credentials?: Credentials;
}

/** Cross-service events (EC2 state changes, AMI state, SSM command status) that EventBridge turns into AWS events. */
export interface CloudEvent {
  source: string; // aws.ec2, aws.ssm, aws.states, …
  detailType: string;
  detail: Record<string, unknown>;
  resources?: string[];
}

/**
 * The simulated cloud: one router, one clock, one seeded random source, one fault table, and a
 * registry of service backends that can reach each other (`cloud.backend<Ec2Backend>("ec2")`).
 */
export class Cloud {
  readonly clock: Clock;
  readonly router: Router;
  readonly faults: Faults;
  /** `Host` values the HTTP endpoint answers to (its loopback address), set once it listens. */
  private allowedHosts: ReadonlySet<string> = new Set();
  readonly region: string;
  readonly accountId = ACCOUNT_ID;
  readonly bus = new EventEmitter();
  readonly dataDir: string | undefined;
  private readonly backends = new Map<string, Backend>();
  private readonly settings: Record<string, number | string | boolean>;
  private rngState: number;
  private server?: http.Server;
  private adminRoutes = new Map<string, (req: RawRequest, url: URL) => unknown | Promise<unknown>>();
  endpoint = "";
  /** What HTTP clients sign with (SigV4); `clientConfig()` carries them. Secret: kept in .kiln/stack.json (0600). */
  readonly credentials: Credentials;
  /** Posts to stand-ins for services outside AWS (`/_kiln/capture/<name>`): PagerDuty, Slack. */
  captured: { name: string; at: string; body: unknown }[] = [];

  constructor(opts: CloudOptions = {}) {
    this.clock = opts.clock ?? new VirtualClock();
    this.region = opts.region ?? REGION;
    this.dataDir = opts.dataDir;
    this.credentials = opts.credentials ?? generateCredentials();
    this.settings = { ...(opts.settings ?? {}) };
    this.rngState = (opts.seed ?? 1) >>> 0 || 1;
    this.faults = new Faults(
      () => this.random(),
      () => this.clock.now(),
    );
    for (const f of opts.faults ?? []) this.faults.add(f);
    this.router = new Router({
      clock: this.clock,
      region: this.region,
      accountId: this.accountId,
      faults: this.faults,
      authorize: (service, action, input) => this.authorize(service, action, input),
      detach: (fn) => invocationScope.exit(() => principalScope.exit(fn)),
    });
    this.router.addRawHandler((req) => this.handleAdmin(req));
    this.bus.setMaxListeners(100);
  }

  private authorizer?: (call: {
    functionName: string;
    session?: string;
    service: string;
    action: string;
    input: unknown;
  }) => void;

  /**
   * Installs the IAM authorizer (`roleAuthorizer`, local/cloud/iam/enforce.ts): from then on every
   * call made inside a Lambda invocation is authorized against the calling function's role, unless
   * setting `iam.enforce` is false.
   */
  setAuthorizer(fn: typeof this.authorizer, knows?: (principal: string) => boolean): void {
    this.authorizer = fn;
    this.knowsPrincipal = knows;
  }

  private knowsPrincipal?: (principal: string) => boolean;

  /**
   * Whether calls made as `principal` are evaluated (the authorizer has its policies). A service
   * acting with a role the stack does not model (e.g. an EventBridge rule's resource-based
   * permission) runs its delivery unevaluated rather than denied.
   */
  evaluates(principal: string): boolean {
    return this.knowsPrincipal?.(principal) ?? false;
  }

  /** Throws the service's access-denied error when the calling Lambda's role does not allow the call. */
  authorize(service: string, action: string, input: unknown): void {
    if (!this.authorizer || !this.setting<boolean>("iam.enforce", true)) return;
    const fn = invocationScope.getStore()?.functionName;
    const assumed = fn ? undefined : principalScope.getStore();
    if (fn) this.authorizer({ functionName: fn, service, action, input });
    else if (assumed) this.authorizer({ functionName: assumed.principal, session: assumed.session, service, action, input });
  }

  /**
   * Runs `fn` with its calls authorized as the role `roleArn` (session `session`) where the
   * authorizer knows it (`evaluates`); a role the stack does not model runs unevaluated.
   */
  asRole<T>(roleArn: string, session: string, fn: () => T): T {
    const principal = rolePrincipal(roleArn);
    return this.evaluates(principal) ? principalScope.run({ principal, session }, fn) : fn();
  }

  /** Deterministic uniform [0,1) (mulberry32). */
  random(): number {
    this.rngState = (this.rngState + 0x6d2b79f5) >>> 0;
    let t = this.rngState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Random hex of `n` chars from the seeded source (resource ids). */
  hex(n: number): string {
    let s = "";
    while (s.length < n) s += Math.floor(this.random() * 16).toString(16);
    return s;
  }

  /** A duration or setting: the scenario's override, else the backend's default. */
  setting<T extends number | string | boolean>(key: string, dflt: T): T {
    const v = this.settings[key];
    return (v === undefined ? dflt : v) as T;
  }

  setSettings(values: Record<string, number | string | boolean>): void {
    Object.assign(this.settings, values);
  }

  /** `base` ± `jitter` fraction, from the seeded source. */
  jitter(base: number, fraction = 0): number {
    if (!fraction) return base;
    return Math.round(base * (1 - fraction + 2 * fraction * this.random()));
  }

  register(name: string, backend: Backend): void {
    this.backends.set(name, backend);
    if (backend.definition) this.router.register(backend.definition);
  }

  backend<T extends Backend>(name: string): T {
    const b = this.backends.get(name);
    if (!b) throw new Error(`simulated service ${name} is not registered`);
    return b as T;
  }

  maybeBackend<T extends Backend>(name: string): T | undefined {
    return this.backends.get(name) as T | undefined;
  }

  emit(event: CloudEvent): void {
    this.bus.emit("event", event);
  }

  /** Adds an admin endpoint: `GET|POST /_kiln/<path>` answering JSON. */
  admin(path: string, fn: (req: RawRequest, url: URL) => unknown | Promise<unknown>): void {
    this.adminRoutes.set(path, fn);
  }

  /** The whole world state: every backend's snapshot. */
  world(): Record<string, unknown> {
    const out: Record<string, unknown> = { time: new Date(this.clock.now()).toISOString(), faults: this.faults.list() };
    for (const [name, b] of this.backends) if (b.snapshot) out[name] = b.snapshot();
    return out;
  }

  private async handleAdmin(req: RawRequest): Promise<RawResponse | undefined> {
    const url = new URL(req.url, "http://local");
    if (!url.pathname.startsWith("/_kiln/")) return undefined;
    const path = url.pathname.slice("/_kiln/".length);
    try {
      let out: unknown;
      if (path === "world") out = this.world();
      else if (path === "faults" && req.method === "GET") out = this.faults.list();
      else if (path === "faults" && req.method === "POST") {
        const body = JSON.parse(req.body.toString("utf8") || "{}");
        const rules: FaultRule[] = Array.isArray(body) ? body : [body];
        out = { ids: rules.map((r) => this.faults.add(r)) };
      } else if (path === "faults" && req.method === "DELETE") {
        this.faults.clear(url.searchParams.get("kind") ?? undefined);
        out = { cleared: true };
      } else if (path.startsWith("capture/")) {
        // Stand-in for services outside AWS (PagerDuty, Slack): posts are kept for inspection.
        const name = path.slice("capture/".length);
        if (req.method === "POST") {
          const text = req.body.toString("utf8");
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // keep the raw text
          }
          this.captured.push({ name, at: new Date(this.clock.now()).toISOString(), body });
          out = { status: "success", message: "Event processed", dedup_key: (body as { dedup_key?: string })?.dedup_key };
        } else if (req.method === "DELETE") {
          this.captured = this.captured.filter((c) => c.name !== name);
          out = { cleared: true };
        } else out = this.captured.filter((c) => c.name === name);
      } else if (path === "settings" && req.method === "POST") {
        this.setSettings(JSON.parse(req.body.toString("utf8") || "{}"));
        out = { ok: true };
      } else {
        const fn = this.adminRoutes.get(path);
        if (!fn)
          return {
            status: 404,
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ message: `no admin route ${path}` }),
          };
        out = await fn(req, url);
      }
      return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(out ?? {}) };
    } catch (err) {
      return {
        status: 400,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ message: (err as Error).message }),
      };
    }
  }

  /** Starts every backend and, unless `port` is `false`, the HTTP endpoint on 127.0.0.1. */
  async start(opts: { port?: number | false } = {}): Promise<this> {
    for (const b of this.backends.values()) await b.start?.();
    if (opts.port === false) return this;
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const raw: RawRequest = {
          method: req.method ?? "GET",
          url: req.url ?? "/",
          headers: req.headers as Record<string, string>,
          body: Buffer.concat(chunks),
        };
        const refused = refuseForeign(raw, this.allowedHosts);
        if (refused) {
          res.writeHead(refused.status, refused.headers);
          res.end(refused.body);
          return;
        }
        // An outside caller: a served virtual clock does not jump while it is being answered (lib/clock.ts).
        const handled = this.authenticate(raw).then((denied) => denied ?? this.router.handle(raw));
        (this.clock.outside?.(handled, { observe: observes(raw) }) ?? handled).then(
          (r) => {
            res.writeHead(r.status, r.headers);
            res.end(r.body);
          },
          (err) => {
            res.writeHead(500, { "content-type": "application/json" });
            res.end(JSON.stringify({ __type: "InternalFailure", message: String(err) }));
          },
        );
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(opts.port || 0, "127.0.0.1", resolve);
    });
    const port = (this.server.address() as AddressInfo).port;
    this.endpoint = `http://127.0.0.1:${port}`;
    this.allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
    return this;
  }

  /**
   * The HTTP endpoint's SigV4 check (protocol/sigv4.ts): undefined to serve the request, else AWS's
   * refusal in the request's protocol. `endpoint.sigv4: false` turns it off; the signing time is
   * compared with the wall clock (clients sign with theirs), within `endpoint.maxSkewMs`.
   */
  private async authenticate(raw: RawRequest): Promise<RawResponse | undefined> {
    if (!this.setting("endpoint.sigv4", true) || isPublic(raw)) return undefined;
    const denied = await verifySignature(raw, this.credentials, {
      now: Date.now(),
      maxSkewMs: this.setting("endpoint.maxSkewMs", 15 * 60_000),
    });
    if (!denied) return undefined;
    if (raw.url.startsWith("/_kiln/"))
      return {
        status: 403,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ message: `${denied.code}: ${denied.message}` }),
      };
    return protocolError(raw, new AwsError(denied.code, denied.message, 403), this.router);
  }

  async stop(): Promise<void> {
    for (const b of [...this.backends.values()].reverse()) await b.stop?.();
    if (this.server) {
      this.server.closeAllConnections?.();
      await new Promise<void>((r) => this.server!.close(() => r()));
      this.server = undefined;
    }
    this.clock.dispose();
  }

  /**
   * A request handler for AWS SDK v3 clients that skips the socket: the SDK's real serializers and
   * parsers still run, only the transport is in process. Used in virtual time, where the clock must
   * see all work.
   */
  requestHandler(): InProcessHandler {
    return new InProcessHandler(this);
  }

  /**
   * Config for any AWS SDK v3 client: in process (default) or over HTTP to `endpoint`.
   * `new EC2Client(cloud.clientConfig())`.
   */
  clientConfig(opts: { http?: boolean } = {}): {
    region: string;
    endpoint: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
    requestHandler?: InProcessHandler;
    maxAttempts?: number;
  } {
    return {
      region: this.region,
      endpoint: this.endpoint || "http://127.0.0.1:4566",
      credentials: { ...this.credentials },
      ...(opts.http ? {} : { requestHandler: this.requestHandler() }),
    };
  }
}

/** True for a request that only reads (Describe*, Get*, List*, or a REST GET): a caller polling for progress. */
export function observes(raw: RawRequest): boolean {
  if (raw.method === "GET" || raw.method === "HEAD") return true;
  const target = raw.headers["x-amz-target"];
  const action =
    typeof target === "string"
      ? target.slice(target.lastIndexOf(".") + 1)
      : /(?:^|&)Action=([A-Za-z]+)/.exec(raw.body.toString("utf8"))?.[1];
  return action !== undefined && /^(Describe|Get|List)/.test(action);
}

/** Implements the smithy HttpHandler contract on top of the cloud's router. */
export class InProcessHandler {
  readonly metadata = { handlerProtocol: "http/1.1" };
  constructor(private readonly cloud: Cloud) {}

  async handle(request: HttpRequest): Promise<{ response: HttpResponse }> {
    const invocation = invocationScope.getStore();
    if (invocation?.stopped) {
      throw Object.assign(
        new Error(`the sandbox of ${invocation.functionName} (${invocation.requestId}) was stopped at its timeout`),
        { code: "ECONNRESET" },
      );
    }
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(request.query ?? {})) {
      if (Array.isArray(v)) for (const x of v) qs.append(k, x);
      else if (v !== null && v !== undefined) qs.append(k, v);
    }
    const q = qs.toString();
    const body =
      request.body === undefined || request.body === null
        ? Buffer.alloc(0)
        : typeof request.body === "string"
          ? Buffer.from(request.body)
          : request.body instanceof Uint8Array
            ? // Not Buffer.from(body): the SDK's JSON body is a Uint8Array subclass whose valueOf()
              // returns a string, which Buffer.from would call (and the SDK warns about).
              Buffer.copyBytesFrom(request.body)
            : await streamToBuffer(request.body as Readable);
    const raw: RawRequest = {
      method: request.method,
      url: `${request.path}${q ? `?${q}` : ""}`,
      headers: request.headers,
      body,
    };
    const r = await this.cloud.router.handle(raw);
    const buf = typeof r.body === "string" ? Buffer.from(r.body) : r.body;
    return {
      response: new HttpResponse({ statusCode: r.status, headers: r.headers, body: Readable.from([buf]) }),
    };
  }

  updateHttpClientConfig(): void {}
  httpHandlerConfigs(): Record<string, never> {
    return {};
  }
  destroy(): void {}
}

async function streamToBuffer(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}
