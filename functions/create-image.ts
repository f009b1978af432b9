import { createImage } from "../lib/bake/index.ts";
import { bakeDeps } from "../lib/bake/deps.ts";
import { BuilderEvent } from "../lib/bake/schemas.ts";
import type { BakePlan } from "../lib/bake/types.ts";
import { stepHandler } from "../lib/handler.ts";

const deps = bakeDeps();

/** CreateImage (see lib/bake/). */
export const handler = stepHandler("CreateImage", BuilderEvent, (e) =>
  createImage({ ...e, plan: e.plan as unknown as BakePlan }, deps),
);
