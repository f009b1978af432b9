import { loadConfig, serviceConfig } from "../lib/config/index.ts";
import { stepHandler } from "../lib/handler.ts";
import { prepareAbort } from "../lib/roll/abort.ts";
import { opsDeps } from "../lib/roll/deps.ts";
import { rollSettings } from "../lib/roll/index.ts";
import { PrepareAbortEvent } from "../lib/roll/schemas.ts";

const deps = opsDeps();

/** PrepareAbort: find the deployment, take the lock from it, stop it, find blue and green (lib/roll/abort.ts). */
export const handler = stepHandler("PrepareAbort", PrepareAbortEvent, (e) =>
  prepareAbort({ ...e.input, execution: e.execution, settings: rollSettings(serviceConfig(loadConfig(), e.input.service)) }, deps),
);
