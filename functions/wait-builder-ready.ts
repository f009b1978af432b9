import { waitBuilderReady } from "../lib/bake/index.ts";
import { bakeDeps } from "../lib/bake/deps.ts";
import { BuilderEvent } from "../lib/bake/schemas.ts";
import type { BakePlan } from "../lib/bake/types.ts";
import { stepHandler } from "../lib/handler.ts";

const deps = bakeDeps();

/** WaitBuilderReady (see lib/bake/). */
export const handler = stepHandler("WaitBuilderReady", BuilderEvent, (e) =>
  waitBuilderReady({ ...e, plan: e.plan as unknown as BakePlan }, deps),
);
