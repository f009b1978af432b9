import { stepHandler } from "../lib/handler.ts";
import { opsDeps } from "../lib/roll/deps.ts";
import { finishRollback } from "../lib/roll/rollback.ts";
import { FinishRollbackEvent } from "../lib/roll/schemas.ts";

const deps = opsDeps();

/** FinishRollback: resume scaling on both fleets, release the lock (lib/roll/rollback.ts). */
export const handler = stepHandler("FinishRollback", FinishRollbackEvent, (e) => finishRollback(e as never, deps));
