import { randomUUID } from "node:crypto";
import { gunzipSync } from "node:zlib";
import type { Clock } from "../../../lib/clock.ts";
import { datesToEpoch, decodeForm, escapeXml, toXml } from "./codec.ts";
import { AwsError } from "./errors.ts";
import type { RawRequest, RawResponse, RequestContext, ServiceDefinition } from "./types.ts";

/** Consulted before every action; throws an AwsError to inject a fault (throttling, 5xx, …). */
export interface FaultGate {
  beforeAction(service: string, action: string): void | Promise<void>;
}

/** Observes every call (API-call counters for the benchmark, request logs). */
export type CallObserver = (call: { service: string; action: string; error?: string; at: number }) => void;

export interface RouterOptions {
  clock: Clock;
  region: string;
  accountId: string;
  faults?: FaultGate;
  /** Authorizes a call before it runs (IAM: `local/cloud/iam/enforce.ts`); throws the service's access-denied error. */
  authorize?: (service: string, action: string, input: unknown) => void;
  /**
   * Runs an action outside its caller's context: what a backend starts from a call (an execution's
   * steps, an async invocation) is the service's own work, not the calling Lambda's.
   */
  detach?: <T>(fn: () => T) => T;
}

const DEFAULT_REGION = "us-east-1";

/**
 * Routes a raw HTTP request to a service action by protocol: `X-Amz-Target` (json), the form's
 * `Version` or the SigV4 credential scope (ec2, query), or a REST path (rest-json). Renders the
 * result or error in the caller's protocol.
 */
export class Router {
  private readonly byTarget = new Map<string, ServiceDefinition>();
  private readonly byVersionMap = new Map<string, ServiceDefinition>();
  private readonly bySigningName = new Map<string, ServiceDefinition>();
  private readonly rest: ServiceDefinition[] = [];
  private readonly observers: CallObserver[] = [];
  /** Extra raw handlers tried first (admin API, dynamodb proxy). Return undefined to pass. */
  private readonly rawHandlers: ((req: RawRequest) => Promise<RawResponse | undefined> | RawResponse | undefined)[] = [];

  constructor(private readonly opts: RouterOptions) {}

  register(def: ServiceDefinition): void {
    this.bySigningName.set(def.signingName, def);
    if (def.targetPrefix) this.byTarget.set(def.targetPrefix, def);
    if (def.version && (def.protocol === "ec2" || def.protocol === "query")) this.byVersionMap.set(def.version, def);
    if (def.routes) this.rest.push(def);
  }

  service(signingName: string): ServiceDefinition | undefined {
    return this.bySigningName.get(signingName);
  }

  /** The query service that answers an API `Version` (for errors rendered before routing). */
  byVersion(version: string): ServiceDefinition | undefined {
    return this.byVersionMap.get(version);
  }

  addRawHandler(h: (req: RawRequest) => Promise<RawResponse | undefined> | RawResponse | undefined): void {
    this.rawHandlers.push(h);
  }

  observe(fn: CallObserver): () => void {
    this.observers.push(fn);
    return () => this.observers.splice(this.observers.indexOf(fn), 1);
  }

  /** Calls an action directly, in process, with the same fault gate and observers (used by integrations). */
  async invoke(signingName: string, action: string, input: unknown, region?: string): Promise<unknown> {
    const def = this.bySigningName.get(signingName);
    if (!def) throw new AwsError("UnknownService", `no simulated service named ${signingName}`, 400);
    const ctx = this.context(def, action, region);
    return this.run(def, action, input, ctx);
  }

  async handle(req: RawRequest): Promise<RawResponse> {
    const headers = lowerKeys(req.headers);
    // SDKs gzip large bodies of operations with the requestCompression trait (CloudWatch
    // PutMetricData above 10 KiB) and say so in Content-Encoding.
    if (/\bgzip\b/i.test(headers["content-encoding"] ?? "") && req.body.length > 0) {
      try {
        req = { ...req, body: gunzipSync(req.body) };
      } catch {
        return jsonError(new AwsError("SerializationException", "The request body is not valid gzip"), "1.1", "");
      }
    }
    for (const h of this.rawHandlers) {
      const r = await h({ ...req, headers });
      if (r) return r;
    }
    const region = regionFromAuth(headers.authorization) ?? DEFAULT_REGION;
    const target = headers["x-amz-target"];
    if (target) return this.handleJson(target, req.body, headers, region);
    const ct = headers["content-type"] ?? "";
    if (
      req.method === "POST" &&
      (ct.startsWith("application/x-www-form-urlencoded") || (!ct && req.body.length > 0 && req.url.split("?")[0] === "/"))
    ) {
      return this.handleForm(req.body, headers, region);
    }
    const [path = "/", qs = ""] = req.url.split("?", 2);
    if (req.method === "GET" && path === "/" && qs.includes("Action=")) {
      return this.handleForm(Buffer.from(qs), headers, region);
    }
    for (const def of this.rest) {
      for (const route of def.routes ?? []) {
        if (route.method !== req.method) continue;
        const m = route.pattern.exec(decodeURIComponent(path));
        if (!m) continue;
        return this.handleRest(def, route, m.groups ?? {}, new URLSearchParams(qs), req.body, headers, region);
      }
    }
    return jsonError(
      new AwsError("UnknownOperationException", `No simulated AWS operation matches ${req.method} ${path}`, 404),
      "1.1",
      "",
    );
  }

