import { stepHandler } from "../lib/handler.ts";
import { waitGreenHealthy } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { PlanEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** WaitGreenHealthy (see lib/roll/steps.ts). */
export const handler = stepHandler("WaitGreenHealthy", PlanEvent, (e) => waitGreenHealthy(e.plan as never, deps));
