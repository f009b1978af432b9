/**
 * The Step Functions API of the simulated cloud (awsJson 1.0, `X-Amz-Target: AWSStepFunctions.<Op>`),
 * backed by the local engine. State machines, executions, history, redrive and task tokens behave
 * as reference §6 describes; every execution status change is emitted as the EventBridge event
 * "Step Functions Execution Status Change".
 */
import aslValidator from "asl-validator";
import type { Backend, Cloud } from "../cloud/cloud.ts";
import { AwsError } from "../cloud/protocol/errors.ts";
import { Params } from "../cloud/protocol/params.ts";
import type { ServiceDefinition } from "../cloud/protocol/types.ts";
import { Engine } from "./engine/engine.ts";
import type { Execution } from "./engine/execution.ts";
import { TokenError } from "./engine/runtime.ts";
import type { EngineDeps, ExecutionStatus, ExecutionView, HistoryEvent, StatesGraph } from "./engine/types.ts";

export type { EngineDeps, ExecutionView, HistoryEvent } from "./engine/types.ts";

const PREFIX = "com.amazonaws.swf.service.v2.model#";

/** Names of state machines and executions: 1–80 chars, no whitespace, wildcards, brackets or control characters. */
// Control characters are exactly what the AWS name rule forbids.
// eslint-disable-next-line no-control-regex
const NAME = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/;
/** RedriveExecution keeps the last 10 client tokens per execution, each valid for 15 minutes. */
const CLIENT_TOKENS = 10;
const CLIENT_TOKEN_TTL_MS = 15 * 60 * 1000;

interface StateMachine {
  stateMachineArn: string;
  name: string;
  definition: string;
  parsed: StatesGraph;
  roleArn: string;
  type: "STANDARD" | "EXPRESS";
  creationDate: Date;
  updateDate?: Date;
  revisionId: string;
  tags: Map<string, string>;
}

interface ExecutionRecord {
  exec: Execution;
  /** The definition the execution runs (kept when the state machine is updated or deleted). */
  definition: string;
  seq: number;
  clientTokens: { token: string; at: number; redriveDate: Date }[];
}

function sfnError(code: string, message: string, status = 400): AwsError {
  return new AwsError(code, message, status, status >= 500 ? "Receiver" : "Sender", PREFIX);
}

/** The Step Functions backend ("states" in the cloud registry). */
export class StepFunctionsBackend implements Backend {
  readonly definition: ServiceDefinition;
  readonly engine: Engine;
  private readonly machines = new Map<string, StateMachine>();
  private readonly executions = new Map<string, ExecutionRecord>();
  private seq = 0;

  constructor(
    private readonly cloud: Cloud,
    private readonly deps: EngineDeps,
    opts: { historyLimit?: number } = {},
  ) {
    this.engine = new Engine(
      { ...deps, onStatusChange: (v) => this.statusChanged(v) },
      {
        historyLimit: opts.historyLimit,
        startChild: (p) => this.startChild(p),
        awaitChild: (arn) => this.awaitExecution(arn),
      },
    );
    const a = (fn: (p: Params) => unknown) => (input: unknown) => fn(new Params(input, "json"));
    this.definition = {
      signingName: "states",
      protocol: "json",
      jsonVersion: "1.0",
      targetPrefix: "AWSStepFunctions",
      errorPrefix: PREFIX,
      actions: {
        CreateStateMachine: a((p) => this.createStateMachine(p)),
        DescribeStateMachine: a((p) => this.describeStateMachine(p)),
        ListStateMachines: a((p) => this.listStateMachines(p)),
        UpdateStateMachine: a((p) => this.updateStateMachine(p)),
        DeleteStateMachine: a((p) => this.deleteStateMachine(p)),
        StartExecution: a((p) => this.startExecutionAction(p)),
        DescribeExecution: a((p) => this.describeExecution(p)),
        ListExecutions: a((p) => this.listExecutions(p)),
        GetExecutionHistory: a((p) => this.getExecutionHistory(p)),
        StopExecution: a((p) => this.stopExecution(p)),
        RedriveExecution: a((p) => this.redriveExecution(p)),
        DescribeStateMachineForExecution: a((p) => this.describeStateMachineForExecution(p)),
        SendTaskSuccess: a((p) => this.sendTask(p, "success")),
        SendTaskFailure: a((p) => this.sendTask(p, "failure")),
        SendTaskHeartbeat: a((p) => this.sendTask(p, "heartbeat")),
        TagResource: a((p) => this.tagResource(p)),
        UntagResource: a((p) => this.untagResource(p)),
        ListTagsForResource: a((p) => this.listTags(p)),
      },
    };
  }

