import { AsyncLocalStorage } from "node:async_hooks";
import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../lib/clock.ts";

describe("VirtualClock", () => {
  it("runs a timer in the async context it was set in, not in that of whoever made time jump", async () => {
    // The simulated cloud reads the calling Lambda from such a context (IAM at run time): a Lambda
    // whose sleep advanced the clock must not become the caller of an engine timer that fell due.
    const scope = new AsyncLocalStorage<string>();
    const clock = new VirtualClock();
    const seen: (string | undefined)[] = [];
    scope.run("engine", () => clock.setTimeout(() => seen.push(scope.getStore()), 1_000));
    clock.setTimeout(() => seen.push(scope.getStore()), 2_000);
    await scope.run("lambda", () => clock.sleep(5_000));
    expect(seen).toEqual(["engine", undefined]);
    clock.dispose();
  });
});
