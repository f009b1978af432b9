import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isMap, isScalar, LineCounter, parseDocument, type Node } from "yaml";
import type { z } from "zod";
import { ConfigInvalidError } from "../errors.ts";
import { environmentSettings, type KilnConfig, KilnConfigSchema, type ServiceConfig } from "./schema.ts";

/** One thing wrong with a configuration file, located precisely enough to fix it. */
export interface ConfigProblem {
  /** `services.web.canary[1].weight` */
  path: string;
  /** 1-based line and column of the offending (or enclosing) node, when known. */
  line?: number;
  column?: number;
  expected: string;
  found: string;
}

/** A configuration file that does not parse or validate. `name` is `kiln.ConfigInvalid`. */
export class ConfigError extends ConfigInvalidError {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `${file}: ${problems.length === 1 ? "1 problem" : `${problems.length} problems`}\n` +
        problems
          .map(
            (p) =>
              `  ${file}${p.line ? `:${p.line}:${p.column}` : ""} ${p.path || "(top level)"}: ${p.expected}; found ${p.found}`,
          )
          .join("\n"),
    );
  }
}

/** The project root's `kiln.config.yaml` (two levels above this file). */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL("../../kiln.config.yaml", import.meta.url));

/** `services.web.canary[1].weight` from a zod/yaml path. */
export function formatPath(p: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of p) {
    if (typeof seg === "number") out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_][\w-]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing (missing)";
  if (v === null) return "null";
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === "object") return `a map with keys ${Object.keys(v as object).join(", ") || "(none)"}`;
  if (typeof v === "string") {
    const s = v.length > 60 ? `${v.slice(0, 57)}...` : v;
    return `the text ${JSON.stringify(s)}`;
  }
  return `${typeof v} ${String(v)}`;
}

const TYPE_WORDS: Record<string, string> = {
  tuple: "a list",
  array: "a list",
  record: "a map",
  object: "a map",
  string: "text",
  number: "a number",
  boolean: "true or false",
};

/** What the schema wanted, in words, from a zod issue. */
function expectation(issue: z.core.$ZodIssue): string {
  const msg = issue.message.replace(/^Invalid input: /, "");
  // The schema's own wording wins over the generic one.
  if (issue.message.startsWith("expected ")) return issue.message;
  switch (issue.code) {
    case "invalid_type":
      return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}`;
    case "unrecognized_keys":
      return `expected only known keys (unknown: ${issue.keys.join(", ")})`;
    case "too_small":
      return issue.origin === "array" || issue.origin === "set"
        ? `expected at least ${issue.minimum} item(s)`
        : issue.origin === "string"
          ? `expected at least ${issue.minimum} character(s)`
          : `expected a number ${issue.inclusive ? ">=" : ">"} ${issue.minimum}`;
    case "too_big":
      return issue.origin === "array" || issue.origin === "set"
        ? `expected at most ${issue.maximum} item(s)`
        : issue.origin === "string"
          ? `expected at most ${issue.maximum} character(s)`
          : `expected a number ${issue.inclusive ? "<=" : "<"} ${issue.maximum}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_key":
      return issue.issues.map((i) => i.message).join("; ");
    default:
      return msg.startsWith("expected") ? msg : `expected ${msg}`;
  }
}

function locate(
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
  p: readonly PropertyKey[],
): { line?: number; column?: number } {
  // The deepest node that exists on the path (a missing key points at its parent map).
  for (let n = p.length; n >= 0; n--) {
    const node = doc.getIn(p.slice(0, n) as unknown[], true) as Node | undefined;
    if (node && (isScalar(node) || isMap(node) || "range" in node) && node.range) {
      const pos = lc.linePos(node.range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}

/**
 * Parses and validates configuration text. Throws `ConfigError` naming the file, the path in it
 * (`services.web.canary[1].weight`), what was expected and what was found.
 */
export function parseConfig(text: string, file = "kiln.config.yaml"): KilnConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = lc.linePos(e.pos[0]);
        return {
          path: "",
          line: pos.line,
          column: pos.col,
          expected: "expected valid YAML",
          found: `${e.code}: ${e.message.split("\n")[0]}`,
        };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // toJS throws (ReferenceError) on an alias without its anchor or an alias bomb: still a config problem.
    throw new ConfigError(file, [
      { path: "", expected: "expected valid YAML", found: (err as Error).message.split("\n")[0] ?? "" },
    ]);
  }
  const parsed = KilnConfigSchema.safeParse(data ?? {}, { reportInput: true });
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue): ConfigProblem => {
    let p = issue.path as PropertyKey[];
    let found = describe(issue.input);
    if (issue.code === "unrecognized_keys") found = `key(s) ${issue.keys.join(", ")}`;
    if (issue.code === "invalid_key") found = `the key ${JSON.stringify(String(issue.input ?? p.at(-1)))}`;
    if (issue.code === "invalid_union" && issue.input !== undefined) found = describe(issue.input);
    if (issue.code === "unrecognized_keys" && issue.keys.length === 1) p = [...p, issue.keys[0]!];
    return { path: formatPath(p), ...locate(doc, lc, p), expected: expectation(issue), found };
  });
  throw new ConfigError(file, problems);
}

