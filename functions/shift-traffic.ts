import { stepHandler } from "../lib/handler.ts";
import { shiftTraffic } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { CanaryEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** ShiftTraffic (see lib/roll/steps.ts). */
export const handler = stepHandler("ShiftTraffic", CanaryEvent, (e) => shiftTraffic(e as never, deps));
