import { defaultEnvironment, loadConfig, serviceConfig } from "../lib/config/index.ts";
import { stepHandler } from "../lib/handler.ts";
import { opsDeps } from "../lib/roll/deps.ts";
import { rollSettings } from "../lib/roll/index.ts";
import { prepareRollback } from "../lib/roll/rollback.ts";
import { PrepareRollbackEvent } from "../lib/roll/schemas.ts";

const deps = opsDeps();

/** PrepareRollback: current and previous fleet, window check, lock (lib/roll/rollback.ts). */
export const handler = stepHandler("PrepareRollback", PrepareRollbackEvent, (e) => {
  const config = loadConfig();
  const environment = e.input.environment ?? defaultEnvironment(serviceConfig(config, e.input.service), e.input.service);
  const settings = rollSettings(serviceConfig(config, e.input.service, environment));
  return prepareRollback({ ...e.input, environment, execution: e.execution, settings }, deps);
});
