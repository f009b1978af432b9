/**
 * The state graph of an ASL definition and a small layered layout for it, computed on the server so
 * the page only draws rectangles and paths (and so the layout is testable without a browser).
 *
 * The layout is the classic first half of Sugiyama's method, kept deliberately simple:
 * - a depth-first walk from `StartAt` following edges in definition order (Next, Choices in order,
 *   Default, Catch) marks edges that close a loop (polling loops: Task → Choice → Wait → Task) as
 *   back edges;
 * - every node's layer is its longest distance from `StartAt` over the remaining (acyclic) edges,
 *   so a state is always drawn below every state that can lead to it;
 * - within a layer, nodes keep the order the walk discovered them, which puts the "happy path" (first
 *   choice, Next) in the first column and side branches (waits, retries) to its right.
 * Edges between adjacent layers are curves; edges that skip layers run down a lane on the left, and
 * back edges run up a lane on the right, so neither crosses a state's box.
 */

/** One state of the top-level machine (Parallel branches and Map iterators are shown as one node). */
export interface GraphNode {
  id: string;
  type: string;
  comment?: string;
  resource?: string;
  start: boolean;
  end: boolean;
  /** A Task that waits for a callback (`.waitForTaskToken`): the console offers Approve/Reject there. */
  callback: boolean;
  /** Number of states nested inside a Parallel or Map. */
  nested?: number;
}

export type EdgeKind = "next" | "choice" | "default" | "catch";

export interface GraphEdge {
  from: string;
  to: string;
  kind: EdgeKind;
}

