import { requireEnv } from "../lib/env.ts";
import { stepHandler } from "../lib/handler.ts";
import { requestApproval } from "../lib/roll/approval.ts";
import { rollDeps } from "../lib/roll/deps.ts";
import { ApprovalEvent } from "../lib/roll/schemas.ts";

const deps = rollDeps();

/** RequestApproval: record the task token so an operator can approve or reject. */
export const handler = stepHandler("RequestApproval", ApprovalEvent, (e) =>
  requestApproval(
    {
      taskToken: e.taskToken,
      executionArn: e.executionArn,
      service: e.plan.service,
      ...(typeof e.plan.environment === "string" ? { environment: e.plan.environment } : {}),
      commit: e.plan.commit,
      timeoutSeconds: e.timeoutSeconds,
      table: requireEnv("KILN_DEPLOYMENTS_TABLE"),
    },
    { dynamodb: deps.dynamodb!, clock: deps.clock, lock: deps.lock },
  ),
);
