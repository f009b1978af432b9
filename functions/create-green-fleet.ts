import { stepHandler } from "../lib/handler.ts";
import { createGreenFleet } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { PlanEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** CreateGreenFleet (see lib/roll/steps.ts). */
export const handler = stepHandler("CreateGreenFleet", PlanEvent, (e) => createGreenFleet(e.plan as never, deps));
