import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  CreateTableCommand,
  DeleteItemCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { Cloud } from "../../../local/cloud/cloud.ts";
import { type DynamoDbBackend, registerDynamoDb } from "../../../local/cloud/services/dynamodb/index.ts";
import { signedFetch } from "../../../local/cloud/protocol/sigv4.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const backendModule = path.resolve(here, "../../../local/cloud/services/dynamodb/index.ts");

describe("simulated DynamoDB (dynalite behind the cloud endpoint)", () => {
  let cloud: Cloud;
  let backend: DynamoDbBackend;

  afterEach(async () => cloud?.stop());

  async function boot(overHttp: boolean): Promise<DynamoDBClient> {
    cloud = new Cloud();
    backend = registerDynamoDb(cloud);
    await cloud.start({ port: overHttp ? 0 : false });
    return new DynamoDBClient({ ...cloud.clientConfig({ http: overHttp }), maxAttempts: 1 });
  }

  it.each([false, true])("serves tables, items and conditional writes (http=%s)", async (overHttp) => {
    const ddb = await boot(overHttp);
    await ddb.send(
      new CreateTableCommand({
        TableName: "kiln-locks",
        AttributeDefinitions: [
          { AttributeName: "service", AttributeType: "S" },
          { AttributeName: "at", AttributeType: "N" },
        ],
        KeySchema: [
          { AttributeName: "service", KeyType: "HASH" },
          { AttributeName: "at", KeyType: "RANGE" },
        ],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    const desc = await ddb.send(new DescribeTableCommand({ TableName: "kiln-locks" }));
    expect(desc.Table!.TableArn).toBe("arn:aws:dynamodb:us-east-1:123456789012:table/kiln-locks");
    expect((await ddb.send(new ListTablesCommand({}))).TableNames).toEqual(["kiln-locks"]);

    const key = { service: { S: "web" }, at: { N: "1" } };
    await ddb.send(
      new PutItemCommand({
        TableName: "kiln-locks",
        Item: { ...key, owner: { S: "exec-1" } },
        ConditionExpression: "attribute_not_exists(service)",
      }),
    );
    await expect(
      ddb.send(
        new PutItemCommand({
          TableName: "kiln-locks",
          Item: { ...key, owner: { S: "exec-2" } },
          ConditionExpression: "attribute_not_exists(service)",
        }),
      ),
    ).rejects.toMatchObject({ name: "ConditionalCheckFailedException" });
    await expect(
      ddb.send(
        new UpdateItemCommand({
          TableName: "kiln-locks",
          Key: key,
          UpdateExpression: "SET #o = :new",
          ConditionExpression: "#o = :expected",
          ExpressionAttributeNames: { "#o": "owner" },
          ExpressionAttributeValues: { ":new": { S: "exec-3" }, ":expected": { S: "exec-2" } },
        }),
      ),
    ).rejects.toMatchObject({ name: "ConditionalCheckFailedException" });
    const updated = await ddb.send(
      new UpdateItemCommand({
        TableName: "kiln-locks",
        Key: key,
        UpdateExpression: "SET #o = :new",
        ConditionExpression: "#o = :expected",
        ExpressionAttributeNames: { "#o": "owner" },
        ExpressionAttributeValues: { ":new": { S: "exec-3" }, ":expected": { S: "exec-1" } },
        ReturnValues: "ALL_NEW",
      }),
    );
    expect(updated.Attributes!.owner).toEqual({ S: "exec-3" });
    expect((await ddb.send(new GetItemCommand({ TableName: "kiln-locks", Key: key, ConsistentRead: true }))).Item!.owner).toEqual(
      { S: "exec-3" },
    );

    await ddb.send(new PutItemCommand({ TableName: "kiln-locks", Item: { service: { S: "web" }, at: { N: "2" } } }));
    await ddb.send(new PutItemCommand({ TableName: "kiln-locks", Item: { service: { S: "api" }, at: { N: "1" } } }));
    const q = await ddb.send(
      new QueryCommand({
        TableName: "kiln-locks",
        KeyConditionExpression: "service = :s",
        ExpressionAttributeValues: { ":s": { S: "web" } },
        ScanIndexForward: false,
      }),
    );
    expect(q.Items!.map((i) => i.at!.N)).toEqual(["2", "1"]);
    const page = await ddb.send(new ScanCommand({ TableName: "kiln-locks", Limit: 2 }));
    expect(page.Items).toHaveLength(2);
    expect(page.LastEvaluatedKey).toBeDefined();

    await expect(
      ddb.send(
        new DeleteItemCommand({
          TableName: "kiln-locks",
          Key: key,
          ConditionExpression: "#o = :x",
          ExpressionAttributeNames: { "#o": "owner" },
          ExpressionAttributeValues: { ":x": { S: "nobody" } },
        }),
      ),
    ).rejects.toMatchObject({ name: "ConditionalCheckFailedException" });
    await ddb.send(new DeleteItemCommand({ TableName: "kiln-locks", Key: key }));
    await expect(ddb.send(new GetItemCommand({ TableName: "missing", Key: key }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
    await ddb.send(new DeleteTableCommand({ TableName: "kiln-locks" }));
  });

  it("works with the document client the lock store uses", async () => {
    const ddb = DynamoDBDocumentClient.from(await boot(false));
    await ddb.send(
      new CreateTableCommand({
        TableName: "locks",
        AttributeDefinitions: [{ AttributeName: "service", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "service", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    const take = (owner: string, now: number) =>
      ddb.send(
        new PutCommand({
          TableName: "locks",
          Item: { service: "web", owner, leaseUntil: now + 60_000, queue: ["abc"] },
          ConditionExpression: "attribute_not_exists(service) OR leaseUntil < :now",
          ExpressionAttributeValues: { ":now": now },
        }),
      );
    await take("exec-1", 1000);
    await expect(take("exec-2", 2000)).rejects.toMatchObject({ name: "ConditionalCheckFailedException" });
    await take("exec-2", 70_000);
    expect((await ddb.send(new GetCommand({ TableName: "locks", Key: { service: "web" }, ConsistentRead: true }))).Item).toEqual({
      service: "web",
      owner: "exec-2",
      leaseUntil: 130_000,
      queue: ["abc"],
    });
  });

  it("applies api faults before forwarding and shows the dynalite URL in the world", async () => {
    const ddb = await boot(false);
    expect(cloud.world().dynamodb).toEqual({ url: backend.url, engine: "dynalite" });
    expect(backend.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    cloud.faults.add({ kind: "api", service: "dynamodb", action: "ListTables", code: "ThrottlingException", times: 1 });
    await expect(ddb.send(new ListTablesCommand({}))).rejects.toMatchObject({ name: "ThrottlingException" });
    expect((await ddb.send(new ListTablesCommand({}))).TableNames).toEqual([]);
  });

  it("passes every non-DynamoDB request on to the other services", async () => {
    await boot(true);
    const res = await signedFetch(`${cloud.endpoint}/_kiln/world`, cloud.credentials);
    expect(res.status).toBe(200);
  });

  it("runs in memory when the native LevelDB binding cannot load", async () => {
    const script = `
      import Module from "node:module";
      const load = Module._load;
      Module._load = function (request, ...rest) {
        if (request === "classic-level") throw new Error("simulated: no native binding");
        return load.call(this, request, ...rest);
      };
      const { loadDynalite } = await import(${JSON.stringify(backendModule)});
      const server = loadDynalite()({ createTableMs: 0 });
      await new Promise((r) => server.listen(0, "127.0.0.1", r));
      const res = await fetch("http://127.0.0.1:" + server.address().port + "/", {
        method: "POST",
        headers: {
          "x-amz-target": "DynamoDB_20120810.ListTables",
          "content-type": "application/x-amz-json-1.0",
          authorization: "AWS4-HMAC-SHA256 Credential=a/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00",
          "x-amz-date": "20260101T000000Z",
        },
        body: "{}",
      });
      console.log(res.status, await res.text());
      server.close();
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      timeout: 30_000,
    });
    expect(stdout.trim()).toBe('200 {"TableNames":[]}');
  });
});
