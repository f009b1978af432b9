import { stepHandler } from "../lib/handler.ts";
import { verifyCanary } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { CanaryEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** VerifyCanary (see lib/roll/steps.ts). */
export const handler = stepHandler("VerifyCanary", CanaryEvent, (e) => verifyCanary(e as never, deps));
