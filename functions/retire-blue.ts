import { stepHandler } from "../lib/handler.ts";
import { retireBlue } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { PlanEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** RetireBlue (see lib/roll/steps.ts). */
export const handler = stepHandler("RetireBlue", PlanEvent, (e) => retireBlue(e.plan as never, deps));
