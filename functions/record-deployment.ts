import { requireEnv } from "../lib/env.ts";
import { stepHandler } from "../lib/handler.ts";
import { recordDeployment } from "../lib/roll/index.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { RecordEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** RecordDeployment: the deployment's record in the deployments table. */
export const handler = stepHandler("RecordDeployment", RecordEvent, (e) =>
  recordDeployment(
    { plan: e.plan as never, startedAt: e.startedAt, result: e.result, table: requireEnv("KILN_DEPLOYMENTS_TABLE") },
    deps,
  ),
);
