import { stepHandler } from "../lib/handler.ts";
import { restoreTraffic } from "../lib/roll/abort.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { RestoreTrafficEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** RestoreTraffic: blue 100 % once blue can carry it (lib/roll/abort.ts). */
export const handler = stepHandler("RestoreTraffic", RestoreTrafficEvent, (e) => restoreTraffic(e as never, deps));
