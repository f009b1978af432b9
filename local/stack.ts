/**
 * The embedded default: boots the simulated cloud, the local Step Functions engine and DynamoDB,
 * and registers kiln's functions, state machines, tables, topics, EventBridge rules, schedules and
 * the webhook URL **from serverless.yml** — the same wiring that deploys.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { CreateTableCommand, DynamoDBClient, type CreateTableCommandInput } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from "@aws-sdk/client-eventbridge";
import { CreateScheduleCommand, SchedulerClient } from "@aws-sdk/client-scheduler";
import { CreateStateMachineCommand, SFNClient } from "@aws-sdk/client-sfn";
import { CreateTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { type Clock, parseClock } from "../lib/clock.ts";
import { clearConfigCache } from "../lib/config/index.ts";
import { configureRuntime } from "../lib/runtime.ts";
import { createCloud } from "./cloud/index.ts";
import { stackTarget } from "./cli/target.ts";
import { type ConsoleServer, startConsole } from "./console/server.ts";
import { type Cloud, rolePrincipal } from "./cloud/cloud.ts";
import type { FaultRule } from "./cloud/faults.ts";
import { type Env, rolePolicies } from "./cloud/iam/check.ts";
import { type AuthorizerStats, type ExecutionRole, roleAuthorizer } from "./cloud/iam/enforce.ts";
import type { LambdaBackend } from "./cloud/services/lambda/index.ts";
import { loadServerless, PROJECT_ROOT, type ServerlessConfig } from "./serverless.ts";

export interface StackOptions {
  /** A Clock, or `virtual` / `real` / `scaled:N` (default virtual). */
  clock?: Clock | string;
  seed?: number;
  /** Cloud behaviour settings (durations, app servers…). */
  settings?: Record<string, number | string | boolean>;
  faults?: FaultRule[];
  /** HTTP port of the cloud endpoint; `false` for in-process only (default: a random port). */
  port?: number | false;
  /** Path of kiln.config.yaml (default: the project's). */
  config?: string;
  stage?: string;
  /** The web console on its own loopback HTTP server (default: a free port); `false` for none. */
  console?: { port?: number } | false;
}

export interface StackInfo {
  endpoint: string;
  webhookUrl: string;
  consoleUrl?: string;
  region: string;
  stage: string;
  stateMachines: Record<string, string>;
  functions: Record<string, string>;
  tables: Record<string, string>;
  topics: Record<string, string>;
  webhookSecretParameter?: string;
}

export class Stack {
  readonly functions: Record<string, string> = {};
  readonly stateMachines: Record<string, string> = {};
  readonly tables: Record<string, string> = {};
  readonly topics: Record<string, string> = {};
  readonly parameters: Record<string, string> = {};
  /** The local webhook secret (the real one lives in an SSM SecureString on AWS too). */
  webhookSecret = "";
  webhookUrl = "";
  consoleUrl?: string;
  private consoleServer?: ConsoleServer;
  /** KILN_CONFIG before a stack started with its own `config` (restored by stop()). */
  private previousConfig?: { value: string | undefined };

  private constructor(
    readonly cloud: Cloud,
    readonly serverless: ServerlessConfig,
    readonly stage: string,
  ) {}

