import { loadConfig, serviceConfig } from "../lib/config/index.ts";
import { stepHandler } from "../lib/handler.ts";
import { opsDeps } from "../lib/roll/deps.ts";
import { rollSettings } from "../lib/roll/index.ts";
import { prepareRollback } from "../lib/roll/rollback.ts";
import { PrepareRollbackEvent } from "../lib/roll/schemas.ts";

const deps = opsDeps();

/** PrepareRollback: current and previous fleet, window check, lock (lib/roll/rollback.ts). */
export const handler = stepHandler("PrepareRollback", PrepareRollbackEvent, (e) =>
  prepareRollback({ ...e.input, execution: e.execution, settings: rollSettings(serviceConfig(loadConfig(), e.input.service)) }, deps),
);
