import { stepHandler } from "../lib/handler.ts";
import { bakeCanary } from "../lib/roll/bake.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { BakeEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** BakeCanary (see lib/roll/bake.ts). */
export const handler = stepHandler("BakeCanary", BakeEvent, (e) => bakeCanary(e as never, deps));
