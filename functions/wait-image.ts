import { waitImage } from "../lib/bake/index.ts";
import { bakeDeps } from "../lib/bake/deps.ts";
import { BuilderImageEvent } from "../lib/bake/schemas.ts";
import type { BakePlan } from "../lib/bake/types.ts";
import { stepHandler } from "../lib/handler.ts";

const deps = bakeDeps();

/** WaitImage (see lib/bake/). */
export const handler = stepHandler("WaitImage", BuilderImageEvent, (e) =>
  waitImage({ ...e, plan: e.plan as unknown as BakePlan }, deps),
);