  static async start(opts: StackOptions = {}): Promise<Stack> {
    const clock = typeof opts.clock === "object" ? opts.clock : parseClock(opts.clock ?? "virtual");
    // The stack's configuration is the process's while it runs (its functions and the CLI read
    // KILN_CONFIG); stop() gives the previous value back, so the next stack in this process (a test,
    // a simulation seed) does not inherit it.
    const previousConfig = process.env.KILN_CONFIG;
    if (opts.config) process.env.KILN_CONFIG = path.resolve(opts.config);
    clearConfigCache();
    const cloud = createCloud({ clock, seed: opts.seed, settings: opts.settings, faults: opts.faults });
    await cloud.start({ port: opts.port === undefined ? 0 : opts.port });
    // In virtual time the SDK's own retry backoff would sleep in wall time while the clock jumps
    // (a Lambda "times out" mid-backoff): handlers make one attempt and throttling reaches the state
    // machine's Retry (or Lambda's async retries), which wait on the shared clock. Scaled and real
    // time keep the SDK's retries, as in Lambda.
    configureRuntime({
      clock: cloud.clock,
      aws: { ...cloud.clientConfig(), ...(cloud.clock.kind === "virtual" ? { maxAttempts: 1 } : {}) },
    });
    const stage = opts.stage ?? "local";
    // serverless.yml's `params.local` points PagerDuty/Slack at the cloud's capture endpoint.
    process.env.KILN_LOCAL_ENDPOINT = cloud.endpoint || "http://127.0.0.1:0";
    const sls = loadServerless({ stage, region: cloud.region, accountId: cloud.accountId });
    const stack = new Stack(cloud, sls, stage);
    stack.previousConfig = opts.config ? { value: previousConfig } : undefined;
    await stack.wire();
    if (opts.console !== false) {
      stack.consoleServer = await cloud.clock.hold(
        startConsole({ target: stackTarget(stack), clock: cloud.clock, port: opts.console?.port }),
      );
      stack.consoleUrl = stack.consoleServer.url;
    }
    return stack;
  }

  info(): StackInfo {
    return {
      endpoint: this.cloud.endpoint,
      webhookUrl: this.webhookUrl,
      consoleUrl: this.consoleUrl,
      region: this.cloud.region,
      stage: this.stage,
      stateMachines: { ...this.stateMachines },
      functions: { ...this.functions },
      tables: { ...this.tables },
      topics: { ...this.topics },
      webhookSecretParameter: this.parameters.webhookSecret,
    };
  }

  async stop(): Promise<void> {
    await this.consoleServer?.close();
    await this.cloud.stop();
    if (this.previousConfig) {
      if (this.previousConfig.value === undefined) delete process.env.KILN_CONFIG;
      else process.env.KILN_CONFIG = this.previousConfig.value;
      this.previousConfig = undefined;
      clearConfigCache();
    }
  }

  private get region(): string {
    return this.cloud.region;
  }

  private functionName(key: string): string {
    return `${this.serverless.service}-${this.stage}-${key}`;
  }

  private functionArn(key: string): string {
    return `arn:aws:lambda:${this.region}:${this.cloud.accountId}:function:${this.functionName(key)}`;
  }