const cache = new Map<string, KilnConfig>();

/**
 * Loads the configuration from `file`, else `$KILN_CONFIG`, else `kiln.config.yaml` at the
 * project root. Cached per process and path (a Lambda container reads it once).
 */
export function loadConfig(file?: string): KilnConfig {
  const resolved = path.resolve(file ?? process.env.KILN_CONFIG ?? DEFAULT_CONFIG_PATH);
  const hit = cache.get(resolved);
  if (hit) return hit;
  let text: string;
  try {
    text = readFileSync(resolved, "utf8");
  } catch (err) {
    throw new ConfigError(resolved, [
      { path: "", expected: "expected a readable configuration file", found: (err as Error).message },
    ]);
  }
  const config = parseConfig(text, resolved);
  cache.set(resolved, config);
  return config;
}

/** Forgets cached configurations (tests, and the local stack after an edit). */
export function clearConfigCache(): void {
  cache.clear();
}

/**
 * One service's configuration; with `environment`, the settings of that environment (the service's
 * with the environment's overrides). An unknown service or environment is `kiln.ConfigInvalid`
 * listing the known ones.
 */
export function serviceConfig(
  config: KilnConfig,
  service: string,
  environment?: string,
  file = "kiln.config.yaml",
): ServiceConfig {
  const s = Object.hasOwn(config.services, service) ? config.services[service] : undefined;
  if (!s)
    throw new ConfigError(file, [
      {
        path: formatPath(["services", service]),
        expected: `expected a configured service (known: ${Object.keys(config.services).join(", ")})`,
        found: "nothing (missing)",
      },
    ]);
  if (environment === undefined) return s;
  const envs = environmentsOf(s);
  if (!envs.includes(environment))
    throw new ConfigError(file, [
      {
        path: formatPath(["services", service, "environments", environment]),
        expected: `expected an environment of ${service} (known: ${envs.join(", ")})`,
        found: "nothing (missing)",
      },
    ]);
  const r = environmentSettings(s, environment);
  // The whole file was validated with every environment resolved, so this cannot fail.
  if (!r.success)
    throw new ConfigError(file, [
      {
        path: formatPath(["services", service, "environments", environment]),
        expected: "expected valid settings",
        found: r.error.message,
      },
    ]);
  // A resolved environment stands alone: only its own branches, no further overrides.
  const branches = Object.fromEntries(Object.entries(s.branches).filter(([, e]) => e === environment));
  return { ...r.data, branches, environments: {} };
}

/** The environments of a service, in the order its branches name them. */
export function environmentsOf(s: Pick<ServiceConfig, "branches">): string[] {
  return [...new Set(Object.values(s.branches))];
}

/**
 * The environment an operator means when naming none: the only one, else `production`. Throws a
 * `ConfigError` asking for `--env` otherwise.
 */
export function defaultEnvironment(s: Pick<ServiceConfig, "branches">, service = "the service"): string {
  const envs = environmentsOf(s);
  if (envs.length === 1) return envs[0]!;
  if (envs.includes("production")) return "production";
  throw new ConfigError("kiln.config.yaml", [
    {
      path: formatPath(["services", service, "branches"]),
      expected: `expected an environment to be named (one of ${envs.join(", ")}): pass --env`,
      found: `${envs.length} environments`,
    },
  ]);
}

/** The branch that deploys `environment` (the first mapped to it). */
export function branchFor(s: Pick<ServiceConfig, "branches">, environment: string): string | undefined {
  return Object.entries(s.branches).find(([, e]) => e === environment)?.[0];
}

/** The environment a branch deploys to, or undefined when the branch is not configured. */
export function environmentFor(service: ServiceConfig, branch: string): string | undefined {
  return Object.hasOwn(service.branches, branch) ? service.branches[branch] : undefined;
}
