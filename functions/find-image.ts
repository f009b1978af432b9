import { findImage } from "../lib/bake/index.ts";
import { bakeDeps } from "../lib/bake/deps.ts";
import { StepEvent } from "../lib/bake/schemas.ts";
import type { BakePlan } from "../lib/bake/types.ts";
import { stepHandler } from "../lib/handler.ts";

const deps = bakeDeps();

/** FindImage (see lib/bake/). */
export const handler = stepHandler("FindImage", StepEvent, (e) => findImage({ ...e, plan: e.plan as unknown as BakePlan }, deps));