  // ---------------------------------------------------------------- in-process API (stack, tests)

  /** Resolves when the execution is next closed (SUCCEEDED, FAILED, TIMED_OUT or ABORTED). */
  awaitExecution(executionArn: string): Promise<ExecutionView> {
    return this.record(executionArn).exec.whenDone();
  }

  /** The execution's current view (DescribeExecution without the wire). */
  execution(executionArn: string): ExecutionView {
    return this.record(executionArn).exec.view();
  }

  /** The execution's history events. */
  history(executionArn: string): HistoryEvent[] {
    return [...this.record(executionArn).exec.history.events];
  }

  /** Every execution, newest first. */
  listAll(): ExecutionView[] {
    return [...this.executions.values()].sort((x, y) => y.seq - x.seq).map((r) => r.exec.view());
  }

  snapshot(): unknown {
    return {
      stateMachines: [...this.machines.values()].map((m) => ({ arn: m.stateMachineArn, name: m.name })),
      executions: this.listAll().map((v) => ({ arn: v.executionArn, status: v.status, redriveCount: v.redriveCount })),
    };
  }

  async stop(): Promise<void> {
    for (const r of this.executions.values()) await r.exec.stop("kiln.Shutdown", "The local cloud stopped");
  }

  // ---------------------------------------------------------------- state machines

  private arn(kind: string, ...parts: string[]): string {
    return `arn:aws:states:${this.deps.region}:${this.deps.accountId}:${kind}:${parts.join(":")}`;
  }

