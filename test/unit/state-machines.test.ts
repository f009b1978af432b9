import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import aslValidator from "asl-validator";
import { describe, expect, it } from "vitest";
import { ErrorNames } from "../../lib/errors.ts";

const DIR = path.resolve(import.meta.dirname, "../../state-machines");
const files = readdirSync(DIR).filter((f) => f.endsWith(".asl.json"));
// `any`: ASL is untyped JSON
type Json = any;
const load = (f: string): Json => JSON.parse(readFileSync(path.join(DIR, f), "utf8"));

/** Every state of a machine, including those nested in Parallel branches and Map processors. */
function allStates(def: Json): [string, Json][] {
  const out: [string, Json][] = [];
  const walk = (states: Record<string, Json>) => {
    for (const [name, s] of Object.entries(states)) {
      out.push([name, s]);
      for (const b of s.Branches ?? []) walk(b.States);
      if (s.ItemProcessor) walk(s.ItemProcessor.States);
      if (s.Iterator) walk(s.Iterator.States);
    }
  };
  walk(def.States);
  return out;
}

/** `${Name}` placeholders, replaced by a syntactically valid ARN for validation. */
function substitute(v: Json): Json {
  if (typeof v === "string")
    return v.replace(/\$\{([A-Za-z0-9]+)\}/g, (_m, n) => `arn:aws:lambda:us-east-1:123456789012:function:${n}`);
  if (Array.isArray(v)) return v.map(substitute);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x)]));
  return v;
}

const KILN_NAMES = new Set<string>(Object.values(ErrorNames));
const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();

describe.each(files)("state-machines/%s", (file) => {
  const def = load(file);
  const states = allStates(def);

  it("is valid ASL", () => {
    const r = aslValidator(substitute(def), { checkArn: false, checkPaths: false });
    expect(r.errorsText("\n")).toBe("");
    expect(r.isValid).toBe(true);
  });

  it("matches only error names the code throws, or AWS's own", () => {
    const names = states.flatMap(([, s]) =>
      [...(s.Retry ?? []), ...(s.Catch ?? [])].flatMap((r: Json) => r.ErrorEquals as string[]),
    );
    for (const n of names)
      expect(KILN_NAMES.has(n) || /^(States|Lambda|Sandbox|Runtime)\./.test(n), `unknown error name ${n}`).toBe(true);
  });

  it("every Lambda placeholder has a handler file named after its step", () => {
    for (const [name, s] of states) {
      const fn: string | undefined = s.Arguments?.FunctionName ?? s.Parameters?.FunctionName;
      if (s.Type !== "Task" || typeof fn !== "string") continue;
      const m = /^\$\{([A-Za-z0-9]+)FunctionArn\}$/.exec(fn);
      expect(m, `${name}: FunctionName ${fn} is not a \${<Step>FunctionArn} placeholder`).not.toBeNull();
      const handler = path.resolve(DIR, "../functions", `${kebab(m![1]!)}.ts`);
      expect(existsSync(handler), `${name}: ${handler} missing`).toBe(true);
      expect(readFileSync(handler, "utf8")).toMatch(/export const handler/);
    }
  });

  it("every Lambda task outlasts minutes of throttling before it fails (at least 5 minutes of backoff caps)", () => {
    // With FULL jitter each wait is uniform in [0, cap]: the caps bound the window, half of it is typical.
    for (const [name, s] of states) {
      if (s.Type !== "Task" || !String(s.Resource).includes(":lambda:")) continue;
      const r = (s.Retry ?? []).find((x: Json) => (x.ErrorEquals as string[]).includes("kiln.Throttled"));
      expect(r, `${name} retries kiln.Throttled`).toBeDefined();
      let caps = 0;
      for (let k = 0; k < r.MaxAttempts; k++)
        caps += Math.min(r.MaxDelaySeconds ?? Infinity, r.IntervalSeconds * (r.BackoffRate ?? 2) ** k);
      expect(caps, `${name}: seconds of backoff caps for kiln.Throttled`).toBeGreaterThanOrEqual(300);
    }
  });

  it("every transition points at a state that exists", () => {
    const names = new Set(states.map(([n]) => n));
    for (const [name, s] of states) {
      const targets = [
        s.Next,
        s.Default,
        ...(s.Choices ?? []).map((c: Json) => c.Next),
        ...(s.Catch ?? []).map((c: Json) => c.Next),
      ].filter(Boolean);
      for (const t of targets) expect(names.has(t), `${name} → ${t}`).toBe(true);
    }
  });
});

