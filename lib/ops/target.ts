/**
 * What an operator command acts on — a (service, environment) unit or one execution — resolved the
 * same way by the CLI, the console and the pager. Service and environment always come from the
 * configuration and from an execution's input, never from its name: names are for people
 * (`web-api-pre-prod-…` does not say where the service ends).
 */
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  type HistoryEvent,
} from "@aws-sdk/client-sfn";
import { environmentFor, type KilnConfig, type ServiceConfig } from "../config/index.ts";

/** The environment the CLI picks when `--env` is not given and the service has it. */
export const DEFAULT_ENVIRONMENT = "production";

/** Why a target could not be resolved: `unknown` (no such service/environment/execution), `ambiguous`, `usage`. */
export class TargetError extends Error {
  override readonly name = "kiln.TargetInvalid";
  constructor(
    message: string,
    readonly kind: "unknown" | "ambiguous" | "usage",
  ) {
    super(message);
  }
}

/** The environments a service deploys to (the values of its `branches`), in configuration order. */
export function environmentsOf(cfg: Pick<ServiceConfig, "branches">): string[] {
  return [...new Set(Object.values(cfg.branches))];
}

/** The branch a push to `environment` comes from (the first configured one). */
export function branchOf(cfg: Pick<ServiceConfig, "branches">, environment: string): string | undefined {
  return Object.entries(cfg.branches).find(([, env]) => env === environment)?.[0];
}

/**
 * The environment a command targets: `requested` if the service has it; else `production` if the
 * service has it, else its only environment. Several environments and none named production is
 * ambiguous: the error lists them.
 */
export function resolveEnvironment(service: string, cfg: Pick<ServiceConfig, "branches">, requested?: string): string {
  const envs = environmentsOf(cfg);
  if (requested !== undefined) {
    if (envs.includes(requested)) return requested;
    throw new TargetError(
      `service ${service} has no environment ${JSON.stringify(requested)} (it has: ${envs.join(", ")})`,
      "unknown",
    );
  }
  if (envs.includes(DEFAULT_ENVIRONMENT)) return DEFAULT_ENVIRONMENT;
  if (envs.length === 1) return envs[0]!;
  throw new TargetError(`service ${service} has several environments (${envs.join(", ")}): choose one with --env`, "ambiguous");
}

/** A configured service's settings, or a `TargetError` naming the known ones. */
export function resolveService(config: KilnConfig, service: string | undefined): { service: string; cfg: ServiceConfig } {
  if (!service) throw new TargetError("a service name is required", "usage");
  const cfg = Object.hasOwn(config.services, service) ? config.services[service] : undefined;
  if (!cfg)
    throw new TargetError(
      `no service ${JSON.stringify(service)} in kiln.config.yaml (known: ${Object.keys(config.services).join(", ")})`,
      "unknown",
    );
  return { service, cfg };
}

/** The unit of deployment an execution belongs to, as its input says. */
export interface ExecutionUnit {
  service: string;
  /** The input's `environment`; for inputs that predate it, the environment of the input's `branch`. */
  environment?: string;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Parses an execution's input JSON; undefined when it is not a JSON object. */
export function parseInput(input: string | null | undefined): Record<string, unknown> | undefined {
  if (!input) return undefined;
  try {
    return asRecord(JSON.parse(input));
  } catch {
    return undefined;
  }
}

/**
 * The (service, environment) of an execution from its input. `config` (optional) fills the
 * environment of an input that has only a `branch`, and refuses a service it does not know.
 */
export function unitOfInput(input: Record<string, unknown> | undefined, config?: KilnConfig): ExecutionUnit | undefined {
  const service = input?.service;
  if (typeof service !== "string" || service === "") return undefined;
  const cfg = config ? (Object.hasOwn(config.services, service) ? config.services[service] : undefined) : undefined;
  if (config && !cfg) return undefined;
  if (typeof input!.environment === "string" && input!.environment !== "") return { service, environment: input!.environment };
  const branch = input!.branch;
  const environment = cfg && typeof branch === "string" ? environmentFor(cfg, branch) : undefined;
  return { service, ...(environment ? { environment } : {}) };
}

/** The machine an execution ARN belongs to: `…:execution:<machine>:<name>` → `…:stateMachine:<machine>`. */
export function machineOfExecution(executionArn: string): string {
  return executionArn.replace(":execution:", ":stateMachine:").replace(/:[^:]+$/, "");
}

export interface SfnSender {
  send(command: any): Promise<any>;
}

/** DescribeExecution, with `undefined` for an execution Step Functions does not know. */
export async function describeExecution(
  sfn: SfnSender,
  executionArn: string,
): Promise<DescribeExecutionCommandOutput | undefined> {
  try {
    return (await sfn.send(new DescribeExecutionCommand({ executionArn }))) as DescribeExecutionCommandOutput;
  } catch (err) {
    if ((err as Error).name === "ExecutionDoesNotExist") return undefined;
    throw err;
  }
}

/** The fields operator-started executions carry in their input (abort, rollback) and that the pager reads. */
export interface OperatorRequest {
  /** Always `operator` for executions an operator started (the CLI or the console). */
  trigger: "operator";
  /** Who asked (`$USER`, or `console`). */
  requestedBy: string;
  reason?: string;
}

/** The operator-request fields of an input, if it is one. */
export function operatorRequestOf(input: Record<string, unknown> | undefined): OperatorRequest | undefined {
  if (input?.trigger !== "operator") return undefined;
  return {
    trigger: "operator",
    requestedBy: typeof input.requestedBy === "string" && input.requestedBy ? input.requestedBy : "operator",
    ...(typeof input.reason === "string" && input.reason ? { reason: input.reason } : {}),
  };
}

/**
 * An execution's history, newest event first, for at most `pages` pages of 200: what happened last
 * (the state it is in, the step that failed) is near the end, while a history can hold 25,000 events.
 */
export async function* newestEvents(sfn: SfnSender, executionArn: string, pages: number): AsyncGenerator<HistoryEvent> {
  let nextToken: string | undefined;
  for (let page = 0; page < pages; page++) {
    const r = await sfn.send(
      new GetExecutionHistoryCommand({
        executionArn,
        reverseOrder: true,
        maxResults: 200,
        includeExecutionData: false,
        nextToken,
      }),
    );
    yield* (r.events ?? []) as HistoryEvent[];
    nextToken = r.nextToken;
    if (!nextToken) return;
  }
}

/**
 * Whether an execution is in `state` now (entered, not exited since), from the newest history
 * events: `in`, `left` (exited after its last entry), or `never` within the pages read.
 */
export async function stateVisit(sfn: SfnSender, executionArn: string, state: string): Promise<"in" | "left" | "never"> {
  // A state's latest visit is near the end of the history: two pages reach it.
  for await (const e of newestEvents(sfn, executionArn, 2)) {
    if (e.stateExitedEventDetails?.name === state) return "left";
    if (e.stateEnteredEventDetails?.name === state) return "in";
  }
  return "never";
}

/** The state an execution entered last (its current state while it runs), from its newest page of history. */
export async function currentState(sfn: SfnSender, executionArn: string): Promise<string | undefined> {
  for await (const e of newestEvents(sfn, executionArn, 1))
    if (e.stateEnteredEventDetails?.name) return e.stateEnteredEventDetails.name;
  return undefined;
}