  private parseDefinition(text: string): StatesGraph {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw sfnError(
        "InvalidDefinition",
        `Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: ${(e as Error).message}'`,
      );
    }
    const problems = validate(text, parsed);
    if (problems) throw sfnError("InvalidDefinition", `Invalid State Machine Definition: '${problems}'`);
    return parsed as StatesGraph;
  }

  private machine(arn: string): StateMachine {
    if (!/^arn:aws[\w-]*:states:[^:]+:\d{12}:stateMachine:[^:]+(:[^:]+)?$/.test(arn))
      throw sfnError("InvalidArn", `Invalid Arn: 'Resource type not valid in this context: ${arn}'`);
    // A version or alias qualifier runs the unqualified machine (versions are not modelled).
    const base = arn.split(":").slice(0, 7).join(":");
    const m = this.machines.get(base);
    if (!m) throw sfnError("StateMachineDoesNotExist", `State Machine Does Not Exist: '${arn}'`);
    return m;
  }

  private createStateMachine(p: Params) {
    const name = p.str("name", { required: true });
    if (!NAME.test(name)) throw sfnError("InvalidName", `Invalid Name: '${name}'`);
    const definition = p.str("definition", { required: true });
    const roleArn = p.str("roleArn", { required: true });
    const type = (p.str("type") ?? "STANDARD") as StateMachine["type"];
    const parsed = this.parseDefinition(definition);
    const arn = this.arn("stateMachine", name);
    const existing = this.machines.get(arn);
    if (existing) {
      // Same name and same configuration is idempotent; anything else is a conflict.
      if (existing.definition === definition && existing.roleArn === roleArn && existing.type === type) {
        return { stateMachineArn: arn, creationDate: existing.creationDate };
      }
      throw sfnError("StateMachineAlreadyExists", `State Machine Already Exists: '${arn}'`);
    }
    const m: StateMachine = {
      stateMachineArn: arn,
      name,
      definition,
      parsed,
      roleArn,
      type,
      creationDate: this.cloud.clock.date(),
      revisionId: this.cloud.hex(32),
      tags: new Map(p.list<{ key: string; value: string }>("tags").map((t) => [t.key, t.value ?? ""])),
    };
    this.machines.set(arn, m);
    return { stateMachineArn: arn, creationDate: m.creationDate };
  }

  private describeStateMachine(p: Params) {
    const m = this.machine(p.str("stateMachineArn", { required: true }));
    return {
      stateMachineArn: m.stateMachineArn,
      name: m.name,
      status: "ACTIVE",
      definition: m.definition,
      roleArn: m.roleArn,
      type: m.type,
      creationDate: m.creationDate,
      revisionId: m.revisionId,
      loggingConfiguration: { level: "OFF", includeExecutionData: false },
      tracingConfiguration: { enabled: false },
    };
  }

  private listStateMachines(p: Params) {
    const all = [...this.machines.values()].sort((a, b) => a.name.localeCompare(b.name));
    const { page, nextToken } = paginate(all, p);
    return {
      stateMachines: page.map((m) => ({
        stateMachineArn: m.stateMachineArn,
        name: m.name,
        type: m.type,
        creationDate: m.creationDate,
      })),
      nextToken,
    };
  }

  private updateStateMachine(p: Params) {
    const m = this.machine(p.str("stateMachineArn", { required: true }));
    const definition = p.str("definition");
    const roleArn = p.str("roleArn");
    if (definition === undefined && roleArn === undefined && !p.has("loggingConfiguration") && !p.has("tracingConfiguration")) {
      throw sfnError(
        "MissingRequiredParameter",
        "Either the definition, the role ARN, the LoggingConfiguration, or the TracingConfiguration must be specified",
      );
    }
    if (definition !== undefined) {
      m.parsed = this.parseDefinition(definition);
      m.definition = definition;
    }
    if (roleArn !== undefined) m.roleArn = roleArn;
    m.updateDate = this.cloud.clock.date();
    m.revisionId = this.cloud.hex(32);
    return { updateDate: m.updateDate, revisionId: m.revisionId };
  }

  private deleteStateMachine(p: Params) {
    const arn = p.str("stateMachineArn", { required: true });
    const base = arn.split(":").slice(0, 7).join(":");
    // Deleting is idempotent; running executions keep their definition and finish.
    this.machines.delete(base);
    return {};
  }

  // ---------------------------------------------------------------- executions

  private record(arn: string): ExecutionRecord {
    if (!/^arn:aws[\w-]*:states:[^:]+:\d{12}:execution:[^:]+:[^:]+$/.test(arn))
      throw sfnError("InvalidArn", `Invalid Arn: 'Resource type not valid in this context: ${arn}'`);
    const r = this.executions.get(arn);
    if (!r) throw sfnError("ExecutionDoesNotExist", `Execution Does Not Exist: '${arn}'`);
    return r;
  }

  /**
   * StartExecution in process. Same name and input as a RUNNING execution is idempotent; any other
   * reuse of a name (closed, or different input) is ExecutionAlreadyExists.
   */
  startExecution(req: { stateMachineArn: string; name?: string; input?: string }): { executionArn: string; startDate: Date } {
    const m = this.machine(req.stateMachineArn);
    const name = req.name ?? uuidFrom(() => this.cloud.random());
    if (!NAME.test(name)) throw sfnError("InvalidName", `Invalid Name: '${name}'`);
    const input = req.input ?? "{}";
    try {
      JSON.parse(input);
    } catch (e) {
      throw sfnError("InvalidExecutionInput", `Invalid State Machine Execution Input: '${(e as Error).message}'`);
    }
    if (Buffer.byteLength(input, "utf8") > 262_144)
      throw sfnError(
        "InvalidExecutionInput",
        "Invalid State Machine Execution Input: 'Input exceeds the maximum size of 262144 bytes'",
      );
    const executionArn = this.arn("execution", m.name, name);
    const existing = this.executions.get(executionArn);
    if (existing) {
      const v = existing.exec;
      if (v.status === "RUNNING" && v.input === input) return { executionArn, startDate: v.startDate };
      throw sfnError("ExecutionAlreadyExists", `Execution Already Exists: '${executionArn}'`);
    }
    const exec = this.engine.start({
      executionArn,
      stateMachineArn: m.stateMachineArn,
      name,
      definition: structuredClone(m.parsed),
      input,
      roleArn: m.roleArn,
    });
    // engine.start emitted RUNNING before the record existed; the record is what events read.
    this.executions.set(executionArn, { exec, definition: m.definition, seq: ++this.seq, clientTokens: [] });
    this.emitStatus(exec.view());
    return { executionArn, startDate: exec.startDate };
  }

  private startExecutionAction(p: Params) {
    return this.startExecution({
      stateMachineArn: p.str("stateMachineArn", { required: true }),
      name: p.str("name"),
      input: p.str("input"),
    });
  }

  private async startChild(params: Record<string, unknown>): Promise<{ executionArn: string; startDate: Date }> {
    return this.startExecution({
      stateMachineArn: String(params.StateMachineArn ?? ""),
      name: typeof params.Name === "string" ? params.Name : undefined,
      input: typeof params.Input === "string" ? params.Input : JSON.stringify(params.Input ?? {}),
    });
  }

  private describeExecution(p: Params) {
    const v = this.record(p.str("executionArn", { required: true })).exec.view();
    const metadataOnly = p.str("includedData") === "METADATA_ONLY";
    return {
      executionArn: v.executionArn,
      stateMachineArn: v.stateMachineArn,
      name: v.name,
      status: v.status,
      startDate: v.startDate,
      stopDate: v.stopDate,
      input: metadataOnly ? undefined : v.input,
      inputDetails: { included: !metadataOnly },
      output: metadataOnly || v.status !== "SUCCEEDED" ? undefined : v.output,
      outputDetails: v.status === "SUCCEEDED" ? { included: !metadataOnly } : undefined,
      error: v.error,
      cause: v.cause,
      redriveCount: v.redriveCount,
      redriveDate: v.redriveDate,
      redriveStatus: v.redriveStatus,
      redriveStatusReason: v.redriveStatusReason,
    };
  }

  private listExecutions(p: Params) {
    const smArn = p.str("stateMachineArn");
    if (!smArn) throw sfnError("ValidationException", "Must provide a StateMachine ARN or MapRun ARN");
    const m = this.machine(smArn);
    const status = p.str("statusFilter") as ExecutionStatus | undefined;
    const redrive = p.str("redriveFilter");
    const rows = [...this.executions.values()]
      .filter((r) => r.exec.stateMachineArn === m.stateMachineArn)
      .filter((r) => !status || r.exec.status === status)
      .filter((r) => !redrive || (redrive === "REDRIVEN" ? r.exec.redriveCount > 0 : r.exec.redriveCount === 0))
      .sort((a, b) => b.exec.startDate.getTime() - a.exec.startDate.getTime() || b.seq - a.seq);
    const { page, nextToken } = paginate(rows, p);
    return {
      executions: page.map(({ exec: e }) => ({
        executionArn: e.executionArn,
        stateMachineArn: e.stateMachineArn,
        name: e.name,
        status: e.status,
        startDate: e.startDate,
        stopDate: e.stopDate,
        redriveCount: e.redriveCount,
        redriveDate: e.redriveDate,
      })),
      nextToken,
    };
  }

  private getExecutionHistory(p: Params) {
    const r = this.record(p.str("executionArn", { required: true }));
    const includeData = p.bool("includeExecutionData", true);
    let events = [...r.exec.history.events];
    if (p.bool("reverseOrder", false)) events.reverse();
    if (!includeData) events = events.map(stripData);
    const { page, nextToken } = paginate(events, p);
    return { events: page, nextToken };
  }

  private async stopExecution(p: Params) {
    const r = this.record(p.str("executionArn", { required: true }));
    const error = p.str("error", { max: 256 });
    const cause = p.str("cause", { max: 32768 });
    // On a closed execution this is accepted and changes nothing (reference §6.3: UNSURE).
    await r.exec.stop(error, cause);
    return { stopDate: r.exec.stopDate ?? this.cloud.clock.date() };
  }

  private redriveExecution(p: Params) {
    const arn = p.str("executionArn", { required: true });
    const r = this.record(arn);
    const token = p.str("clientToken", { max: 64 });
    const now = this.cloud.clock.now();
    r.clientTokens = r.clientTokens.filter((t) => now - t.at < CLIENT_TOKEN_TTL_MS);
    if (token) {
      const seen = r.clientTokens.find((t) => t.token === token);
      if (seen) return { redriveDate: seen.redriveDate };
    }
    const why = r.exec.redrivability();
    if (why.redriveStatus !== "REDRIVABLE") {
      throw sfnError("ExecutionNotRedrivable", `Execution is not redrivable: '${arn}' (${why.redriveStatusReason})`);
    }
    const redriveDate = r.exec.redrive();
    if (token) {
      r.clientTokens.push({ token, at: now, redriveDate });
      if (r.clientTokens.length > CLIENT_TOKENS) r.clientTokens.shift();
    }
    return { redriveDate };
  }

  private describeStateMachineForExecution(p: Params) {
    const r = this.record(p.str("executionArn", { required: true }));
    const m = this.machines.get(r.exec.stateMachineArn);
    return {
      stateMachineArn: r.exec.stateMachineArn,
      name: r.exec.stateMachineArn.split(":").pop(),
      definition: r.definition,
      roleArn: r.exec.roleArn,
      updateDate: m?.updateDate ?? m?.creationDate ?? r.exec.startDate,
      revisionId: m?.revisionId,
      loggingConfiguration: { level: "OFF", includeExecutionData: false },
      tracingConfiguration: { enabled: false },
    };
  }

  private sendTask(p: Params, kind: "success" | "failure" | "heartbeat") {
    const token = p.str("taskToken", { required: true, max: 2048 });
    try {
      if (kind === "success") this.engine.sendTaskSuccess(token, p.str("output", { required: true }));
      else if (kind === "failure")
        this.engine.sendTaskFailure(token, p.str("error", { max: 256 }), p.str("cause", { max: 32768 }));
      else this.engine.sendTaskHeartbeat(token);
    } catch (e) {
      if (e instanceof TokenError) throw sfnError(e.code, e.message);
      throw e;
    }
    return {};
  }

  // ---------------------------------------------------------------- tags

  private tagResource(p: Params) {
    const m = this.machine(p.str("resourceArn", { required: true }));
    for (const t of p.list<{ key: string; value?: string }>("tags", { required: true })) m.tags.set(t.key, t.value ?? "");
    return {};
  }
  private untagResource(p: Params) {
    const m = this.machine(p.str("resourceArn", { required: true }));
    for (const k of p.list<string>("tagKeys", { required: true })) m.tags.delete(k);
    return {};
  }
  private listTags(p: Params) {
    const m = this.machine(p.str("resourceArn", { required: true }));
    return { tags: [...m.tags].map(([key, value]) => ({ key, value })) };
  }

  // ---------------------------------------------------------------- events

  private statusChanged(v: ExecutionView): void {
    // The first RUNNING is emitted by startExecution once the record exists.
    if (this.executions.has(v.executionArn)) this.emitStatus(v);
  }

  private emitStatus(v: ExecutionView): void {
    const ms = (d?: Date) => (d ? d.getTime() : null);
    this.cloud.emit({
      source: "aws.states",
      detailType: "Step Functions Execution Status Change",
      resources: [v.executionArn],
      detail: {
        executionArn: v.executionArn,
        stateMachineArn: v.stateMachineArn,
        name: v.name,
        status: v.status,
        startDate: ms(v.startDate),
        stopDate: ms(v.stopDate),
        input: v.input,
        output: v.output ?? null,
        inputDetails: { included: true },
        outputDetails: v.output !== undefined ? { included: true } : null,
        error: v.error ?? null,
        cause: v.cause ?? null,
        redriveCount: v.redriveCount,
        redriveDate: ms(v.redriveDate),
        redriveStatus: v.redriveStatus,
        redriveStatusReason: v.redriveStatusReason ?? null,
      },
    });
    try {
      this.deps.onStatusChange?.(v);
    } catch {
      // Observers cannot break executions.
    }
  }
}

