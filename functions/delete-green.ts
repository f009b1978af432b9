import { stepHandler } from "../lib/handler.ts";
import { deleteGreen } from "../lib/roll/abort.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { AbortPlanEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** DeleteGreen: the aborted deployment's groups, launch-template versions and builders (lib/roll/abort.ts). */
export const handler = stepHandler("DeleteGreen", AbortPlanEvent, (e) => deleteGreen(e.plan as never, deps));