  /** Resolves CloudFormation intrinsics against the local resources. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (!value || typeof value !== "object") return value;
    const o = value as Record<string, unknown>;
    if ("Ref" in o && Object.keys(o).length === 1) return this.ref(String(o.Ref));
    if ("Fn::GetAtt" in o && Object.keys(o).length === 1) {
      const [res, attr] = o["Fn::GetAtt"] as [string, string];
      return this.getAtt(res, attr);
    }
    if ("Fn::Sub" in o && Object.keys(o).length === 1) {
      const sub = o["Fn::Sub"];
      const [tpl, vars] = Array.isArray(sub) ? (sub as [string, Record<string, unknown>]) : [sub as string, {}];
      return tpl.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
        if (name in vars) return String(this.resolve(vars[name]));
        if (name === "AWS::Region") return this.region;
        if (name === "AWS::AccountId") return this.cloud.accountId;
        if (name === "AWS::Partition") return "aws";
        if (name.includes(".")) {
          const [r, a] = name.split(".") as [string, string];
          return String(this.getAtt(r, a));
        }
        return String(this.ref(name));
      });
    }
    if ("Fn::Join" in o) {
      const [sep, parts] = o["Fn::Join"] as [string, unknown[]];
      return parts.map((p) => this.resolve(p)).join(sep);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = this.resolve(v);
    return out;
  }

  private ref(name: string): unknown {
    if (name === "AWS::Region") return this.region;
    if (name === "AWS::AccountId") return this.cloud.accountId;
    if (name in this.tables) return this.tables[name];
    if (name in this.topics) return this.topics[name];
    if (name in this.stateMachines) return this.stateMachines[name];
    const res = this.serverless.resources?.Resources?.[name];
    if (res?.Type === "AWS::DynamoDB::Table") return this.tables[name];
    const fnKey = Object.keys(this.serverless.functions).find((k) => lambdaLogicalId(k) === name);
    if (fnKey) return this.functionName(fnKey);
    throw new Error(`serverless.yml: cannot resolve Ref ${name} locally`);
  }

  private getAtt(resource: string, attr: string): unknown {
    const fnKey =
      resource in this.serverless.functions
        ? resource
        : Object.keys(this.serverless.functions).find((k) => lambdaLogicalId(k) === resource);
    if (fnKey && attr === "Arn") return this.functionArn(fnKey);
    if (resource in this.tables && attr === "Arn")
      return `arn:aws:dynamodb:${this.region}:${this.cloud.accountId}:table/${this.tables[resource]}`;
    if (resource in this.topics && (attr === "TopicArn" || attr === "Arn")) return this.topics[resource];
    if (resource in this.stateMachines && attr === "Arn") return this.stateMachines[resource];
    throw new Error(`serverless.yml: cannot resolve Fn::GetAtt ${resource}.${attr} locally`);
  }

  /** Each deployed function's execution role, by function name, as the cloud authorizes its calls. */
  roles = new Map<string, ExecutionRole>();
  /** What IAM enforcement cost so far (calls authorized, policy evaluations, wall ms): `npm run bench` reports it. */
  readonly iamStats: AuthorizerStats = { checks: 0, evaluations: 0, ms: 0 };

  /** The account as the IAM evaluation sees it: this stack's region, account and tables. */
  private iamEnv(): Env {
    return {
      region: this.region,
      accountId: this.cloud.accountId,
      stage: this.stage,
      service: this.serverless.service,
      tables: Object.values(this.tables).map((t) => `arn:aws:dynamodb:${this.region}:${this.cloud.accountId}:table/${t}`),
    };
  }

  /** Each function's execution role (serverless.yml `role:`), its policies resolved against this stack. */
  private executionRoles(): Map<string, ExecutionRole> {
    const resources = this.serverless.resources?.Resources ?? {};
    const refs: Record<string, string> = {};
    for (const [id, t] of Object.entries(this.tables))
      refs[`${id}.Arn`] = `arn:aws:dynamodb:${this.region}:${this.cloud.accountId}:table/${t}`;
    for (const [id, arn] of Object.entries(this.topics)) Object.assign(refs, { [id]: arn, [`${id}.TopicArn`]: arn });
    for (const [id, arn] of Object.entries(this.stateMachines)) Object.assign(refs, { [id]: arn, [`${id}.Arn`]: arn });
    for (const key of Object.keys(this.serverless.functions))
      Object.assign(refs, {
        [lambdaLogicalId(key)]: this.functionName(key),
        [`${lambdaLogicalId(key)}.Arn`]: this.functionArn(key),
      });
    const roles = new Map<string, ExecutionRole>();
    const byId = new Map<string, ExecutionRole>();
    // Every role of the template, as a service assumes it (a state machine's roleArn, a Scheduler schedule's RoleArn).
    for (const [id, r] of Object.entries(resources)) {
      if ((r as { Type?: string }).Type !== "AWS::IAM::Role") continue;
      const role: ExecutionRole = {
        roleName: this.roleName(id),
        policies: rolePolicies(r as { Properties?: Record<string, unknown> }, this.iamEnv(), refs),
      };
      byId.set(id, role);
      roles.set(rolePrincipal(this.roleArn(id)), role);
    }
    // And each function's execution role, under the function's name.
    for (const [key, fn] of Object.entries(this.serverless.functions)) {
      const role = byId.get((fn as { role?: string }).role ?? "");
      if (role) roles.set(this.functionName(key), role);
    }
    return roles;
  }