/**
 * asl-validator builds its JSON-schema validator on every call (~0.3 s), so results are cached by
 * definition text: the stack and the tests create the same machines over and over.
 */
const validations = new Map<string, string | undefined>();
/** The problems CreateStateMachine would report for a definition (undefined: valid). */
export function validateDefinition(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return `SCHEMA_VALIDATION_FAILED: ${(e as Error).message}`;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    return "SCHEMA_VALIDATION_FAILED: Definition must be a valid JSON object";
  return validate(text, parsed);
}
function validate(text: string, parsed: unknown): string | undefined {
  if (validations.has(text)) return validations.get(text);
  // asl-validator annotates what it validates; keep the caller's definition untouched.
  const r = aslValidator(structuredClone(parsed), { checkPaths: true, checkArn: true });
  const problems = r.isValid ? undefined : r.errors.map((e) => `${e["Error code"]}: ${e.Message}`).join(", ");
  if (validations.size >= 500) validations.delete(validations.keys().next().value as string);
  validations.set(text, problems);
  return problems;
}

/** Registers the Step Functions service ("states") on the cloud and returns its backend. */
export function registerStepFunctions(
  cloud: Cloud,
  deps: EngineDeps,
  opts: { historyLimit?: number } = {},
): StepFunctionsBackend {
  const backend = new StepFunctionsBackend(cloud, deps, opts);
  cloud.register("states", backend);
  return backend;
}

