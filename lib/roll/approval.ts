import { type DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { Clock } from "../clock.ts";
import { unitKey } from "../names.ts";
import { assertHolder, type HolderCheck } from "../lock/holder.ts";

/**
 * The manual approval gate: the state machine waits on a task token (`.waitForTaskToken`); this
 * step records the token where `kiln approve` / `kiln reject` and the console find it (the
 * deployments table, key `approval#<executionArn>`). The token expires with the gate's timeout.
 */
export async function requestApproval(
  input: {
    taskToken: string;
    executionArn: string;
    service: string;
    environment?: string;
    commit: string;
    timeoutSeconds: number;
    table: string;
  },
  deps: { dynamodb: DynamoDBDocumentClient; clock: Clock; lock?: HolderCheck },
): Promise<{ recorded: true }> {
  // A superseded execution redriven at the gate must not ask anyone to approve it (I7).
  await assertHolder(
    { service: input.service, environment: input.environment ?? "", executionName: input.executionArn.split(":").at(-1)! },
    deps.lock,
  );
  const now = deps.clock.now();
  await deps.dynamodb.send(
    new PutCommand({
      TableName: input.table,
      Item: {
        // Per (service, environment), like the deployment records.
        service: unitKey(input.service, input.environment ?? ""),
        serviceName: input.service,
        environment: input.environment,
        startedAt: `approval#${input.executionArn}`,
        taskToken: input.taskToken,
        executionArn: input.executionArn,
        commit: input.commit,
        requestedAt: new Date(now).toISOString(),
        expiresAt: Math.floor(now / 1000) + input.timeoutSeconds,
      },
    }),
  );
  return { recorded: true };
}