export interface StateGraph {
  startAt: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface LayoutNode extends GraphNode {
  layer: number;
  column: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface LayoutEdge extends GraphEdge {
  /** The edge closes a loop (drawn upwards on the right). */
  back: boolean;
  /** SVG path data, ending at the target's border. */
  d: string;
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: LayoutNode[];
  edges: LayoutEdge[];
}

export interface LayoutOptions {
  nodeWidth?: number;
  nodeHeight?: number;
  /** Vertical gap between layers. */
  layerGap?: number;
  /** Horizontal gap between columns. */
  columnGap?: number;
  /** Distance between parallel routing lanes. */
  laneGap?: number;
  margin?: number;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function countNested(state: Json): number {
  let n = 0;
  const count = (machine: unknown) => {
    if (!isObject(machine) || !isObject(machine.States)) return;
    for (const s of Object.values(machine.States)) {
      n++;
      if (isObject(s)) for (const inner of nestedMachines(s)) count(inner);
    }
  };
  for (const m of nestedMachines(state)) count(m);
  return n;
}

function nestedMachines(state: Json): unknown[] {
  if (Array.isArray(state.Branches)) return state.Branches;
  const it = state.ItemProcessor ?? state.Iterator;
  return it === undefined ? [] : [it];
}

/**
 * The nodes and edges of a definition (a parsed object or its JSON text). Transitions to states that
 * do not exist are dropped rather than thrown: the console must render whatever AWS returns.
 */
export function stateGraph(definition: unknown): StateGraph {
  const def = typeof definition === "string" ? (JSON.parse(definition) as unknown) : definition;
  if (!isObject(def) || !isObject(def.States)) throw new Error("not a state machine definition: no States");
  const states = def.States;
  const startAt = typeof def.StartAt === "string" ? def.StartAt : (Object.keys(states)[0] ?? "");
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const add = (from: string, to: unknown, kind: EdgeKind) => {
    if (typeof to === "string" && Object.hasOwn(states, to)) edges.push({ from, to, kind });
  };
  for (const [id, raw] of Object.entries(states)) {
    const s = isObject(raw) ? raw : {};
    const type = typeof s.Type === "string" ? s.Type : "Unknown";
    const resource = typeof s.Resource === "string" ? s.Resource : undefined;
    const nested = type === "Parallel" || type === "Map" ? countNested(s) : undefined;
    nodes.push({
      id,
      type,
      comment: typeof s.Comment === "string" ? s.Comment : undefined,
      resource,
      start: id === startAt,
      end: s.End === true || type === "Succeed" || type === "Fail",
      callback: type === "Task" && Boolean(resource?.endsWith(".waitForTaskToken")),
      ...(nested === undefined ? {} : { nested }),
    });
    add(id, s.Next, "next");
    if (Array.isArray(s.Choices)) for (const c of s.Choices) if (isObject(c)) add(id, c.Next, "choice");
    add(id, s.Default, "default");
    if (Array.isArray(s.Catch)) for (const c of s.Catch) if (isObject(c)) add(id, c.Next, "catch");
  }
  // The same transition listed twice (two choices to one state) is drawn once.
  const seen = new Set<string>();
  const unique = edges.filter((e) => {
    const key = `${e.from}\u0000${e.to}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { startAt, nodes, edges: unique };
}

/** Lays a graph out top to bottom; see the module comment for the method. */
export function layoutGraph(graph: StateGraph, opts: LayoutOptions = {}): GraphLayout {
  const W = opts.nodeWidth ?? 176;
  const H = opts.nodeHeight ?? 28;
  const layerGap = opts.layerGap ?? 22;
  const columnGap = opts.columnGap ?? 28;
  const laneGap = opts.laneGap ?? 7;
  const margin = opts.margin ?? 12;

  const out = new Map<string, GraphEdge[]>();
  for (const n of graph.nodes) out.set(n.id, []);
  for (const e of graph.edges) out.get(e.from)?.push(e);

  // 1. Depth-first walk: discovery order, back edges, and a reverse post-order (a topological order
  //    of the graph without its back edges). Iterative, so a long chain cannot overflow the stack.
  const discovery = new Map<string, number>();
  const onStack = new Set<string>();
  const backEdges = new Set<GraphEdge>();
  const postOrder: string[] = [];
  const roots = [graph.startAt, ...graph.nodes.map((n) => n.id)].filter((id) => out.has(id));
  for (const root of roots) {
    if (discovery.has(root)) continue;
    const stack: { id: string; next: number }[] = [{ id: root, next: 0 }];
    discovery.set(root, discovery.size);
    onStack.add(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const edges = out.get(top.id)!;
      if (top.next < edges.length) {
        const e = edges[top.next++]!;
        if (onStack.has(e.to)) backEdges.add(e);
        else if (!discovery.has(e.to)) {
          discovery.set(e.to, discovery.size);
          onStack.add(e.to);
          stack.push({ id: e.to, next: 0 });
        }
      } else {
        stack.pop();
        onStack.delete(top.id);
        postOrder.push(top.id);
      }
    }
  }

  // 2. Longest-path layering over forward edges, in topological order.
  const layer = new Map<string, number>(graph.nodes.map((n) => [n.id, 0]));
  for (const id of postOrder.reverse()) {
    for (const e of out.get(id)!) {
      if (backEdges.has(e)) continue;
      layer.set(e.to, Math.max(layer.get(e.to)!, layer.get(id)! + 1));
    }
  }

  // 3. Columns: discovery order within each layer.
  const layerCount = graph.nodes.length === 0 ? 0 : Math.max(...layer.values()) + 1;
  const layers: string[][] = Array.from({ length: layerCount }, () => []);
  for (const n of [...graph.nodes].sort((a, b) => discovery.get(a.id)! - discovery.get(b.id)!))
    layers[layer.get(n.id)!]!.push(n.id);
  const column = new Map<string, number>();
  for (const ids of layers) for (const [i, id] of ids.entries()) column.set(id, i);
  const columns = Math.max(1, ...layers.map((ids) => ids.length));

  // 4. Lanes for routed edges: long forward edges on the left, back edges on the right; each edge gets
  //    the first lane free over the layers it spans.
  const routed = graph.edges.filter((e) => backEdges.has(e) || layer.get(e.to)! - layer.get(e.from)! !== 1);
  const leftLanes: [number, number][][] = [];
  const rightLanes: [number, number][][] = [];
  const laneOf = new Map<GraphEdge, number>();
  const byLength = [...routed].sort(
    (a, b) => Math.abs(layer.get(a.to)! - layer.get(a.from)!) - Math.abs(layer.get(b.to)! - layer.get(b.from)!),
  );
  for (const e of byLength) {
    const lanes = backEdges.has(e) ? rightLanes : leftLanes;
    const lo = Math.min(layer.get(e.from)!, layer.get(e.to)!);
    const hi = Math.max(layer.get(e.from)!, layer.get(e.to)!);
    let i = lanes.findIndex((spans) => spans.every(([a, b]) => hi < a || lo > b));
    if (i < 0) i = lanes.push([]) - 1;
    lanes[i]!.push([lo, hi]);
    laneOf.set(e, i);
  }

  const left = margin + leftLanes.length * laneGap + (leftLanes.length > 0 ? laneGap : 0);
  const gridRight = left + columns * W + (columns - 1) * columnGap;
  const width = gridRight + (rightLanes.length > 0 ? laneGap : 0) + rightLanes.length * laneGap + margin;
  const height = margin * 2 + layers.length * H + Math.max(0, layers.length - 1) * layerGap;

  const nodes: LayoutNode[] = graph.nodes.map((n) => ({
    ...n,
    layer: layer.get(n.id)!,
    column: column.get(n.id)!,
    x: left + column.get(n.id)! * (W + columnGap),
    y: margin + layer.get(n.id)! * (H + layerGap),
    w: W,
    h: H,
  }));
  const at = new Map(nodes.map((n) => [n.id, n]));

  const edges: LayoutEdge[] = graph.edges.map((e) => {
    const a = at.get(e.from)!;
    const b = at.get(e.to)!;
    const back = backEdges.has(e);
    let d: string;
    if (!laneOf.has(e)) {
      // Adjacent layers: a vertical S-curve from the bottom of `a` to the top of `b`.
      const [x1, y1, x2, y2] = [a.x + a.w / 2, a.y + a.h, b.x + b.w / 2, b.y];
      const my = (y1 + y2) / 2;
      d = `M${x1} ${y1} C${x1} ${my} ${x2} ${my} ${x2} ${y2}`;
    } else if (back) {
      // Up a lane right of every column, into the target's right side.
      const lx = gridRight + laneGap * (laneOf.get(e)! + 1);
      const [y1, y2] = [a.y + a.h / 2, b.y + b.h / 2];
      d = `M${a.x + a.w} ${y1} H${lx} V${y2} H${b.x + b.w}`;
    } else {
      // Down (or, for a same-layer edge, across) a lane left of every column, into the target's left side.
      const lx = left - laneGap * (laneOf.get(e)! + 1);
      const [y1, y2] = [a.y + a.h / 2, b.y + b.h / 2];
      d = `M${a.x} ${y1} H${lx} V${y2} H${b.x}`;
    }
    return { ...e, back, d };
  });
  return { width, height, nodes, edges };
}