/** The registered backend, for the stack and tests (`await statesBackend(cloud).awaitExecution(arn)`). */
export function statesBackend(cloud: Cloud): StepFunctionsBackend {
  return cloud.backend<StepFunctionsBackend>("states");
}

/** `maxResults` (0 or absent → 100, max 1000) and an opaque `nextToken` (an offset). */
function paginate<T>(rows: T[], p: Params): { page: T[]; nextToken?: string } {
  const max = p.int("maxResults", { min: 0, max: 1000 }) || 100;
  const token = p.str("nextToken");
  let start = 0;
  if (token) {
    const m = /^kiln:(\d+)$/.exec(Buffer.from(token, "base64").toString("utf8"));
    if (!m) throw sfnError("InvalidToken", `Invalid Token: '${token}'`);
    start = Number(m[1]);
  }
  const page = rows.slice(start, start + max);
  const end = start + page.length;
  return { page, nextToken: end < rows.length ? Buffer.from(`kiln:${end}`).toString("base64") : undefined };
}

/** GetExecutionHistory with includeExecutionData=false: inputs, outputs and parameters are left out. */
function stripData(ev: HistoryEvent): HistoryEvent {
  const out: HistoryEvent = { ...ev };
  for (const [k, v] of Object.entries(ev)) {
    if (!k.endsWith("EventDetails") || !v || typeof v !== "object") continue;
    const d = { ...(v as Record<string, unknown>) };
    for (const f of ["input", "output", "parameters"]) delete d[f];
    out[k] = d;
  }
  return out;
}

function uuidFrom(random: () => number): string {
  const h = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[Math.floor(random() * 4)]}${h.slice(17, 20)}-${h.slice(20)}`;
}