  private context(def: ServiceDefinition, action: string, region?: string): RequestContext {
    return {
      requestId: randomUUID(),
      region: region ?? this.opts.region ?? DEFAULT_REGION,
      accountId: this.opts.accountId,
      clock: this.opts.clock,
      service: def.signingName,
      action,
      protocol: def.protocol,
    };
  }

  private async run(def: ServiceDefinition, action: string, input: unknown, ctx: RequestContext): Promise<unknown> {
    const fn = Object.hasOwn(def.actions, action) ? def.actions[action] : undefined;
    const at = this.opts.clock.now();
    try {
      if (!fn) {
        if (def.protocol === "ec2")
          throw new AwsError("InvalidAction", `The action ${action} is not valid for this web service.`);
        if (def.protocol === "query")
          throw new AwsError("InvalidAction", `Could not find operation ${action} for version ${def.version}`);
        throw new AwsError("UnknownOperationException", `Unknown operation ${action}`);
      }
      this.opts.authorize?.(def.signingName, action, input);
      await this.opts.faults?.beforeAction(def.signingName, action);
      const out = await (this.opts.detach ? this.opts.detach(() => fn(input, ctx)) : fn(input, ctx));
      for (const o of this.observers) o({ service: def.signingName, action, at });
      return out;
    } catch (err) {
      const e = asAwsError(err);
      for (const o of this.observers) o({ service: def.signingName, action, error: e.code, at });
      throw e;
    }
  }

  private async handleForm(body: Buffer, headers: Record<string, string>, region: string): Promise<RawResponse> {
    const params = new URLSearchParams(body.toString("utf8"));
    const action = params.get("Action") ?? "";
    const version = params.get("Version") ?? "";
    const scope = serviceFromAuth(headers.authorization);
    const def = this.byVersionMap.get(version) ?? (scope ? this.bySigningName.get(scope) : undefined);
    if (!def || (def.protocol !== "ec2" && def.protocol !== "query")) {
      return queryError(
        new AwsError(
          "InvalidAction",
          `No simulated query service answers Version=${version || "(missing)"} / scope ${scope ?? "(none)"}`,
        ),
        "",
        false,
        randomUUID(),
      );
    }
    const ctx = this.context(def, action, region);
    const isEc2 = def.protocol === "ec2";
    if (!action)
      return queryError(
        new AwsError(isEc2 ? "MissingAction" : "MissingAction", "The request must contain the parameter Action"),
        def.xmlns ?? "",
        isEc2,
        ctx.requestId,
      );
    try {
      const out = await this.run(def, action, decodeForm(params), ctx);
      const xmlns = def.xmlns ?? "";
      const payload = toXml(out ?? {}, isEc2 ? "item" : "member");
      const xml = isEc2
        ? `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${xmlns}"><requestId>${ctx.requestId}</requestId>${payload}</${action}Response>`
        : `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${xmlns}">${
            out === undefined ? "" : `<${action}Result>${payload}</${action}Result>`
          }<ResponseMetadata><RequestId>${ctx.requestId}</RequestId></ResponseMetadata></${action}Response>`;
      return { status: 200, headers: { "content-type": "text/xml;charset=UTF-8", "x-amzn-requestid": ctx.requestId }, body: xml };
    } catch (err) {
      return queryError(asAwsError(err), def.xmlns ?? "", isEc2, ctx.requestId);
    }
  }

  private async handleJson(target: string, body: Buffer, _headers: Record<string, string>, region: string): Promise<RawResponse> {
    const dot = target.lastIndexOf(".");
    const prefix = target.slice(0, dot);
    const action = target.slice(dot + 1);
    const def = this.byTarget.get(prefix);
    if (!def) return jsonError(new AwsError("UnknownOperationException", `Unknown target ${target}`), "1.1", "");
    const ctx = this.context(def, action, region);
    let input: unknown = {};
    try {
      const text = body.toString("utf8").trim();
      input = text ? JSON.parse(text) : {};
      if (input === null || typeof input !== "object" || Array.isArray(input)) throw new SyntaxError("not an object");
    } catch {
      return jsonError(
        new AwsError("SerializationException", "Start of structure or map found where not expected."),
        def.jsonVersion ?? "1.1",
        "",
        ctx.requestId,
      );
    }
    try {
      const out = await this.run(def, action, input, ctx);
      return {
        status: 200,
        headers: { "content-type": `application/x-amz-json-${def.jsonVersion ?? "1.1"}`, "x-amzn-requestid": ctx.requestId },
        body: JSON.stringify(datesToEpoch(out ?? {})),
      };
    } catch (err) {
      return jsonError(asAwsError(err), def.jsonVersion ?? "1.1", def.errorPrefix ?? "", ctx.requestId);
    }
  }

