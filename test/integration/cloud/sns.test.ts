import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  CreateTopicCommand,
  DeleteTopicCommand,
  GetSubscriptionAttributesCommand,
  GetTopicAttributesCommand,
  ListSubscriptionsByTopicCommand,
  ListSubscriptionsCommand,
  ListTagsForResourceCommand,
  ListTopicsCommand,
  PublishCommand,
  SNSClient,
  SubscribeCommand,
  UnsubscribeCommand,
} from "@aws-sdk/client-sns";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Cloud } from "../../../local/cloud/cloud.ts";
import { registerLambda } from "../../../local/cloud/services/lambda/index.ts";
import { registerSns, type SnsBackend } from "../../../local/cloud/services/sns/index.ts";
import { signedFetch } from "../../../local/cloud/protocol/sigv4.ts";

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A loopback HTTP receiver answering with the statuses given, then 200. */
async function receiver(statuses: number[] = []): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(statuses.shift() ?? 200);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/page`,
    got,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("simulated SNS", () => {
  let cloud: Cloud;
  let backend: SnsBackend;
  let sns: SNSClient;

  beforeEach(async () => {
    cloud = new Cloud({ seed: 5 });
    backend = registerSns(cloud);
    await cloud.start({ port: false });
    sns = new SNSClient(cloud.clientConfig());
  });
  afterEach(async () => cloud.stop());

  /** Waits (cloud clock) until every delivery of the last message left `pending`. */
  async function settled(deadlineMs = 600_000): Promise<void> {
    const end = cloud.clock.now() + deadlineMs;
    while (
      backend
        .messages()
        .at(-1)
        ?.deliveries.some((d) => d.status === "pending")
    ) {
      if (cloud.clock.now() > end) throw new Error("deliveries still pending");
      await cloud.clock.sleep(1000);
    }
  }

  it("creates topics idempotently by name, lists them with pagination, deletes them", async () => {
    const a = await sns.send(new CreateTopicCommand({ Name: "kiln-pager", Tags: [{ Key: "team", Value: "sre" }] }));
    expect(a.TopicArn).toBe("arn:aws:sns:us-east-1:123456789012:kiln-pager");
    expect((await sns.send(new CreateTopicCommand({ Name: "kiln-pager" }))).TopicArn).toBe(a.TopicArn);
    for (let n = 0; n < 120; n++) await sns.send(new CreateTopicCommand({ Name: `t-${n}` }));
    const first = await sns.send(new ListTopicsCommand({}));
    expect(first.Topics).toHaveLength(100);
    const second = await sns.send(new ListTopicsCommand({ NextToken: first.NextToken }));
    expect(second.Topics).toHaveLength(21);
    expect(second.NextToken).toBeUndefined();
    expect((await sns.send(new ListTagsForResourceCommand({ ResourceArn: a.TopicArn }))).Tags).toEqual([
      { Key: "team", Value: "sre" },
    ]);
    const attrs = (await sns.send(new GetTopicAttributesCommand({ TopicArn: a.TopicArn }))).Attributes!;
    expect(attrs).toMatchObject({ TopicArn: a.TopicArn, Owner: "123456789012", SubscriptionsConfirmed: "0" });
    await sns.send(new DeleteTopicCommand({ TopicArn: a.TopicArn }));
    await sns.send(new DeleteTopicCommand({ TopicArn: a.TopicArn }));
    await expect(sns.send(new GetTopicAttributesCommand({ TopicArn: a.TopicArn }))).rejects.toMatchObject({
      name: "NotFoundException",
    });
  });

  it.each([
    [{ Name: "bad name!" }, "InvalidParameterException"],
    [{ Name: "x".repeat(257) }, "InvalidParameterException"],
  ])("CreateTopic %j → %s", async (input, name) => {
    await expect(sns.send(new CreateTopicCommand(input))).rejects.toMatchObject({ name });
  });

  it("subscribes endpoints and lists subscriptions", async () => {
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "alerts" }));
    const email = await sns.send(new SubscribeCommand({ TopicArn, Protocol: "email", Endpoint: "oncall@example.com" }));
    await sns.send(
      new SubscribeCommand({ TopicArn, Protocol: "https", Endpoint: "https://events.pagerduty.com/integration/x/enqueue" }),
    );
    expect(email.SubscriptionArn).toMatch(new RegExp(`^${TopicArn}:[0-9a-f-]{36}$`));
    const byTopic = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn }));
    expect(byTopic.Subscriptions!.map((s) => [s.Protocol, s.Endpoint])).toEqual([
      ["email", "oncall@example.com"],
      ["https", "https://events.pagerduty.com/integration/x/enqueue"],
    ]);
    expect((await sns.send(new ListSubscriptionsCommand({}))).Subscriptions).toHaveLength(2);
    expect(
      (await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: email.SubscriptionArn }))).Attributes,
    ).toMatchObject({ Protocol: "email", PendingConfirmation: "false" });
    await sns.send(new UnsubscribeCommand({ SubscriptionArn: email.SubscriptionArn }));
    expect((await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn }))).Subscriptions).toHaveLength(1);
    await expect(sns.send(new SubscribeCommand({ TopicArn, Protocol: "carrier-pigeon", Endpoint: "x" }))).rejects.toMatchObject({
      name: "InvalidParameterException",
    });
    await expect(
      sns.send(new SubscribeCommand({ TopicArn: `${TopicArn}-nope`, Protocol: "email", Endpoint: "a@b.c" })),
    ).rejects.toMatchObject({ name: "NotFoundException" });
  });

  it("publishes with subject and attributes, captures messages, and rejects unknown topics with NotFoundException", async () => {
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "pager" }));
    await sns.send(new SubscribeCommand({ TopicArn, Protocol: "email", Endpoint: "oncall@example.com" }));
    const out = await sns.send(
      new PublishCommand({
        TopicArn,
        Subject: "kiln: deploy web failed",
        Message: JSON.stringify({ service: "web", step: "Bake" }),
        MessageAttributes: { severity: { DataType: "String", StringValue: "critical" } },
      }),
    );
    expect(out.MessageId).toMatch(/^[0-9a-f-]{36}$/);
    const [m] = backend.messages(TopicArn);
    expect(m).toMatchObject({
      messageId: out.MessageId,
      subject: "kiln: deploy web failed",
      attributes: { severity: { DataType: "String", StringValue: "critical" } },
    });
    expect(m!.deliveries).toEqual([expect.objectContaining({ protocol: "email", status: "captured" })]);
    expect(m!.at).toBe(cloud.clock.date().toISOString());
    await expect(sns.send(new PublishCommand({ TopicArn: `${TopicArn}x`, Message: "m" }))).rejects.toMatchObject({
      name: "NotFoundException",
    });
  });

  it.each([
    [{ Subject: "line\nbreak" }, "InvalidParameterException"],
    [{ Message: "x".repeat(262_145) }, "InvalidParameterException"],
    [{ MessageStructure: "json", Message: '{"email":"x"}' }, "InvalidParameterException"],
    [{ MessageAttributes: { a: { DataType: "Weird", StringValue: "v" } } }, "InvalidParameterValueException"],
  ])("rejects Publish %j with %s", async (input, name) => {
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "v" }));
    await expect(sns.send(new PublishCommand({ TopicArn, Message: "m", ...input }))).rejects.toMatchObject({ name });
  });

  it("delivers to a loopback HTTP endpoint for real, retrying on the cloud clock", async () => {
    const r = await receiver([500, 503]);
    try {
      const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "hook" }));
      const sub = await sns.send(new SubscribeCommand({ TopicArn, Protocol: "http", Endpoint: r.url }));
      const t0 = cloud.clock.now();
      const { MessageId } = await sns.send(
        new PublishCommand({
          TopicArn,
          Subject: "s",
          Message: "hello",
          MessageAttributes: { k: { DataType: "String", StringValue: "v" } },
        }),
      );
      await settled();
      expect(r.got).toHaveLength(3);
      expect(cloud.clock.now() - t0).toBeGreaterThanOrEqual(40_000);
      const last = r.got[2]!;
      expect(last.headers["x-amz-sns-message-type"]).toBe("Notification");
      expect(last.headers["x-amz-sns-subscription-arn"]).toBe(sub.SubscriptionArn);
      expect(JSON.parse(last.body)).toMatchObject({
        Type: "Notification",
        MessageId,
        TopicArn,
        Subject: "s",
        Message: "hello",
        MessageAttributes: { k: { Type: "String", Value: "v" } },
      });
      expect(backend.messages()[0]!.deliveries[0]).toMatchObject({ status: "delivered", attempts: 3 });
    } finally {
      await r.close();
    }
  });

  it("gives up after the retries and honours raw delivery and filter policies", async () => {
    const failing = await receiver(Array.from({ length: 20 }, () => 500));
    const raw = await receiver();
    try {
      const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "hook2" }));
      await sns.send(new SubscribeCommand({ TopicArn, Protocol: "http", Endpoint: failing.url }));
      await sns.send(
        new SubscribeCommand({
          TopicArn,
          Protocol: "http",
          Endpoint: raw.url,
          Attributes: { RawMessageDelivery: "true", FilterPolicy: JSON.stringify({ severity: ["critical"] }) },
        }),
      );
      await sns.send(
        new PublishCommand({
          TopicArn,
          Message: "minor",
          MessageAttributes: { severity: { DataType: "String", StringValue: "low" } },
        }),
      );
      await settled();
      await sns.send(
        new PublishCommand({
          TopicArn,
          Message: "major",
          MessageAttributes: { severity: { DataType: "String", StringValue: "critical" } },
        }),
      );
      await settled();
      expect(backend.messages().map((m) => m.deliveries.map((d) => d.status))).toEqual([
        ["failed", "filtered"],
        ["failed", "delivered"],
      ]);
      expect(failing.got.length).toBe(8); // one attempt and three retries per message
      expect(raw.got.map((g) => g.body)).toEqual(["major"]);
    } finally {
      await failing.close();
      await raw.close();
    }
  });

  it("invokes a subscribed Lambda function with an SNS event", async () => {
    const lambda = registerLambda(cloud);
    const seen: unknown[] = [];
    const arn = lambda.registerFunction({ name: "pager", handler: async (event) => void seen.push(event) });
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "to-lambda" }));
    const sub = await sns.send(new SubscribeCommand({ TopicArn, Protocol: "lambda", Endpoint: arn }));
    await sns.send(new PublishCommand({ TopicArn, Subject: "s", Message: "page me" }));
    await settled();
    await cloud.clock.sleep(1000);
    expect(seen).toEqual([
      {
        Records: [
          expect.objectContaining({
            EventSource: "aws:sns",
            EventSubscriptionArn: sub.SubscriptionArn,
            Sns: expect.objectContaining({ Message: "page me", Subject: "s", TopicArn }),
          }),
        ],
      },
    ]);
  });

  it("serves messages on the admin endpoint over HTTP", async () => {
    await cloud.stop();
    cloud = new Cloud();
    backend = registerSns(cloud);
    await cloud.start({ port: 0 });
    const client = new SNSClient(cloud.clientConfig({ http: true }));
    const { TopicArn } = await client.send(new CreateTopicCommand({ Name: "over-http" }));
    await client.send(new PublishCommand({ TopicArn, Message: "m1" }));
    const res = await signedFetch(
      `${cloud.endpoint}/_kiln/sns/messages?topicArn=${encodeURIComponent(TopicArn!)}`,
      cloud.credentials,
    );
    expect(((await res.json()) as { message: string }[]).map((m) => m.message)).toEqual(["m1"]);
    await signedFetch(`${cloud.endpoint}/_kiln/sns/messages`, cloud.credentials, { method: "DELETE" });
    expect(backend.messages()).toEqual([]);
  });
});
