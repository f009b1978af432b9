import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type GraphLayout, layoutGraph, stateGraph } from "./graph.ts";

const deploy = JSON.parse(readFileSync(new URL("../../state-machines/deploy.asl.json", import.meta.url), "utf8")) as unknown;

/** Task → Choice → (Wait → back to Task | Next), the shape of every polling loop in deploy.asl.json. */
const pollingLoop = {
  StartAt: "Start",
  States: {
    Start: { Type: "Task", Resource: "arn:aws:states:::lambda:invoke", Next: "IsDone" },
    IsDone: { Type: "Choice", Choices: [{ Condition: "{% $states.input.done %}", Next: "Finish" }], Default: "WaitABit" },
    WaitABit: { Type: "Wait", Seconds: 5, Next: "Start" },
    Finish: { Type: "Succeed" },
  },
};

function node(l: GraphLayout, id: string) {
  const n = l.nodes.find((x) => x.id === id);
  if (!n) throw new Error(`no node ${id}`);
  return n;
}

function edge(l: GraphLayout, from: string, to: string) {
  const e = l.edges.find((x) => x.from === from && x.to === to);
  if (!e) throw new Error(`no edge ${from} → ${to}`);
  return e;
}

describe("stateGraph", () => {
  it("reads states, their types and every transition kind", () => {
    const g = stateGraph({
      StartAt: "A",
      States: {
        A: {
          Type: "Task",
          Resource: "arn:aws:states:::lambda:invoke.waitForTaskToken",
          Next: "B",
          Catch: [{ ErrorEquals: ["States.ALL"], Next: "Oops" }],
        },
        B: { Type: "Choice", Choices: [{ Next: "C" }, { Next: "C" }], Default: "Oops" },
        C: { Type: "Pass", End: true, Comment: "done" },
        Oops: { Type: "Fail" },
      },
    });
    expect(g.startAt).toBe("A");
    expect(g.nodes.map((n) => [n.id, n.type, n.start, n.end, n.callback])).toEqual([
      ["A", "Task", true, false, true],
      ["B", "Choice", false, false, false],
      ["C", "Pass", false, true, false],
      ["Oops", "Fail", false, true, false],
    ]);
    expect(g.nodes[2]!.comment).toBe("done");
    // Two choices to the same state are one edge.
    expect(g.edges).toEqual([
      { from: "A", to: "B", kind: "next" },
      { from: "A", to: "Oops", kind: "catch" },
      { from: "B", to: "C", kind: "choice" },
      { from: "B", to: "Oops", kind: "default" },
    ]);
  });

  it("accepts the definition as JSON text and counts states nested in Parallel and Map", () => {
    const g = stateGraph(
      JSON.stringify({
        StartAt: "Fan",
        States: {
          Fan: {
            Type: "Parallel",
            Branches: [
              { StartAt: "X", States: { X: { Type: "Pass", End: true } } },
              {
                StartAt: "Y",
                States: {
                  Y: { Type: "Map", ItemProcessor: { StartAt: "Z", States: { Z: { Type: "Pass", End: true } } }, End: true },
                },
              },
            ],
            End: true,
          },
        },
      }),
    );
    expect(g.nodes).toEqual([expect.objectContaining({ id: "Fan", type: "Parallel", nested: 3 })]);
  });

  it("drops transitions to states that do not exist instead of failing", () => {
    const g = stateGraph({ StartAt: "A", States: { A: { Type: "Pass", Next: "Nowhere" } } });
    expect(g.edges).toEqual([]);
  });

  it.each([
    ["no States", { StartAt: "A" }],
    ["not an object", 42],
    ["States is an array", { StartAt: "A", States: [] }],
  ])("refuses a definition with %s", (_what, def) => {
    expect(() => stateGraph(def)).toThrow(/no States/);
  });
});

