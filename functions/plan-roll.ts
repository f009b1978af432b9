import { z } from "zod";
import { loadConfig, ServiceSchema, serviceConfig } from "../lib/config/index.ts";
import { stepHandler } from "../lib/handler.ts";
import { planRoll, rollSettings } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { PlanRollEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** PlanRoll: resolve the listener and target groups, find blue, fix the capacity floor. */
export const handler = stepHandler("PlanRoll", PlanRollEvent, async (e: z.infer<typeof PlanRollEvent>) => {
  const cfg = e.config ? ServiceSchema.parse(e.config) : serviceConfig(loadConfig(), e.service);
  const { config: _config, ...rest } = e;
  return planRoll({ ...rest, settings: rollSettings(cfg) }, deps);
});