  private async wire(): Promise<void> {
    const cfg = this.cloud.clientConfig();
    const resources = this.serverless.resources?.Resources ?? {};
    // 1. Tables and topics declared in `resources` — created from their own CloudFormation properties.
    const ddb = new DynamoDBClient(cfg);
    const sns = new SNSClient(cfg);
    for (const [id, r] of Object.entries(resources)) {
      if (r.Type === "AWS::DynamoDB::Table") {
        const p = this.resolveProps(r.Properties, id) as Record<string, unknown>;
        const name = String(p.TableName ?? `${this.serverless.service}-${this.stage}-${id}`);
        this.tables[id] = name;
        await ddb.send(
          new CreateTableCommand({
            TableName: name,
            KeySchema: p.KeySchema as CreateTableCommandInput["KeySchema"],
            AttributeDefinitions: p.AttributeDefinitions as CreateTableCommandInput["AttributeDefinitions"],
            BillingMode: "PAY_PER_REQUEST",
            GlobalSecondaryIndexes: p.GlobalSecondaryIndexes as CreateTableCommandInput["GlobalSecondaryIndexes"],
          }),
        );
      } else if (r.Type === "AWS::SNS::Topic") {
        const p = this.resolveProps(r.Properties, id) as Record<string, unknown>;
        const out = await sns.send(
          new CreateTopicCommand({ Name: String(p.TopicName ?? `${this.serverless.service}-${this.stage}-${id}`) }),
        );
        this.topics[id] = out.TopicArn!;
      }
    }
    // 2. State machine ARNs are derived from their names, so functions can reference them.
    const machines = this.serverless.stepFunctions?.stateMachines ?? {};
    const machineIds: Record<string, string> = {};
    for (const [key, m] of Object.entries(machines)) {
      const id = String((m as { id?: string }).id ?? `${key.charAt(0).toUpperCase()}${key.slice(1)}StepFunctionsStateMachine`);
      const name = String(m.name ?? `${key}-${this.stage}`);
      machineIds[key] = id;
      this.stateMachines[id] = `arn:aws:states:${this.region}:${this.cloud.accountId}:stateMachine:${name}`;
    }
    // 3. Secrets referenced from SSM: created locally with generated values (on AWS they are created by the operator).
    const ssm = new SSMClient(cfg);
    const secretParams = (this.serverless.custom?.secrets ?? {}) as Record<string, string>;
    for (const [key, name] of Object.entries(secretParams)) {
      const value =
        key === "webhookSecret"
          ? randomBytes(24).toString("hex")
          : key === "slackWebhookUrl"
            ? `${this.cloud.endpoint}/_kiln/capture/slack`
            : `local-${key}`;
      if (key === "webhookSecret") this.webhookSecret = value;
      this.parameters[key] = name;
      await ssm.send(new PutParameterCommand({ Name: name, Type: "SecureString", Value: value, Overwrite: true }));
    }
    // 4. Functions: the very handler modules that deploy, registered as in-process Lambdas.
    const lambda = this.cloud.backend<LambdaBackend>("lambda");
    const providerEnv = (this.resolve(this.serverless.provider.environment ?? {}) ?? {}) as Record<string, unknown>;
    for (const [key, fn] of Object.entries(this.serverless.functions)) {
      const [file, exportName = "handler"] = splitHandler(fn.handler);
      const mod = await import(pathToFileURL(path.join(PROJECT_ROOT, file)).href);
      const handler = mod[exportName];
      if (typeof handler !== "function")
        throw new Error(`serverless.yml: functions.${key}.handler ${fn.handler} exports no function`);
      const env: Record<string, unknown> = {
        ...providerEnv,
        ...((this.resolve(fn.environment ?? {}) ?? {}) as Record<string, unknown>),
      };
      // serverless.yml names the packaged kiln.config.yaml; locally the stack's own configuration
      // (`--config`, KILN_CONFIG) must reach its functions, as an absolute path (never the cwd's file).
      if (process.env.KILN_CONFIG) env.KILN_CONFIG = path.resolve(process.env.KILN_CONFIG);
      else if (typeof env.KILN_CONFIG === "string") env.KILN_CONFIG = path.resolve(PROJECT_ROOT, env.KILN_CONFIG);
      this.functions[key] = lambda.registerFunction({
        name: this.functionName(key),
        handler,
        timeoutSeconds: fn.timeout ?? this.serverless.provider.timeout ?? 6,
        memorySize: fn.memorySize ?? this.serverless.provider.memorySize ?? 1024,
        environment: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
        handlerName: fn.handler,
        runtime: String(this.serverless.provider.runtime ?? "nodejs22.x"),
      });
    }
    // 4b. IAM: each function's calls are authorized against its own role (local/cloud/iam/enforce.ts).
    this.roles = this.executionRoles();
    this.cloud.setAuthorizer(roleAuthorizer(this.roles, this.iamEnv(), this.iamStats), (p) => this.roles.has(p));
    // 5. State machines from state-machines/*.asl.json with their references resolved locally.
    const sfn = new SFNClient(cfg);
    for (const [key, m] of Object.entries(machines)) {
      const definition = this.resolve(m.definition);
      const arn = this.stateMachines[machineIds[key]!]!;
      await sfn.send(
        new CreateStateMachineCommand({
          name: arn.split(":").pop()!,
          definition: JSON.stringify(definition),
          // The machine's own role (`role: !GetAtt <Id>Role.Arn`): its Task integrations run as it.
          roleArn: this.roleArn(getAttTarget((m as { role?: unknown }).role) ?? "states"),
          type: "STANDARD",
        }),
      );
    }
    // 6. Events: EventBridge rules, schedules and function URLs.
    const events = new EventBridgeClient(cfg);
    const scheduler = new SchedulerClient(cfg);
    for (const [key, fn] of Object.entries(this.serverless.functions)) {
      for (const [i, ev] of (fn.events ?? []).entries()) {
        const e = this.resolve(ev) as Record<string, Record<string, unknown> | string>;
        if (e.eventBridge && typeof e.eventBridge === "object") {
          const rule = `${this.functionName(key)}-rule-${i + 1}`;
          await events.send(new PutRuleCommand({ Name: rule, EventPattern: JSON.stringify(e.eventBridge.pattern) }));
          await events.send(new PutTargetsCommand({ Rule: rule, Targets: [{ Id: key, Arn: this.functions[key]! }] }));
        } else if (e.schedule) {
          const s = (typeof e.schedule === "string" ? { rate: e.schedule } : e.schedule) as Record<string, unknown>;
          const rates = (Array.isArray(s.rate) ? s.rate : [s.rate]) as string[];
          for (const [j, rate] of rates.entries()) {
            await scheduler.send(
              new CreateScheduleCommand({
                Name: `${this.functionName(key)}-${i + 1}-${j + 1}`,
                ScheduleExpression: rate,
                FlexibleTimeWindow: { Mode: "OFF" },
                State: s.enabled === false ? "DISABLED" : "ENABLED",
                Target: {
                  Arn: this.functions[key]!,
                  // `method: scheduler` (EventBridge Scheduler) assumes the function's own role, as osls
                  // deploys it; a plain `schedule` is an EventBridge rule (a resource-based permission, not evaluated).
                  RoleArn: this.roleArn((s.method === "scheduler" && (fn as { role?: string }).role) || "scheduler"),
                  Input: s.input === undefined ? undefined : JSON.stringify(s.input),
                },
              }),
            );
          }
        }
      }
      if (fn.url) this.mountFunctionUrl(key);
    }
  }

