import { terminateBuilder } from "../lib/bake/index.ts";
import { bakeDeps } from "../lib/bake/deps.ts";
import { StepEvent } from "../lib/bake/schemas.ts";
import type { BakePlan } from "../lib/bake/types.ts";
import { stepHandler } from "../lib/handler.ts";

const deps = bakeDeps();

/** TerminateBuilder (see lib/bake/). */
export const handler = stepHandler("TerminateBuilder", StepEvent, (e) =>
  terminateBuilder({ ...e, plan: e.plan as unknown as BakePlan }, deps),
);
