import { stepHandler } from "../lib/handler.ts";
import { waitGreenHealthy } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { WaitEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** WaitGreenHealthy (see lib/roll/steps.ts). */
export const handler = stepHandler("WaitGreenHealthy", WaitEvent, (e) => waitGreenHealthy(e.plan as never, deps, e.attempt));