  /** The name CloudFormation gives the role resource `id` here (`<service>-<stage>-<id>`). */
  private roleName(id: string): string {
    return `${this.serverless.service}-${this.stage}-${id}`;
  }

  private roleArn(id: string): string {
    return `arn:aws:iam::${this.cloud.accountId}:role/${this.roleName(id)}`;
  }

  private resolveProps(props: unknown, _id: string): unknown {
    return this.resolve(props ?? {});
  }

  /** A Lambda Function URL on the cloud endpoint: `POST <endpoint>/lambda-url/<function>/`. */
  private mountFunctionUrl(key: string): void {
    const prefix = `/lambda-url/${key}`;
    const lambda = this.cloud.backend<LambdaBackend>("lambda");
    this.cloud.router.addRawHandler(async (req) => {
      const url = new URL(req.url, "http://local");
      if (!url.pathname.startsWith(prefix)) return undefined;
      const event = functionUrlEvent(req, url, prefix, this.cloud.clock.now());
      const r = await lambda.invoke(this.functions[key]!, event);
      if (r.functionError) {
        return {
          status: 502,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ message: "Internal Server Error" }),
        };
      }
      return functionUrlResponse(r.payload);
    });
    if (key === "webhook" || !this.webhookUrl) this.webhookUrl = `${this.cloud.endpoint}${prefix}/`;
  }
}

