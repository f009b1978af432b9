/**
 * Green's waits have a deadline: a green whose targets never pass their health checks fails the
 * deployment at WaitGreenHealthy with kiln.Timeout (timeouts.greenReadySeconds +
 * greenHealthySeconds after green was created), traffic never leaves blue, and a redrive gets a
 * fresh deadline (measured from the redrive). Before, the execution polled until its history held 25,000 events.
 */
import { RedriveExecutionCommand } from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readWeights } from "../../lib/roll/traffic.ts";
import { bootE2E, commitOf, type E2E, failedAt, settle, startDeploy, statesEntered } from "../support/stack.ts";

let e: E2E;
beforeAll(async () => {
  e = await bootE2E({ instances: 2 });
}, 120_000);
afterAll(async () => e?.stack.stop());

describe("green's deadline", () => {
  it("a green that never gets healthy fails at WaitGreenHealthy with kiln.Timeout, and traffic stays on blue", async () => {
    const [blueTg, greenTg] = e.seeded.targetGroupArns;
    // Every health check of the idle target group alternates pass/fail: never the healthy threshold in a row.
    e.stack.cloud.faults.add({ kind: "health-flap", targetGroup: greenTg, periodMs: 0 });
    const d = await startDeploy(e, commitOf(0x2d));
    const t0 = e.stack.cloud.clock.now();
    const done = await settle(e, d.arn);
    expect(done.status).toBe("FAILED");
    expect(failedAt(e, d.arn)).toBe("WaitGreenHealthy");
    expect(done.error).toBe("kiln.Timeout");
    expect(done.cause).toMatch(/WaitGreenHealthy: 0\/2 green targets healthy .*timeout 2700 s\)/);
    // It gave up at the deadline, not at the history's limit.
    expect(e.stack.cloud.clock.now() - t0).toBeLessThan(2 * 3_600_000);
    expect(statesEntered(e, d.arn)).not.toContain("ShiftTraffic");
    const w = await readWeights(e.elbv2, { listenerArn: e.seeded.listenerArn });
    expect(w.find((x) => x.arn === blueTg)?.weight).toBe(100);

    // A redrive waits afresh: green is older than the deadline by now, yet it waits the whole budget again.
    const redrivenAt = e.stack.cloud.clock.now();
    await e.sfn.send(new RedriveExecutionCommand({ executionArn: d.arn }));
    const again = await settle(e, d.arn);
    expect(again.error).toBe("kiln.Timeout");
    expect(e.stack.cloud.clock.now() - redrivenAt).toBeGreaterThanOrEqual(2_700_000);
  }, 600_000);
});
