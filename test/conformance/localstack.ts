/**
 * Runs the Step Functions executions LocalStack recorded on real AWS (test/conformance/
 * localstack-cases.json, built by extract/localstack_cases.py) on kiln's engine, and compares what
 * AWS recorded: the terminal status with its output or error and cause, and the sequence of
 * history event types. Snapshot placeholders (`<ExecArn…>`, `snf_role_arn`, `timestamp`) match anything.
 */
import { readFileSync } from "node:fs";
import { VirtualClock } from "../../lib/clock.ts";
import { validateDefinition } from "../../local/states/api.ts";
import { Engine } from "../../local/states/engine/engine.ts";
import type { StatesGraph } from "../../local/states/engine/types.ts";

export interface ExecutionCase {
  id: string;
  key: string;
  kind: "execution";
  definition: string;
  input: string;
  types: string[];
  previous: (number | null)[];
  terminal?: { type: string; output?: unknown; error?: string; cause?: string };
}
export interface RejectCase {
  id: string;
  key: string;
  kind: "reject";
  definition: string;
  error: { Code: string; Message?: string };
  message?: string;
}
export interface ValidateCase {
  id: string;
  key: string;
  kind: "validate";
  definition: string;
  recorded: { result: "OK" | "FAIL"; diagnostics: { code: string; message: string; severity: string }[] };
}
export type Case = ExecutionCase | RejectCase | ValidateCase;

/**
 * Out of scope: API behaviour rather than the engine (test_sfn_api.py: paging order, stopping),
 * Distributed Map (Map Runs) and Express-only rules, which kiln documents as not modelled.
 */
export function inScope(c: Case): boolean {
  if (c.id.includes("/test_sfn_api.py::") && c.kind === "execution") return false;
  if (c.id.includes("/test_sfn_api_express.py::")) return false;
  return !/"Mode": *"DISTRIBUTED"|"ItemReader"|"ResultWriter"|"ItemBatcher"/.test(c.definition);
}

export function loadCases(): Case[] {
  return (JSON.parse(readFileSync(new URL("./localstack-cases.json", import.meta.url), "utf8")) as Case[]).filter(inScope);
}

const WILDCARDS = new Set(["snf_role_arn", "timestamp", "date", "start_date", "stop_date"]);

/** A recorded string, with its placeholders as wildcards. */
function stringMatches(actual: unknown, expected: string): boolean {
  if (WILDCARDS.has(expected)) return true;
  if (!/<[^<>]+>/.test(expected)) return actual === expected;
  if (typeof actual !== "string") return /^<[^<>]+>$/.test(expected);
  const parts = expected.split(/<[^<>]+>/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[\\s\\S]*")}$`).test(actual);
}

/** Deep equality with placeholders; recorded JSON strings were parsed by the snapshot tool. */
export function matches(actual: unknown, expected: unknown): boolean {
  if (typeof expected === "string") {
    if (stringMatches(actual, expected)) return true;
    return (
      typeof actual === "string" && actual !== expected && tryParse(actual) !== undefined && matches(tryParse(actual), expected)
    );
  }
  if (typeof actual === "string" && expected !== null && typeof expected === "object") {
    const parsed = tryParse(actual);
    return parsed !== undefined && matches(parsed, expected);
  }
  if (expected === null || typeof expected !== "object") return actual === expected;
  if (Array.isArray(expected))
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(actual[i], e));
  if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
  const a = actual as Record<string, unknown>;
  const e = expected as Record<string, unknown>;
  const ka = Object.keys(a).sort();
  const ke = Object.keys(e).sort();
  return ka.length === ke.length && ka.every((k, i) => k === ke[i] && matches(a[k], e[k]));
}

function tryParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

export interface Outcome {
  id: string;
  ok: boolean;
  why?: string;
}

/** Runs one recorded execution on a fresh engine on a virtual clock. */
export async function runExecutionCase(c: ExecutionCase, opts: { validate?: boolean } = {}): Promise<Outcome> {
  const out = (ok: boolean, why?: string): Outcome => ({ id: `${c.id} ${c.key}`, ok, why });
  const problems = opts.validate === false ? undefined : validateDefinition(c.definition);
  if (problems) return out(false, `rejected a definition AWS ran: ${problems}`);
  const clock = new VirtualClock();
  const engine = new Engine(
    {
      clock,
      region: "us-east-1",
      accountId: "111111111111",
      invokeLambda: () => Promise.reject(new Error("no Lambda in conformance runs")),
      callAws: () => Promise.reject(new Error("no AWS calls in conformance runs")),
    },
    {},
  );
  const exec = engine.start({
    executionArn: "arn:aws:states:us-east-1:111111111111:execution:conformance:run",
    stateMachineArn: "arn:aws:states:us-east-1:111111111111:stateMachine:conformance",
    name: "run",
    definition: JSON.parse(c.definition) as StatesGraph,
    input: c.input ?? "{}",
  });
  const view = await Promise.race([exec.whenDone(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000))]);
  clock.dispose();
  if (!view) return out(false, "did not finish");
  const types = exec.history.events.map((e) => e.type);
  const t = c.terminal;
  if (t) {
    const last = exec.history.events.at(-1)!;
    if (last.type !== t.type)
      return out(
        false,
        `ended ${last.type} (${view.error ?? ""}: ${view.cause ?? ""}), AWS ${t.type} (${t.error ?? ""}: ${t.cause ?? ""})`,
      );
    if (t.type === "ExecutionSucceeded" && !matches(view.output, t.output))
      return out(false, `output ${view.output}, AWS ${JSON.stringify(t.output)}`);
    if (t.type === "ExecutionFailed") {
      if (view.error !== t.error) return out(false, `error ${view.error}, AWS ${t.error}`);
      if (t.cause !== undefined && !matches(view.cause ?? "", t.cause))
        return out(false, `cause ${JSON.stringify(view.cause)}, AWS ${JSON.stringify(t.cause)}`);
    }
  }
  if (types.join() !== c.types.join()) return out(false, `event types ${diff(types, c.types)}`);
  return out(true);
}

function diff(a: string[], e: string[]): string {
  let i = 0;
  while (i < a.length && a[i] === e[i]) i++;
  return `differ at #${i + 1}: kiln ${a.slice(i, i + 3).join(",")} / AWS ${e.slice(i, i + 3).join(",")}`;
}

/** A definition AWS refused at CreateStateMachine must be refused with InvalidDefinition. */
export function runRejectCase(c: RejectCase): Outcome {
  const problems = validateDefinition(c.definition);
  return {
    id: `${c.id} ${c.key}`,
    ok: problems !== undefined,
    why: problems ? undefined : `accepted; AWS: ${c.message ?? c.error.Message}`,
  };
}

/** ValidateStateMachineDefinition: the same verdict as AWS. */
export function runValidateCase(c: ValidateCase): Outcome {
  const problems = validateDefinition(c.definition);
  const ok = (problems === undefined) === (c.recorded.result === "OK");
  return {
    id: `${c.id} ${c.key}`,
    ok,
    why: ok ? undefined : `kiln ${problems ?? "OK"}, AWS ${c.recorded.result} ${JSON.stringify(c.recorded.diagnostics)}`,
  };
}