describe("deploy.asl.json: the bake phase", () => {
  const def = load("deploy.asl.json");
  const states = Object.fromEntries(allStates(def)) as Record<string, Json>;
  const bakeTasks = [
    "Prepare",
    "FindImage",
    "LaunchBuilder",
    "WaitBuilderReady",
    "Install",
    "ImageTest",
    "CreateImage",
    "WaitImage",
    "TagImage",
    "TerminateBuilder",
    "PruneImages",
  ];

  it.each(bakeTasks)("%s invokes its own handler through lambda:invoke", (name) => {
    expect(states[name].Type).toBe("Task");
    expect(states[name].Resource).toBe("arn:aws:states:::lambda:invoke");
    expect(states[name].Arguments.FunctionName).toBe(`\${${name}FunctionArn}`);
  });

  it.each(bakeTasks)("%s retries throttling and Lambda service errors, with jitter and a cap, and has no Catch", (name) => {
    const s = states[name];
    expect(s.Catch).toBeUndefined();
    const byName = new Map<string, Json>();
    for (const r of s.Retry) for (const e of r.ErrorEquals) byName.set(e, r);
    for (const e of [
      "kiln.Throttled",
      "Lambda.ServiceException",
      "Lambda.TooManyRequestsException",
      "Sandbox.Timedout",
      "Runtime.ExitError",
    ]) {
      expect(byName.get(e), `${name} retries ${e}`).toBeDefined();
      expect(byName.get(e).JitterStrategy).toBe("FULL");
      expect(byName.get(e).MaxDelaySeconds).toBeGreaterThan(0);
    }
    // Failures an operator must act on are never retried: the execution fails at this state.
    for (const e of [
      "kiln.StepFailed",
      "kiln.Timeout",
      "kiln.InvalidInput",
      "kiln.ConfigInvalid",
      "States.ALL",
      "States.TaskFailed",
    ])
      expect(byName.has(e), `${name} retries ${e}`).toBe(false);
  });

  it("runs the steps in order and hands off to the roll phase", () => {
    const path: string[] = [];
    let cur: string | undefined = def.StartAt;
    const seen = new Set<string>();
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      path.push(cur);
      const s = states[cur];
      // Follow the "done"/"not found" branch of each Choice.
      cur = s.Type === "Choice" ? (cur === "ImageFound" ? s.Default : s.Choices[0].Next) : s.Next;
    }
    expect(path.filter((p) => bakeTasks.includes(p) || p === "RollPhase")).toEqual([...bakeTasks, "RollPhase"]);
    expect(states.ImageFound.Choices[0].Next).toBe("RollPhase");
    expect(states.RollPhase.Type).toBe("Pass");
  });

  it.each([
    ["WaitBuilderReady", "IsBuilderReady", "WaitForBuilder", "Install"],
    ["Install", "IsInstallDone", "WaitForInstall", "ImageTest"],
    ["ImageTest", "IsImageTestDone", "WaitForImageTest", "CreateImage"],
    ["WaitImage", "IsImageAvailable", "WaitForImage", "TagImage"],
  ])("%s polls: Choice on status, Wait for the step's own interval, back to the step", (task, choice, wait, next) => {
    expect(states[task].Next).toBe(choice);
    expect(states[task].Assign.wait).toMatch(/waitSeconds/);
    expect(states[choice].Choices[0].Next).toBe(next);
    expect(states[choice].Default).toBe(wait);
    expect(states[wait].Type).toBe("Wait");
    expect(states[wait].Seconds).toBe("{% $wait %}");
    expect(states[wait].Next).toBe(task);
  });

  it("passes the attempt (redrive count and time) to every step after Prepare", () => {
    for (const name of bakeTasks.slice(1)) expect(states[name].Arguments.Payload.attempt).toMatch(/RedriveCount/);
  });

  it("derives Prepare's names from the execution in the context object", () => {
    expect(states.Prepare.Arguments.Payload.execution).toEqual({
      name: "{% $states.context.Execution.Name %}",
      arn: "{% $states.context.Execution.Id %}",
      startedAt: "{% $states.context.Execution.StartTime %}",
    });
  });
});