/** `functions/webhook.handler` → [`functions/webhook.ts`, `handler`]. */
function splitHandler(h: string): [string, string] {
  const dot = h.lastIndexOf(".");
  return [`${h.slice(0, dot)}.ts`, h.slice(dot + 1)];
}

/** Serverless's logical id of a function: `webhook` → `WebhookLambdaFunction`. */
export function lambdaLogicalId(key: string): string {
  const normalized = key.replace(/-/g, "Dash").replace(/_/g, "Underscore");
  return `${normalized.charAt(0).toUpperCase()}${normalized.slice(1)}LambdaFunction`;
}

/** The payload-format-2.0 event a Lambda Function URL delivers. */
function functionUrlEvent(
  req: { method: string; headers: Record<string, string>; body: Buffer },
  url: URL,
  prefix: string,
  now: number,
): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = String(v);
  const ct = headers["content-type"] ?? "";
  const textual = /json|text|x-www-form-urlencoded/.test(ct) || ct === "";
  const rawPath = url.pathname.slice(prefix.length) || "/";
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString: url.search.slice(1),
    headers,
    queryStringParameters: url.search ? Object.fromEntries(url.searchParams) : undefined,
    requestContext: {
      accountId: "anonymous",
      apiId: "local",
      domainName: url.host,
      http: {
        method: req.method,
        path: rawPath,
        protocol: "HTTP/1.1",
        sourceIp: "127.0.0.1",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: randomBytes(16).toString("hex"),
      routeKey: "$default",
      stage: "$default",
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    body: textual ? req.body.toString("utf8") : req.body.toString("base64"),
    isBase64Encoded: !textual,
  };
}

/** Lambda Function URL response mapping: a `{statusCode, headers, body}` object, or any JSON as a 200 body. */
function functionUrlResponse(payload: string): { status: number; headers: Record<string, string>; body: string } {
  let out: unknown;
  try {
    out = payload ? JSON.parse(payload) : null;
  } catch {
    return { status: 200, headers: { "content-type": "application/json" }, body: payload };
  }
  if (out && typeof out === "object" && "statusCode" in out) {
    const r = out as { statusCode: number; headers?: Record<string, string>; body?: string; isBase64Encoded?: boolean };
    const body = r.isBase64Encoded && r.body ? Buffer.from(r.body, "base64").toString("utf8") : (r.body ?? "");
    return { status: r.statusCode, headers: { "content-type": "application/json", ...(r.headers ?? {}) }, body };
  }
  return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(out) };
}

/** `X` of `{"Fn::GetAtt": ["X", "Arn"]}` or `{"Fn::GetAtt": "X.Arn"}` (how the YAML loader reads `!GetAtt X.Arn`). */
function getAttTarget(v: unknown): string | undefined {
  const g = v && typeof v === "object" ? (v as Record<string, unknown>)["Fn::GetAtt"] : undefined;
  if (Array.isArray(g)) return typeof g[0] === "string" ? g[0] : undefined;
  return typeof g === "string" ? g.split(".")[0] : undefined;
}
