import { stepHandler } from "../lib/handler.ts";
import { restoreBlue } from "../lib/roll/abort.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { AbortCommandEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** RestoreBlue: recorded capacity back, smoke test + service-in, all healthy (lib/roll/abort.ts). */
export const handler = stepHandler("RestoreBlue", AbortCommandEvent, (e) => restoreBlue(e as never, deps));
