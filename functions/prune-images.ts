import { pruneImages } from "../lib/bake/index.ts";
import { bakeDeps } from "../lib/bake/deps.ts";
import { ImageEvent } from "../lib/bake/schemas.ts";
import type { BakePlan } from "../lib/bake/types.ts";
import { stepHandler } from "../lib/handler.ts";

const deps = bakeDeps();

/** PruneImages (see lib/bake/). */
export const handler = stepHandler("PruneImages", ImageEvent, (e) =>
  pruneImages({ ...e, plan: e.plan as unknown as BakePlan }, deps),
);
