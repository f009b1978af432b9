/**
 * Static inventory of the AWS calls kiln's code makes, for the least-privilege checks of the
 * packaged template: every `new <Op>Command(` in `lib/**` and `functions/**`, attributed to the
 * client package it is imported from and mapped to its IAM action (`ec2:RunInstances`). A
 * function's calls are those of every module reachable from its handler file through relative
 * imports (static, re-exports and `import()`), which over-approximates what it calls at run time —
 * so "granted ⊆ reachable" is the sound direction to assert.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

/** IAM service prefix of each SDK client package kiln may use. */
export const IAM_PREFIX: Record<string, string> = {
  "@aws-sdk/client-ec2": "ec2",
  "@aws-sdk/client-auto-scaling": "autoscaling",
  "@aws-sdk/client-elastic-load-balancing-v2": "elasticloadbalancing",
  "@aws-sdk/client-ssm": "ssm",
  "@aws-sdk/client-sfn": "states",
  "@aws-sdk/client-cloudwatch": "cloudwatch",
  "@aws-sdk/client-sns": "sns",
  "@aws-sdk/client-dynamodb": "dynamodb",
  "@aws-sdk/lib-dynamodb": "dynamodb",
  "@aws-sdk/client-eventbridge": "events",
  "@aws-sdk/client-scheduler": "scheduler",
  "@aws-sdk/client-lambda": "lambda",
};

/**
 * The document client's commands are named after the item verbs but authorize as the low-level
 * DynamoDB actions they send (`PutCommand` is `dynamodb:PutItem`).
 */
const DOCUMENT_CLIENT_ACTION: Record<string, string> = {
  Get: "GetItem",
  Put: "PutItem",
  Update: "UpdateItem",
  Delete: "DeleteItem",
  Query: "Query",
  Scan: "Scan",
  BatchGet: "BatchGetItem",
  BatchWrite: "BatchWriteItem",
  TransactGet: "TransactGetItems",
  TransactWrite: "TransactWriteItems",
  ExecuteStatement: "PartiQLSelect",
};

/** One module's imports and the IAM actions its `new <Op>Command(` expressions call. */
export interface ModuleCalls {
  file: string;
  imports: string[];
  actions: Set<string>;
}

/** The IAM action of `<op>Command` imported from `pkg`, or undefined for a non-AWS package. */
export function iamAction(pkg: string, op: string): string | undefined {
  const prefix = IAM_PREFIX[pkg];
  if (!prefix) return undefined;
  if (pkg === "@aws-sdk/lib-dynamodb") return `dynamodb:${DOCUMENT_CLIENT_ACTION[op] ?? op}`;
  return `${prefix}:${op}`;
}

/** Parses one TypeScript module: its relative imports (resolved to files) and its SDK calls. */
export function scanModule(file: string): ModuleCalls {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
  const origin = new Map<string, { pkg: string; name: string }>(); // local identifier → imported name and package
  const imports: string[] = [];
  const actions = new Set<string>();
  const addImport = (spec: string) => {
    if (!spec.startsWith(".")) return;
    const resolved = path.resolve(path.dirname(file), spec);
    if (existsSync(resolved) && statSync(resolved).isFile()) imports.push(resolved);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const pkg = node.moduleSpecifier.text;
      addImport(pkg);
      const bindings = node.importClause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) {
        for (const el of bindings.elements) origin.set(el.name.text, { pkg, name: (el.propertyName ?? el.name).text });
      }
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      addImport(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteral(arg)) addImport(arg.text);
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression)) {
      const o = origin.get(node.expression.text);
      const m = o && /^(.+)Command$/.exec(o.name);
      if (o && m) {
        const action = iamAction(o.pkg, m[1]!);
        if (action) actions.add(action);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { file, imports, actions };
}

/** Every `.ts` file under `dir` (tests excluded). */
export function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(p));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

/** Scans modules on demand and answers which actions are reachable from an entry file. */
export class SdkCallIndex {
  private readonly modules = new Map<string, ModuleCalls>();

  module(file: string): ModuleCalls {
    let m = this.modules.get(file);
    if (!m) {
      m = scanModule(file);
      this.modules.set(file, m);
    }
    return m;
  }

  /** IAM actions of every module reachable from `entry` through relative imports. */
  reachable(entry: string): Set<string> {
    const seen = new Set<string>();
    const out = new Set<string>();
    const stack = [path.resolve(entry)];
    while (stack.length) {
      const f = stack.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      const m = this.module(f);
      for (const a of m.actions) out.add(a);
      stack.push(...m.imports);
    }
    return out;
  }

  /** IAM actions called anywhere in the given files. */
  union(files: string[]): Set<string> {
    const out = new Set<string>();
    for (const f of files) for (const a of this.module(path.resolve(f)).actions) out.add(a);
    return out;
  }
}

