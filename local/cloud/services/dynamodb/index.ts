/**
 * DynamoDB for the simulated cloud: not a home-made one but dynalite (an in-memory implementation
 * of the DynamoDB API on LevelDB's memory backend) on a random loopback port, reached through the
 * cloud's own endpoint. Requests whose `X-Amz-Target` starts with `DynamoDB_20120810.` are
 * forwarded to dynalite unchanged (status, headers and body, including the `x-amz-crc32` checksum
 * the SDK verifies), so `new DynamoDBClient(cloud.clientConfig())` works in process and over HTTP.
 *
 * What dynalite covers: tables, items, conditional writes, Query/Scan, batch operations, TTL
 * description, tags. What it does not: transactions (TransactWriteItems/TransactGetItems), streams,
 * PartiQL, backups. `api` faults (`{kind:"api", service:"dynamodb", action:"PutItem", ...}`) apply
 * before forwarding.
 *
 * Settings: `dynamodb.createTableMs`, `dynamodb.deleteTableMs`, `dynamodb.updateTableMs` (default
 * 0): how long tables stay CREATING/DELETING/UPDATING. dynalite counts them on the wall clock.
 */
import http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Backend, Cloud } from "../../cloud.ts";
import { AwsError } from "../../protocol/errors.ts";
import type { RawRequest, RawResponse } from "../../protocol/types.ts";

const TARGET_PREFIX = "DynamoDB_20120810.";
const ERROR_NAMESPACE = "com.amazonaws.dynamodb.v20120810#";
/** Hop-by-hop headers that belong to one connection, not to the forwarded message. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "te",
  "trailer",
  "host",
  "content-length",
]);

type DynaliteFactory = (opts: {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  path?: string;
}) => http.Server;

const nodeRequire = createRequire(import.meta.url);

/**
 * Loads dynalite. dynalite requires `level` (and so the native classic-level binding) at import
 * even though, without a `path`, it only uses memory-level. When the binding cannot load (no
 * prebuilt binary for the platform, a fresh `npm ci` with scripts disabled), `level` is replaced by
 * a stub so the in-memory store still works.
 */
export function loadDynalite(req: NodeJS.Require = nodeRequire): DynaliteFactory {
  try {
    return req("dynalite") as DynaliteFactory;
  } catch (err) {
    const dynaliteDir = path.dirname(req.resolve("dynalite/package.json"));
    const levelPath = req.resolve("level", { paths: [dynaliteDir] });
    const reason = (err as Error).message;
    class Level {
      constructor() {
        throw new Error(`dynalite on disk needs the native LevelDB binding, which failed to load: ${reason}`);
      }
    }
    req.cache[levelPath] = { id: levelPath, filename: levelPath, loaded: true, exports: { Level } } as unknown as NodeJS.Module;
    return req("dynalite") as DynaliteFactory;
  }
}

/** The DynamoDB backend registered as "dynamodb". */
export class DynamoDbBackend implements Backend {
  private server?: http.Server;
  private starting?: Promise<void>;
  private agent?: http.Agent;
  /** Where dynalite listens (`http://127.0.0.1:<port>`), empty until started. */
  url = "";

  constructor(private readonly cloud: Cloud) {}

  start(): Promise<void> {
    this.starting ??= this.open();
    return this.starting;
  }

  /** Forwards in flight, and whether `stop()` began (see there). */
  private inFlight = 0;
  private closing = false;

