import { stepHandler } from "../lib/handler.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { restorePrevious } from "../lib/roll/rollback.ts";
import { PlanEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** RestorePrevious: the previous fleet back at the current capacity, un-retired (lib/roll/rollback.ts). */
export const handler = stepHandler("RestorePrevious", PlanEvent, (e) => restorePrevious(e.plan as never, deps));
