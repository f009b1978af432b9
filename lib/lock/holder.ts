/**
 * The lock check of the steps that change traffic, the fleet or the images. Its own module, so a
 * step reaches only the one read it makes (the role check follows imports: test/deploy/sdk-calls.ts).
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { AwsClients } from "../aws.ts";
import { requireEnv } from "../env.ts";
import { SupersededError } from "../errors.ts";
import { unitKey } from "../names.ts";
import type { DocumentSender } from "./store.ts";
import type { LockItem } from "./types.ts";

/** The lock table and a client to read it. */
export interface HolderCheck {
  ddb: DocumentSender;
  table: string;
}

/**
 * Fails the step with `kiln.Superseded` unless `executionName` holds its environment's lock. Every
 * step that changes traffic, the fleet or the service's images asks first: only the holder may
 * (I6), and the queue hands the lock only forward, to newer requests, so a superseded or aborted
 * execution redriven later never gets it back (I7). Without a lock table (unit tests of a step's
 * own logic) there is nothing to ask.
 */
export async function assertHolder(
  unit: { service: string; environment: string; executionName: string },
  lock: HolderCheck | undefined,
): Promise<void> {
  if (!lock) return;
  const key = unitKey(unit.service, unit.environment);
  const r = await lock.ddb.send(new GetCommand({ TableName: lock.table, Key: { service: key }, ConsistentRead: true }));
  const item = r.Item as LockItem | undefined;
  const holder = item?.holder;
  if (holder?.endsWith(`:${unit.executionName}`)) return;
  const newest = item?.requests?.at(-1);
  throw new SupersededError(
    `${unit.executionName} no longer holds the lock of ${key} (${holder ? `held by ${holder.split(":").pop()}` : "free"}${
      newest && newest.name !== unit.executionName ? `; newest request #${newest.seq}: ${newest.trigger} of ${newest.commit}` : ""
    }): a newer deployment or an abort superseded it, and it must not change traffic, the fleet or the images. Start a new deployment instead of redriving this one.`,
  );
}

/**
 * The lock table from `KILN_LOCK_TABLE` (read on each use) with the runtime's client. A deployed
 * step without it fails (`kiln.ConfigInvalid`, via the missing-environment error) rather than
 * skipping the check: the lock check must not switch itself off. Unit tests of a step's own logic
 * pass their deps without a lock instead of going through here.
 */
export function holderCheckFromEnv(c: Pick<AwsClients, "dynamodb">): HolderCheck {
  return { ddb: c.dynamodb, table: requireEnv("KILN_LOCK_TABLE") };
}
