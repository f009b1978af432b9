/**
 * ReconcileQueue (every minute): the queue's safety net. A claim whose StartExecution was lost
 * (the webhook timed out, a Lambda crashed) is started; a holder that ended without releasing hands
 * the lock to the newest queued request. Bounds a stranded request's wait to about a minute.
 */
import { z } from "zod";
import { awsClients } from "../lib/aws.ts";
import { stepHandler } from "../lib/handler.ts";
import { reconcileQueue, startDepsFromEnv } from "../lib/lock/index.ts";
import { clock } from "../lib/runtime.ts";

const clients = awsClients();

export const handler = stepHandler("ReconcileQueue", z.looseObject({}), async () => {
  const results = await reconcileQueue(startDepsFromEnv(clients, clock()));
  return { checked: results.length, acted: results.filter((r) => r.action !== "nothing") };
});
