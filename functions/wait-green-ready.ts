import { stepHandler } from "../lib/handler.ts";
import { waitGreenReady } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { WaitEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** WaitGreenReady (see lib/roll/steps.ts). */
export const handler = stepHandler("WaitGreenReady", WaitEvent, (e) => waitGreenReady(e.plan as never, deps, e.attempt));
