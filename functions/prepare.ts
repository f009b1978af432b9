import { bakeDeps } from "../lib/bake/deps.ts";
import { prepare } from "../lib/bake/index.ts";
import { PrepareEvent } from "../lib/bake/schemas.ts";
import { stepHandler } from "../lib/handler.ts";

const deps = bakeDeps();

/** Prepare (see lib/bake/plan.ts): validate the request and config, resolve the base AMI, derive the plan. */
export const handler = stepHandler("Prepare", PrepareEvent, (e) => prepare(e, deps));