  async stop(): Promise<void> {
    // Let requests already inside dynalite finish (bounded): closing its database under a write
    // throws "Database is closed" from dynalite's own callbacks, uncaught. New requests get a 503.
    this.closing = true;
    const deadline = Date.now() + 5_000;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const server = this.server;
    this.server = undefined;
    this.starting = undefined;
    this.url = "";
    this.agent?.destroy();
    this.agent = undefined;
    if (!server) return;
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  snapshot(): unknown {
    return { url: this.url, engine: "dynalite" };
  }

  /** The router's raw handler: forwards DynamoDB calls, passes everything else on. */
  async handle(req: RawRequest): Promise<RawResponse | undefined> {
    const target = req.headers["x-amz-target"];
    if (!target?.startsWith(TARGET_PREFIX)) return undefined;
    const action = target.slice(TARGET_PREFIX.length);
    try {
      this.cloud.authorize("dynamodb", action, parseBody(req.body));
      await this.cloud.faults.beforeAction("dynamodb", action);
    } catch (err) {
      const e = err instanceof AwsError ? err : new AwsError("InternalServerError", String(err), 500);
      return {
        status: e.status,
        headers: { "content-type": "application/x-amz-json-1.0", "x-amzn-requestid": this.cloud.hex(32).toUpperCase() },
        body: JSON.stringify({
          __type: `${e.code.includes("#") ? "" : e.code === "ThrottlingException" ? "com.amazon.coral.availability#" : ERROR_NAMESPACE}${e.code}`,
          message: e.message,
        }),
      };
    }
    if (this.closing) {
      return {
        status: 503,
        headers: { "content-type": "application/x-amz-json-1.0" },
        body: JSON.stringify({
          __type: `${ERROR_NAMESPACE}InternalServerError`,
          message: "the simulated DynamoDB is shutting down",
        }),
      };
    }
    // Forwarding is real socket I/O: the virtual clock must not jump while it is in flight.
    this.inFlight++;
    const forwarded = this.forward(req).finally(() => this.inFlight--);
    return this.cloud.clock.hold(forwarded).catch((err: Error) => ({
      status: 500,
      headers: { "content-type": "application/x-amz-json-1.0" },
      body: JSON.stringify({
        __type: `${ERROR_NAMESPACE}InternalServerError`,
        message: `dynalite did not answer: ${err.message}`,
      }),
    }));
  }

  private async open(): Promise<void> {
    const dynalite = loadDynalite();
    // dynalite reads the account and region for table ARNs from the environment when created.
    const saved = { account: process.env.AWS_ACCOUNT_ID, region: process.env.AWS_REGION };
    process.env.AWS_ACCOUNT_ID = this.cloud.accountId;
    process.env.AWS_REGION = this.cloud.region;
    let server: http.Server;
    try {
      server = dynalite({
        createTableMs: this.cloud.setting("dynamodb.createTableMs", 0),
        deleteTableMs: this.cloud.setting("dynamodb.deleteTableMs", 0),
        updateTableMs: this.cloud.setting("dynamodb.updateTableMs", 0),
      });
    } finally {
      restoreEnv("AWS_ACCOUNT_ID", saved.account);
      restoreEnv("AWS_REGION", saved.region);
    }
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  private async forward(req: RawRequest): Promise<RawResponse> {
    await this.start();
    const url = new URL(req.url, this.url);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k.toLowerCase())) headers[k] = v;
    headers.host = url.host;
    headers["content-length"] = String(req.body.length);
    return new Promise<RawResponse>((resolve, reject) => {
      const out = http.request(url, { method: req.method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const h: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined || HOP_BY_HOP.has(k)) continue;
            h[k] = Array.isArray(v) ? v.join(", ") : v;
          }
          const body = Buffer.concat(chunks);
          h["content-length"] = String(body.length);
          resolve({ status: res.statusCode ?? 500, headers: h, body });
        });
      });
      out.on("error", reject);
      out.end(req.body);
    });
  }
}

function restoreEnv(key: string, value: string | undefined): void {
  if (value === undefined) delete process.env[key];
  else process.env[key] = value;
}

/** Registers DynamoDB (dynalite behind the cloud endpoint) as "dynamodb". */
export function registerDynamoDb(cloud: Cloud): DynamoDbBackend {
  const backend = new DynamoDbBackend(cloud);
  cloud.register("dynamodb", backend);
  cloud.router.addRawHandler((req) => backend.handle(req));
  return backend;
}

function parseBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}
