import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../../lib/clock.ts";
import { APP_PATHS, answer, startApp } from "../../../local/app/server.ts";
import type { FaultRule } from "../../../local/cloud/faults.ts";

function put(root: string, rel: string, content = ""): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), content);
}

describe("sample app server", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "kiln-app-srv-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it.each([
    // installed, in service, path, status, body fragment
    [false, false, "/", 503, "not installed"],
    [false, false, "/health", 503, "not installed"],
    [false, false, "/health?deep=1", 503, "not installed"],
    [true, false, "/", 200, '"commit":"abcdef1"'],
    [true, false, "/health", 503, "out of service"],
    [true, false, "/health?deep=1", 200, '"inService":false'],
    [true, true, "/health", 200, '"status":"ok"'],
    [true, true, "/health?deep=1", 200, '"inService":true'],
    [true, true, "/nope", 404, "not found"],
    [true, true, "//evil.example/health", 404, "not found"],
  ])("installed=%s inService=%s GET %s → %i", (installed, inService, path, status, fragment) => {
    if (installed) {
      put(root, APP_PATHS.commit, "abcdef1\n");
      put(root, APP_PATHS.service, "web\n");
    }
    if (inService) put(root, APP_PATHS.inService);
    const r = answer(path, { instance: "i-1", rootDir: root });
    expect(r.status).toBe(status);
    expect(r.body).toContain(fragment);
  });

  it("answers {commit, instance, service} on /", () => {
    put(root, APP_PATHS.commit, "abcdef1\n");
    put(root, APP_PATHS.service, "web\n");
    expect(JSON.parse(answer("/", { instance: "i-1", rootDir: root }).body)).toEqual({
      commit: "abcdef1",
      instance: "i-1",
      service: "web",
    });
  });

  it.each([
    [{ kind: "bad-commit", commit: "abcdef1", mode: "500" }, 500, 0],
    [{ kind: "bad-commit", commit: "abcdef1", mode: "slow", latencyMs: 1500 }, 200, 1500],
    [{ kind: "bad-commit", commit: "0000000", mode: "500" }, 200, 0],
  ] as [FaultRule, number, number][])("bad-commit fault %j → %i after %i ms, health unaffected", (rule, status, latency) => {
    put(root, APP_PATHS.commit, "abcdef1\n");
    put(root, APP_PATHS.inService);
    const faults = {
      active: (kind: string, attrs: Record<string, unknown> = {}) =>
        kind === rule.kind && attrs.commit === rule.commit ? rule : undefined,
    };
    expect(answer("/", { instance: "i-1", rootDir: root, faults })).toMatchObject({ status, latencyMs: latency });
    expect(answer("/health", { instance: "i-1", rootDir: root, faults }).status).toBe(200);
  });

  it("serves over real HTTP on 127.0.0.1, delaying a slow commit on the cloud clock", async () => {
    const clock = new VirtualClock();
    put(root, APP_PATHS.commit, "abcdef1\n");
    const rule = { kind: "bad-commit", mode: "slow", latencyMs: 90_000 };
    const app = await startApp({ instance: "i-1", rootDir: root, clock, realServer: true, faults: { active: () => rule } });
    try {
      expect(app.port).toBeGreaterThan(0);
      const t0 = clock.now();
      // Not held: the virtual clock must be free to run the server's 90 s delay.
      const res = await fetch(`http://127.0.0.1:${app.port}/`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ commit: "abcdef1", instance: "i-1" });
      expect(clock.now() - t0).toBe(90_000);
      expect(await app.request("/")).toMatchObject({ status: 200, latencyMs: 90_000 });
    } finally {
      await app.stop();
    }
    expect(existsSync(join(root, APP_PATHS.port))).toBe(false);
    await expect(app.request("/")).rejects.toThrow(/stopped/);
  });

  it("runs without a socket when real servers are off", async () => {
    const app = await startApp({ instance: "i-1", rootDir: root, clock: new VirtualClock(), realServer: false });
    expect(app.port).toBe(0);
    expect(readFileSync(join(root, APP_PATHS.port), "utf8")).toBe("0\n");
    expect((await app.request("/health")).status).toBe(503);
    await app.stop();
  });
});
