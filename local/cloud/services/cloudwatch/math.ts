/**
 * A small subset of CloudWatch metric math, evaluated one timestamp at a time: numbers, query ids,
 * `+ - * /`, parentheses, unary minus, and the functions `FILL(x, value)`, `ABS(x)`, `MAX/MIN/SUM/AVG(x, y, …)`.
 * An operand without a value at that timestamp makes the result missing (as in CloudWatch), which
 * `FILL` repairs. Unsupported syntax is rejected when the alarm or query is created.
 */

type Node =
  | { k: "num"; v: number }
  | { k: "id"; id: string }
  | { k: "neg"; x: Node }
  | { k: "bin"; op: "+" | "-" | "*" | "/"; a: Node; b: Node }
  | { k: "fn"; name: string; args: Node[] };

const FUNCTIONS = new Set(["FILL", "ABS", "MAX", "MIN", "SUM", "AVG"]);

/** A parsed expression: the ids it reads and an evaluator. */
export interface Expression {
  readonly ids: string[];
  evaluate(values: (id: string) => number | undefined): number | undefined;
}

export function parseExpression(src: string): Expression {
  const tokens = tokenize(src);
  let i = 0;
  const peek = () => tokens[i];
  const next = () => tokens[i++];
  const expect = (t: string) => {
    if (next() !== t) throw new Error(`expected "${t}" in expression "${src}"`);
  };
  const primary = (): Node => {
    const t = next();
    if (t === undefined) throw new Error(`unexpected end of expression "${src}"`);
    if (t === "(") {
      const e = sum();
      expect(")");
      return e;
    }
    if (t === "-") return { k: "neg", x: primary() };
    if (/^\d/.test(t)) return { k: "num", v: Number(t) };
    if (/^[A-Za-z_]/.test(t)) {
      if (peek() === "(") {
        const name = t.toUpperCase();
        if (!FUNCTIONS.has(name)) throw new Error(`unsupported function ${t} in expression "${src}"`);
        next();
        const args: Node[] = [];
        if (peek() !== ")") {
          args.push(sum());
          while (peek() === ",") {
            next();
            args.push(sum());
          }
        }
        expect(")");
        return { k: "fn", name, args };
      }
      return { k: "id", id: t };
    }
    throw new Error(`unexpected "${t}" in expression "${src}"`);
  };
  const product = (): Node => {
    let a = primary();
    while (peek() === "*" || peek() === "/") {
      const op = next() as "*" | "/";
      a = { k: "bin", op, a, b: primary() };
    }
    return a;
  };
  const sum = (): Node => {
    let a = product();
    while (peek() === "+" || peek() === "-") {
      const op = next() as "+" | "-";
      a = { k: "bin", op, a, b: product() };
    }
    return a;
  };
  const root = sum();
  if (i !== tokens.length) throw new Error(`unexpected "${tokens[i]}" in expression "${src}"`);
  const ids = new Set<string>();
  const walk = (n: Node) => {
    if (n.k === "id") ids.add(n.id);
    else if (n.k === "neg") walk(n.x);
    else if (n.k === "bin") {
      walk(n.a);
      walk(n.b);
    } else if (n.k === "fn") n.args.forEach(walk);
  };
  walk(root);
  return { ids: [...ids], evaluate: (values) => evalNode(root, values) };
}

function evalNode(n: Node, values: (id: string) => number | undefined): number | undefined {
  switch (n.k) {
    case "num":
      return n.v;
    case "id":
      return values(n.id);
    case "neg": {
      const x = evalNode(n.x, values);
      return x === undefined ? undefined : -x;
    }
    case "bin": {
      const a = evalNode(n.a, values);
      const b = evalNode(n.b, values);
      if (a === undefined || b === undefined) return undefined;
      if (n.op === "+") return a + b;
      if (n.op === "-") return a - b;
      if (n.op === "*") return a * b;
      // Division by zero gives no datapoint in CloudWatch metric math.
      return b === 0 ? undefined : a / b;
    }
    case "fn": {
      const args = n.args.map((a) => evalNode(a, values));
      if (n.name === "FILL") return args[0] ?? args[1];
      if (n.name === "ABS") return args[0] === undefined ? undefined : Math.abs(args[0]);
      const present = args.filter((x): x is number => x !== undefined);
      if (present.length === 0) return undefined;
      if (n.name === "MAX") return Math.max(...present);
      if (n.name === "MIN") return Math.min(...present);
      const s = present.reduce((x, y) => x + y, 0);
      return n.name === "SUM" ? s : s / present.length;
    }
  }
}

function tokenize(src: string): string[] {
  const out: string[] = [];
  const re = /\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|[A-Za-z_][A-Za-z0-9_]*|[()+\-*/,])/y;
  let pos = 0;
  while (pos < src.length) {
    if (/^\s*$/.test(src.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(src);
    if (!m) throw new Error(`cannot parse expression "${src}" at ${pos}`);
    out.push(m[1]!);
    pos = re.lastIndex;
  }
  return out;
}