describe("layoutGraph", () => {
  it("puts a polling loop's wait beside the choice's next state and routes the loop back on the right", () => {
    const l = layoutGraph(stateGraph(pollingLoop));
    expect(l.nodes.map((n) => [n.id, n.layer, n.column])).toEqual([
      ["Start", 0, 0],
      ["IsDone", 1, 0],
      ["WaitABit", 2, 1],
      ["Finish", 2, 0],
    ]);
    const back = edge(l, "WaitABit", "Start");
    expect(back.back).toBe(true);
    // Right side of the wait → a lane right of every column → right side of the task.
    const wait = node(l, "WaitABit");
    const start = node(l, "Start");
    const lane = Math.max(...l.nodes.map((n) => n.x + n.w)) + 7;
    expect(back.d).toBe(`M${wait.x + wait.w} ${wait.y + wait.h / 2} H${lane} V${start.y + start.h / 2} H${start.x + start.w}`);
    expect(l.width).toBeGreaterThan(lane);
    expect(edge(l, "Start", "IsDone")).toMatchObject({ back: false, d: expect.stringMatching(/^M\S+ \S+ C/) });
  });

  it("routes an edge that skips layers down a lane on the left of every column", () => {
    const l = layoutGraph(
      stateGraph({
        StartAt: "A",
        States: {
          A: { Type: "Choice", Choices: [{ Next: "B" }], Default: "D" },
          B: { Type: "Pass", Next: "C" },
          C: { Type: "Pass", Next: "D" },
          D: { Type: "Succeed" },
        },
      }),
    );
    expect(node(l, "D").layer).toBe(3);
    const skip = edge(l, "A", "D");
    expect(skip.back).toBe(false);
    const lane = Math.min(...l.nodes.map((n) => n.x)) - 7;
    expect(lane).toBeGreaterThan(0);
    expect(skip.d).toBe(`M${node(l, "A").x} ${node(l, "A").y + 14} H${lane} V${node(l, "D").y + 14} H${node(l, "D").x}`);
  });

  it("gives overlapping routed edges separate lanes and reuses a lane once it is free", () => {
    const l = layoutGraph(
      stateGraph({
        StartAt: "A",
        States: {
          A: { Type: "Pass", Next: "B" },
          B: { Type: "Pass", Next: "C" },
          C: { Type: "Choice", Choices: [{ Next: "A" }, { Next: "B" }], Default: "D" },
          D: { Type: "Pass", Next: "E" },
          E: { Type: "Choice", Choices: [{ Next: "D" }], Default: "F" },
          F: { Type: "Succeed" },
        },
      }),
    );
    const lanes = (from: string, to: string) => Number(/H(\d+(?:\.\d+)?) V/.exec(edge(l, from, to).d)![1]);
    expect(lanes("C", "A")).not.toBe(lanes("C", "B"));
    // E → D spans layers 3-4 only, so it takes the innermost lane again.
    expect(lanes("E", "D")).toBe(Math.min(lanes("C", "A"), lanes("C", "B")));
  });

  it("lays out deploy.asl.json: every state below its predecessors, no two boxes overlapping", () => {
    const g = stateGraph(deploy);
    const l = layoutGraph(g);
    expect(l.nodes).toHaveLength(g.nodes.length);
    expect(node(l, "Prepare")).toMatchObject({ layer: 0, column: 0 });
    for (const e of l.edges.filter((x) => !x.back))
      expect(node(l, e.to).layer, `${e.from} → ${e.to}`).toBeGreaterThan(node(l, e.from).layer);
    // The polling loops and the canary loop are the back edges.
    expect(edge(l, "NextCanaryStep", "ShiftTraffic").back).toBe(true);
    expect(edge(l, "WaitForBuilder", "WaitBuilderReady").back).toBe(true);
    expect(edge(l, "BakeCanary", "BakeVerdict").back).toBe(false);
    expect(edge(l, "BakeVerdict", "VerifyCanary").back).toBe(false);
    expect(edge(l, "BakeVerdict", "BakeCanary").back).toBe(true);
    // The happy path runs down the first column.
    for (const id of [
      "Prepare",
      "FindImage",
      "LaunchBuilder",
      "Install",
      "CreateImage",
      "PlanRoll",
      "ShiftTraffic",
      "VerifyCanary",
      "RecordDeployment",
      "Done",
    ]) {
      expect(node(l, id).column, id).toBe(0);
    }
    const boxes = l.nodes.map((n) => `${n.x},${n.y}`);
    expect(new Set(boxes).size).toBe(boxes.length);
    for (const n of l.nodes) {
      expect(n.x).toBeGreaterThanOrEqual(0);
      expect(n.x + n.w).toBeLessThanOrEqual(l.width);
      expect(n.y + n.h).toBeLessThanOrEqual(l.height);
    }
  });

  it("is deterministic", () => {
    expect(layoutGraph(stateGraph(deploy))).toEqual(layoutGraph(stateGraph(deploy)));
  });
});
