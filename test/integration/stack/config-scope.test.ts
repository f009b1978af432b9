/**
 * A stack started with its own configuration holds it only while it runs: the next stack in the
 * same process (a test file, a simulation seed) gets the default again. A leak here once made a
 * seed without an approval gate wait for an approval nobody would give.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import YAML from "yaml";
import { loadConfig } from "../../../lib/config/load.ts";
import { Stack } from "../../../local/stack.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

it("restores KILN_CONFIG when a stack started with `config` stops", async () => {
  const doc = YAML.parse(readFileSync(path.join(ROOT, "kiln.config.yaml"), "utf8")) as {
    services: Record<string, { approval?: { required: boolean } }>;
  };
  for (const svc of Object.values(doc.services)) svc.approval = { ...svc.approval, required: true };
  const file = path.join(mkdtempSync(path.join(tmpdir(), "kiln-config-scope-")), "kiln.config.yaml");
  writeFileSync(file, YAML.stringify(doc));
  const before = process.env.KILN_CONFIG;

  stack = await Stack.start({ clock: "virtual", port: 0, console: false, config: file });
  expect(process.env.KILN_CONFIG).toBe(file);
  expect(Object.values(loadConfig().services).every((s) => s.approval?.required)).toBe(true);
  await stack.stop();
  stack = undefined;

  expect(process.env.KILN_CONFIG).toBe(before);
  expect(loadConfig(), "the default configuration again, not the stopped stack's").toEqual(
    loadConfig(path.join(ROOT, "kiln.config.yaml")),
  );
});
