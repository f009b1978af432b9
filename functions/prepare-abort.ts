import { DescribeExecutionCommand } from "@aws-sdk/client-sfn";
import { defaultEnvironment, loadConfig, serviceConfig } from "../lib/config/index.ts";
import { stepHandler } from "../lib/handler.ts";
import { prepareAbort } from "../lib/roll/abort.ts";
import { opsDeps } from "../lib/roll/deps.ts";
import { rollSettings } from "../lib/roll/index.ts";
import { PrepareAbortEvent } from "../lib/roll/schemas.ts";

const deps = opsDeps();

/** The environment of the execution being aborted, from its input (never from its name). */
async function environmentOf(executionArn: string | undefined): Promise<string | undefined> {
  if (!executionArn) return undefined;
  try {
    const d = await deps.sfn.send(new DescribeExecutionCommand({ executionArn }));
    const env = (JSON.parse(d.input ?? "{}") as { environment?: unknown }).environment;
    return typeof env === "string" ? env : undefined;
  } catch {
    return undefined;
  }
}

/** PrepareAbort: find the deployment, take the lock from it, stop it, find blue and green (lib/roll/abort.ts). */
export const handler = stepHandler("PrepareAbort", PrepareAbortEvent, async (e) => {
  const config = loadConfig();
  const environment =
    e.input.environment ??
    (await environmentOf(e.input.executionArn)) ??
    defaultEnvironment(serviceConfig(config, e.input.service), e.input.service);
  const settings = rollSettings(serviceConfig(config, e.input.service, environment));
  return prepareAbort({ ...e.input, environment, execution: e.execution, settings }, deps);
});