  private async handleRest(
    def: ServiceDefinition,
    route: NonNullable<ServiceDefinition["routes"]>[number],
    groups: Record<string, string>,
    query: URLSearchParams,
    body: Buffer,
    headers: Record<string, string>,
    region: string,
  ): Promise<RawResponse> {
    const ctx = this.context(def, route.action, region);
    try {
      let input: unknown;
      if (route.bind) input = route.bind(groups, query, body, headers);
      else {
        const text = body.toString("utf8").trim();
        input = { ...Object.fromEntries(query), ...groups, body: text ? JSON.parse(text) : {} };
      }
      const out = await this.run(def, route.action, input, ctx);
      if (route.render) {
        const r = route.render(out);
        return {
          status: r.status ?? route.status ?? 200,
          headers: { "x-amzn-requestid": ctx.requestId, ...(r.headers ?? {}) },
          body: r.body,
        };
      }
      return {
        status: route.status ?? 200,
        headers: { "content-type": "application/json", "x-amzn-requestid": ctx.requestId },
        body: JSON.stringify(datesToEpoch(out ?? {})),
      };
    } catch (err) {
      const e = err instanceof SyntaxError ? new AwsError("SerializationException", "Malformed JSON body") : asAwsError(err);
      return {
        status: e.status,
        headers: { "content-type": "application/json", "x-amzn-requestid": ctx.requestId, "x-amzn-errortype": e.code },
        body: JSON.stringify({ __type: e.code, message: e.message, Message: e.message }),
      };
    }
  }
}

export function asAwsError(err: unknown): AwsError {
  if (err instanceof AwsError) return err;
  // A bug in a simulated service must not hang or crash the server: report it as a 500.
  const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new AwsError("InternalFailure", `The simulated service failed: ${msg}`, 500);
}

/**
 * An error answered before any service runs (the endpoint's signature check), in the protocol the
 * request speaks, so the SDK or the AWS CLI shows its code and message: JSON for `X-Amz-Target`,
 * XML for query and EC2 forms, JSON for REST.
 */
export function protocolError(
  req: RawRequest,
  e: AwsError,
  services: { byVersion(v: string): ServiceDefinition | undefined },
): RawResponse {
  const headers = lowerKeys(req.headers);
  if (headers["x-amz-target"]) return jsonError(e, "1.1", "");
  const [path = "/", qs = ""] = req.url.split("?", 2);
  const form =
    (headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded") || (path === "/" && qs.includes("Action="));
  if (!form) return jsonError(e, "1.1", "");
  const version = new URLSearchParams(qs.includes("Action=") ? qs : req.body.toString("utf8")).get("Version") ?? "";
  const def = services.byVersion(version);
  return queryError(e, def?.xmlns ?? "", def?.protocol === "ec2", randomUUID());
}

function queryError(e: AwsError, xmlns: string, ec2: boolean, requestId: string): RawResponse {
  const body = ec2
    ? `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(e.code)}</Code><Message>${escapeXml(e.message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`
    : `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${xmlns}"><Error><Type>${e.fault}</Type><Code>${escapeXml(e.code)}</Code><Message>${escapeXml(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
  return { status: e.status, headers: { "content-type": "text/xml;charset=UTF-8", "x-amzn-requestid": requestId }, body };
}

function jsonError(e: AwsError, version: string, prefix: string, requestId: string = randomUUID()): RawResponse {
  const type = e.typePrefix || (e.code === "ValidationException" ? "com.amazon.coral.validate#" : prefix);
  return {
    status: e.status,
    headers: { "content-type": `application/x-amz-json-${version}`, "x-amzn-requestid": requestId },
    body: JSON.stringify({ __type: `${type}${e.code}`, message: e.message }),
  };
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(",") : String(v);
  return out;
}

/** `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request, …` */
function credentialScope(auth: string | undefined): string[] | undefined {
  const m = auth ? /Credential=([^,\s]+)/.exec(auth) : null;
  return m?.[1]?.split("/");
}
export function regionFromAuth(auth: string | undefined): string | undefined {
  return credentialScope(auth)?.[2];
}
export function serviceFromAuth(auth: string | undefined): string | undefined {
  return credentialScope(auth)?.[3];
}
