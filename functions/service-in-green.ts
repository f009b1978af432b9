import { stepHandler } from "../lib/handler.ts";
import { serviceInGreen } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { CommandEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** ServiceInGreen (see lib/roll/steps.ts). */
export const handler = stepHandler("ServiceInGreen", CommandEvent, (e) => serviceInGreen(e as never, deps));
