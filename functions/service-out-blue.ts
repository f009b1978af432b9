import { stepHandler } from "../lib/handler.ts";
import { serviceOutBlue } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { CommandEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** ServiceOutBlue (see lib/roll/steps.ts). */
export const handler = stepHandler("ServiceOutBlue", CommandEvent, (e) => serviceOutBlue(e as never, deps));
