import { describe, expect, it } from "vitest";
import { checkDeadline, MAX_POLL_SECONDS, nextCheckSeconds, waitStart } from "../../../lib/bake/waits.ts";

describe("nextCheckSeconds", () => {
  it.each([
    // elapsed, expected, timeout → wait
    [0, 300, 3600, 240],
    [100, 300, 3600, 140],
    [240, 300, 3600, 15],
    [300, 300, 3600, 15],
    [420, 300, 3600, 60],
    [900, 300, 3600, 300],
    [3000, 300, 3600, MAX_POLL_SECONDS],
    [3500, 300, 3600, 101],
    [0, 1, 60, 2],
    [59, 90, 60, 2],
  ])("elapsed %is of expected %is (timeout %is) → %is", (elapsed, expected, timeout, wait) => {
    expect(nextCheckSeconds(elapsed, expected, timeout)).toBe(wait);
  });

  it("an image that takes 10× longer than expected costs a bounded number of checks", () => {
    const count = (actual: number) => {
      let t = 0;
      let checks = 0;
      while (t < actual) {
        t += nextCheckSeconds(t, 300, 86_400);
        checks++;
      }
      return checks;
    };
    expect(count(300)).toBeLessThanOrEqual(6);
    expect(count(3000)).toBeLessThanOrEqual(25);
    expect(count(30_000)).toBeLessThanOrEqual(count(3000) + 100);
  });
});

describe("deadlines", () => {
  const attempt = { redriveCount: 1, startedAt: "2026-01-05T10:00:00.000Z" };
  it("a redrive gets a fresh deadline", () => {
    expect(waitStart(Date.parse("2026-01-05T09:00:00.000Z"), attempt)).toBe(Date.parse(attempt.startedAt));
    expect(waitStart(Date.parse("2026-01-05T11:00:00.000Z"), attempt)).toBe(Date.parse("2026-01-05T11:00:00.000Z"));
    expect(waitStart(undefined, attempt)).toBe(Date.parse(attempt.startedAt));
  });
  it("throws kiln.Timeout past the deadline, naming what was awaited", () => {
    expect(checkDeadline(10_000, 0, 20, "x")).toBe(10);
    expect(() => checkDeadline(30_000, 0, 20, "AMI ami-1 still pending")).toThrow(
      /AMI ami-1 still pending \(waited 30 s, timeout 20 s\)/,
    );
    try {
      checkDeadline(30_000, 0, 20, "x");
    } catch (e) {
      expect((e as Error).name).toBe("kiln.Timeout");
    }
  });
});
