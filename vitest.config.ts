import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "local/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Several suites run real sockets, real bash and scaled clocks on a 2-core machine; a race with
    // the machine's load gets two more tries. A real regression fails all three (and the reporter
    // names every retried test, so flakes stay visible).
    retry: 2,
    reporters: ["default"],
    // The SDK's notice that its 2027 releases need Node 22, once per test file, is noise here.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  },
});
