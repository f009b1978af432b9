import { stepHandler } from "../lib/handler.ts";
import { waitGreenReady } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { PlanEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** WaitGreenReady (see lib/roll/steps.ts). */
export const handler = stepHandler("WaitGreenReady", PlanEvent, (e) => waitGreenReady(e.plan as never, deps));
