import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { ThrottledError } from "../errors.ts";
import type { LockItem } from "./types.ts";

/** The DocumentClient surface the lock uses (a `DynamoDBDocumentClient`, or a fake in tests). */
export interface DocumentSender {
  send(command: any): Promise<any>;
}

/**
 * Each failed conditional write means another writer changed the item, so retrying at once always
 * makes progress; the bound only guards against a pathological loop (hundreds of writers racing on
 * one service). Past it the caller sees `kiln.Throttled` and retries later.
 */
const MAX_ATTEMPTS = 64;

/**
 * Items keyed by `service` in one DynamoDB table, every write conditional on `version`
 * (optimistic concurrency), reads strongly consistent. The lock and the pager's page records use it.
 */
export class VersionedStore<T extends { service: string; version: number }> {
  constructor(
    private readonly ddb: DocumentSender,
    readonly table: string,
  ) {}

  async get(service: string): Promise<T | undefined> {
    const r = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { service }, ConsistentRead: true }));
    return r.Item as T | undefined;
  }

  /** Writes `next` only if the stored version is still `expected` (undefined: the item must not exist). */
  async put(next: T, expected: number | undefined): Promise<boolean> {
    const item = { ...next, version: (expected ?? 0) + 1 };
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: item,
          ...(expected === undefined
            ? { ConditionExpression: "attribute_not_exists(#s)", ExpressionAttributeNames: { "#s": "service" } }
            : {
                ConditionExpression: "#v = :v",
                ExpressionAttributeNames: { "#v": "version" },
                ExpressionAttributeValues: { ":v": expected },
              }),
        }),
      );
      return true;
    } catch (err) {
      if ((err as Error).name === "ConditionalCheckFailedException") return false;
      throw err;
    }
  }

  /**
   * Read–decide–write until the conditional write lands. `decide` returns the item to write (or
   * none) and the result; it may be called several times and must not have side effects other
   * than reads.
   */
  async mutate<R>(
    service: string,
    decide: (item: T | undefined) => Promise<{ write?: T; result: R }> | { write?: T; result: R },
  ): Promise<R> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const item = await this.get(service);
      const { write, result } = await decide(item);
      if (!write) return result;
      if (await this.put(write, item?.version)) return result;
    }
    throw new ThrottledError(`${this.table}/${service}: ${MAX_ATTEMPTS} conflicting writes in a row; retry later`);
  }
}

/** The lock table: one `LockItem` per service. */
export class LockStore extends VersionedStore<LockItem> {}
