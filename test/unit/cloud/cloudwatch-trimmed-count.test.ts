import { describe, expect, it } from "vitest";
import { isStatistic, MetricStore, statistic } from "../../../local/cloud/services/cloudwatch/store.ts";

describe("CloudWatch TC(a:b) with absolute bounds (the judge's slow-request count)", () => {
  const store = new MetricStore();
  const dims = [
    { Name: "TargetGroup", Value: "targetgroup/a/1" },
    { Name: "LoadBalancer", Value: "app/lb/2" },
  ];
  for (const v of [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1])
    store.put("AWS/ApplicationELB", "TargetResponseTime", dims, 1_000, { value: v }, "Seconds");
  const agg = store.window(store.get("AWS/ApplicationELB", "TargetResponseTime", dims), 0, 60)!;

  it.each([
    ["TC(0.1:)", 3],
    ["TC(:0.05)", 3],
    ["TC(0.02:0.2)", 3],
    ["TC(1:)", 0],
  ])("%s counts values in (lower, upper]", (stat, want) => {
    expect(isStatistic(stat)).toBe(true);
    expect(statistic(agg, stat)).toBe(want);
  });

  it.each(["TC(:)", "TC(10%:90%)", "tc90", "TC(a:b)"])("%s is not accepted", (stat) => {
    expect(isStatistic(stat)).toBe(false);
  });
});
