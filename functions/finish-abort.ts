import { stepHandler } from "../lib/handler.ts";
import { finishAbort } from "../lib/roll/abort.ts";
import { opsDeps } from "../lib/roll/deps.ts";
import { AbortPlanEvent } from "../lib/roll/schemas.ts";

const deps = opsDeps();

/** FinishAbort: resume scaling, record, release the lock and start what is queued (lib/roll/abort.ts). */
export const handler = stepHandler("FinishAbort", AbortPlanEvent, (e) => finishAbort(e.plan as never, deps));
