import { bakeDeps } from "../lib/bake/deps.ts";
import { janitor } from "../lib/bake/index.ts";
import { JanitorEvent } from "../lib/bake/schemas.ts";
import { loadConfig } from "../lib/config/index.ts";
import { stepHandler } from "../lib/handler.ts";

const deps = bakeDeps();

/** Janitor (see lib/bake/janitor.ts), on a schedule: `afterHours` defaults to the config's `janitor.afterHours`. */
export const handler = stepHandler("Janitor", JanitorEvent, (e) =>
  janitor(
    { afterHours: e.afterHours ?? loadConfig().janitor.afterHours, ...(e.dryRun !== undefined ? { dryRun: e.dryRun } : {}) },
    deps,
  ),
);