type DeclKey = string; // `${file}#${name}`

interface ModuleDecls {
  /** Top-level declarations: name → node. */
  decls: Map<string, ts.Node>;
  /** Local name → where it comes from (relative imports and named re-exports). */
  imports: Map<string, { file: string; name: string }>;
  /** `export * from` targets. */
  stars: string[];
  /** Local name of an SDK command class → its IAM action. */
  commands: Map<string, string>;
}

/**
 * A declaration-level call graph: from a handler's `handler` export, the top-level declarations it
 * references (functions, classes, constants), transitively across modules, and the SDK commands
 * those declarations construct. Tighter than module reachability (a handler that imports one
 * function from a barrel does not inherit the barrel's other steps) and still conservative: any
 * reference counts as a call.
 */
export class CallGraph {
  private readonly modules = new Map<string, ModuleDecls>();

  private module(file: string): ModuleDecls {
    let m = this.modules.get(file);
    if (m) return m;
    const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
    m = { decls: new Map(), imports: new Map(), stars: [], commands: new Map() };
    this.modules.set(file, m);
    const rel = (spec: string) => {
      const p = path.resolve(path.dirname(file), spec);
      return existsSync(p) && statSync(p).isFile() ? p : undefined;
    };
    for (const st of source.statements) {
      if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier)) {
        const spec = st.moduleSpecifier.text;
        const target = rel(spec);
        const clause = st.importClause;
        const b = clause?.namedBindings;
        if (b && ts.isNamedImports(b)) {
          for (const el of b.elements) {
            const imported = (el.propertyName ?? el.name).text;
            const cmd = /^(.+)Command$/.exec(imported);
            const action = cmd ? iamAction(spec, cmd[1]!) : undefined;
            if (action) m.commands.set(el.name.text, action);
            else if (target) m.imports.set(el.name.text, { file: target, name: imported });
          }
        } else if (b && ts.isNamespaceImport(b) && target) m.imports.set(b.name.text, { file: target, name: "*" });
        if (clause?.name && target) m.imports.set(clause.name.text, { file: target, name: "default" });
      } else if (ts.isExportDeclaration(st) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier)) {
        const target = rel(st.moduleSpecifier.text);
        if (!target) continue;
        if (!st.exportClause) m.stars.push(target);
        else if (ts.isNamedExports(st.exportClause)) {
          for (const el of st.exportClause.elements)
            m.imports.set(el.name.text, { file: target, name: (el.propertyName ?? el.name).text });
        }
      } else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st)) && st.name) {
        m.decls.set(st.name.text, st);
      } else if (ts.isVariableStatement(st)) {
        for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) m.decls.set(d.name.text, d);
      } else if (ts.isExportAssignment(st)) {
        m.decls.set("default", st);
      }
    }
    return m;
  }

  /** Where `name` as seen from `file` is declared, following imports and re-exports. */
  private resolve(file: string, name: string, depth = 0): DeclKey | undefined {
    if (depth > 50) return undefined;
    const m = this.module(file);
    if (m.decls.has(name)) return `${file}#${name}`;
    const imp = m.imports.get(name);
    if (imp) return imp.name === "*" ? `${imp.file}#*` : this.resolve(imp.file, imp.name, depth + 1);
    for (const s of m.stars) {
      const r = this.resolve(s, name, depth + 1);
      if (r) return r;
    }
    return undefined;
  }

  /** IAM actions constructed by everything reachable from `name` in `file` (default: the `handler` export). */
  actions(file: string, name = "handler"): Set<string> {
    const out = new Set<string>();
    const start = this.resolve(path.resolve(file), name);
    if (!start) throw new Error(`${file} declares no ${name}`);
    const seen = new Set<DeclKey>();
    const todo: DeclKey[] = [start];
    while (todo.length) {
      const key = todo.pop()!;
      if (seen.has(key)) continue;
      seen.add(key);
      const hash = key.lastIndexOf("#");
      const f = key.slice(0, hash);
      const n = key.slice(hash + 1);
      const m = this.module(f);
      // A namespace import (`import * as x`) reaches the whole module.
      const nodes = n === "*" ? [...m.decls.values()] : [m.decls.get(n)!];
      const walk = (node: ts.Node): void => {
        if (ts.isIdentifier(node)) {
          const action = m.commands.get(node.text);
          if (action && ts.isNewExpression(node.parent) && node.parent.expression === node) out.add(action);
          else if (!action) {
            const r = this.resolve(f, node.text);
            if (r && !seen.has(r)) todo.push(r);
          }
        }
        ts.forEachChild(node, walk);
      };
      for (const node of nodes) walk(node);
    }
    return out;
  }
}
