/**
 * Simulated Amazon SNS (awsQuery, Version 2010-03-31): topics, subscriptions and Publish.
 *
 * Actions: CreateTopic, DeleteTopic, ListTopics, Get/SetTopicAttributes, Subscribe, Unsubscribe,
 * ListSubscriptions, ListSubscriptionsByTopic, GetSubscriptionAttributes, Publish, TagResource,
 * ListTagsForResource. Not simulated: PublishBatch, FIFO ordering/deduplication, SMS and mobile
 * push, data protection policies, message signatures that verify.
 *
 * Every published message is kept for inspection (`messages()`, `GET /_kiln/sns/messages`), with
 * what happened to each subscription:
 * - `http`/`https` endpoints on loopback (127.0.0.1, localhost, ::1) are POSTed the real SNS
 *   notification JSON, with retries on the cloud clock (`sns.httpRetries` 3, `sns.httpRetryDelayMs`
 *   20000) — a pager webhook running locally really receives the page;
 * - `lambda` endpoints are invoked asynchronously (an SNS event record) when the simulated Lambda
 *   knows the function;
 * - everything else (email, sms, sqs, non-loopback URLs) is captured, not sent.
 * Subscriptions are confirmed at once: nobody is there to click the confirmation link.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { Backend, Cloud } from "../../cloud.ts";
import type { SnsApi } from "../../contracts.ts";
import { xmlList } from "../../protocol/codec.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { RequestContext, ServiceDefinition } from "../../protocol/types.ts";

export const SNS_VERSION = "2010-03-31";
export const SNS_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/";

const PROTOCOLS = new Set(["http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose"]);
const MAX_MESSAGE_BYTES = 262_144;
const PAGE = 100;

interface Topic {
  arn: string;
  name: string;
  attributes: Map<string, string>;
  tags: Map<string, string>;
}

interface Subscription {
  arn: string;
  topicArn: string;
  protocol: string;
  endpoint: string;
  attributes: Map<string, string>;
}

/** A message attribute as Publish receives it. */
export interface MessageAttribute {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

/** What happened to one message for one subscription. */
export interface Delivery {
  subscriptionArn: string;
  protocol: string;
  endpoint: string;
  /** `delivered` (2xx / Lambda accepted), `failed` (retries exhausted), `captured` (not sent), `pending`. */
  status: "pending" | "delivered" | "failed" | "captured" | "filtered";
  attempts: number;
  lastError?: string;
}

/** A published message as `messages()` and the admin endpoint show it. */
export interface PublishedMessage {
  messageId: string;
  topicArn: string;
  subject?: string;
  message: string;
  /** ISO-8601 publish time on the cloud clock. */
  at: string;
  attributes: Record<string, MessageAttribute>;
  deliveries: Delivery[];
}

/** The SNS backend registered as "sns". */
export class SnsBackend implements SnsApi {
  readonly definition: ServiceDefinition;
  private readonly topics = new Map<string, Topic>();
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly published: PublishedMessage[] = [];
  private readonly timers = new Set<ReturnType<Cloud["clock"]["setTimeout"]>>();

  constructor(private readonly cloud: Cloud) {
    this.definition = {
      signingName: "sns",
      protocol: "query",
      version: SNS_VERSION,
      xmlns: SNS_XMLNS,
      actions: {
        CreateTopic: (i, c) => this.createTopic(i, c),
        DeleteTopic: (i, c) => this.deleteTopic(i, c),
        ListTopics: (i, c) => this.listTopics(i, c),
        GetTopicAttributes: (i, c) => this.getTopicAttributes(i, c),
        SetTopicAttributes: (i, c) => this.setTopicAttributes(i, c),
        Subscribe: (i, c) => this.subscribe(i, c),
        Unsubscribe: (i, c) => this.unsubscribe(i, c),
        ListSubscriptions: (i, c) => this.listSubscriptions(i, c, undefined),
        ListSubscriptionsByTopic: (i, c) => this.listSubscriptions(i, c, new Params(i, c).str("TopicArn", { required: true })),
        GetSubscriptionAttributes: (i, c) => this.getSubscriptionAttributes(i, c),
        Publish: (i, c) => this.publish(i, c),
        TagResource: (i, c) => this.tagResource(i, c),
        ListTagsForResource: (i, c) => this.listTagsForResource(i, c),
      },
    };
  }

  /** Messages published so far, oldest first. */
  messages(topicArn?: string): PublishedMessage[] {
    return this.published.filter((m) => !topicArn || m.topicArn === topicArn);
  }

  /** Forgets captured messages (between scenario steps). */
  clearMessages(): void {
    this.published.length = 0;
  }

  stop(): void {
    for (const t of this.timers) this.cloud.clock.clearTimeout(t);
    this.timers.clear();
  }

  snapshot(): unknown {
    return {
      topics: [...this.topics.values()].map((t) => ({
        arn: t.arn,
        subscriptions: [...this.subscriptions.values()]
          .filter((s) => s.topicArn === t.arn)
          .map((s) => ({ protocol: s.protocol, endpoint: s.endpoint })),
      })),
      messages: this.published.slice(-50).map((m) => ({ ...m, message: m.message.slice(0, 2000) })),
    };
  }

  // ---------------------------------------------------------------- topics

  private createTopic(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const name = p.str("Name", { required: true });
    const attributes = readMap(p.raw.Attributes);
    const fifo = attributes.get("FifoTopic") === "true";
    if (!(fifo ? /^[A-Za-z0-9_-]{1,251}\.fifo$/ : /^[A-Za-z0-9_-]{1,256}$/).test(name)) throw invalid("Topic Name");
    const arn = `arn:aws:sns:${ctx.region}:${ctx.accountId}:${name}`;
    const existing = this.topics.get(arn);
    if (existing) {
      // CreateTopic is idempotent by name, unless the attributes asked for differ.
      for (const [k, v] of attributes) {
        if ((existing.attributes.get(k) ?? "") !== v)
          throw invalid("Attributes Reason: Topic already exists with different attributes");
      }
      return { TopicArn: arn };
    }
    const tags = new Map(p.tags("Tags").map((t) => [t.Key, t.Value]));
    this.topics.set(arn, { arn, name, attributes, tags });
    return { TopicArn: arn };
  }

  private deleteTopic(input: unknown, ctx: RequestContext): undefined {
    const arn = new Params(input, ctx).str("TopicArn", { required: true });
    // Deleting a topic that does not exist is not an error.
    this.topics.delete(arn);
    for (const [k, s] of this.subscriptions) if (s.topicArn === arn) this.subscriptions.delete(k);
    return undefined;
  }

  private listTopics(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const all = [...this.topics.values()];
    const { page, next } = pageOf(all, p.str("NextToken"));
    return { Topics: page.map((t) => ({ TopicArn: t.arn })), NextToken: next };
  }

  private getTopicAttributes(input: unknown, ctx: RequestContext): unknown {
    const t = this.topic(new Params(input, ctx).str("TopicArn", { required: true }));
    const subs = [...this.subscriptions.values()].filter((s) => s.topicArn === t.arn).length;
    const attrs = new Map<string, string>([
      ["TopicArn", t.arn],
      ["Owner", ctx.accountId],
      ["DisplayName", ""],
      ["SubscriptionsConfirmed", String(subs)],
      ["SubscriptionsPending", "0"],
      ["SubscriptionsDeleted", "0"],
      [
        "EffectiveDeliveryPolicy",
        JSON.stringify({ http: { defaultHealthyRetryPolicy: { minDelayTarget: 20, maxDelayTarget: 20, numRetries: 3 } } }),
      ],
      ...t.attributes,
    ]);
    return { Attributes: mapOut(attrs) };
  }

  private setTopicAttributes(input: unknown, ctx: RequestContext): undefined {
    const p = new Params(input, ctx);
    const t = this.topic(p.str("TopicArn", { required: true }));
    const name = p.str("AttributeName", { required: true });
    t.attributes.set(name, p.str("AttributeValue") ?? "");
    return undefined;
  }

  // ---------------------------------------------------------------- subscriptions

  private subscribe(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const topicArn = p.str("TopicArn", { required: true });
    const protocol = p.str("Protocol", { required: true });
    const endpoint = p.str("Endpoint") ?? "";
    this.topic(topicArn);
    if (!PROTOCOLS.has(protocol)) throw invalid(`Invalid protocol type: ${protocol}`);
    if ((protocol === "http" || protocol === "https") && !endpoint.startsWith(`${protocol}://`))
      throw invalid(`Invalid parameter: Endpoint must match the specified protocol`);
    if (protocol === "email" && !/^[^@\s]+@[^@\s]+$/.test(endpoint)) throw invalid("Invalid parameter: Email address");
    const attributes = readMap(p.raw.Attributes);
    const existing = [...this.subscriptions.values()].find(
      (s) => s.topicArn === topicArn && s.protocol === protocol && s.endpoint === endpoint,
    );
    if (existing) return { SubscriptionArn: existing.arn };
    const arn = `${topicArn}:${uuid(this.cloud)}`;
    this.subscriptions.set(arn, { arn, topicArn, protocol, endpoint, attributes });
    return { SubscriptionArn: arn };
  }

  private unsubscribe(input: unknown, ctx: RequestContext): undefined {
    const arn = new Params(input, ctx).str("SubscriptionArn", { required: true });
    if (!this.subscriptions.delete(arn)) throw new AwsError("NotFound", "Subscription does not exist", 404);
    return undefined;
  }

  private listSubscriptions(input: unknown, ctx: RequestContext, topicArn: string | undefined): unknown {
    const p = new Params(input, ctx);
    if (topicArn) this.topic(topicArn);
    const all = [...this.subscriptions.values()].filter((s) => !topicArn || s.topicArn === topicArn);
    const { page, next } = pageOf(all, p.str("NextToken"));
    return {
      Subscriptions: page.map((s) => ({
        SubscriptionArn: s.arn,
        Owner: ctx.accountId,
        Protocol: s.protocol,
        Endpoint: s.endpoint,
        TopicArn: s.topicArn,
      })),
      NextToken: next,
    };
  }

  private getSubscriptionAttributes(input: unknown, ctx: RequestContext): unknown {
    const arn = new Params(input, ctx).str("SubscriptionArn", { required: true });
    const s = this.subscriptions.get(arn);
    if (!s) throw new AwsError("NotFound", "Subscription does not exist", 404);
    const attrs = new Map<string, string>([
      ["SubscriptionArn", s.arn],
      ["TopicArn", s.topicArn],
      ["Protocol", s.protocol],
      ["Endpoint", s.endpoint],
      ["Owner", ctx.accountId],
      ["ConfirmationWasAuthenticated", "true"],
      ["PendingConfirmation", "false"],
      ["RawMessageDelivery", "false"],
      ...s.attributes,
    ]);
    return { Attributes: mapOut(attrs) };
  }

  // ---------------------------------------------------------------- publish

  private publish(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const topicArn = p.str("TopicArn") ?? p.str("TargetArn");
    const message = p.str("Message", { required: true });
    if (!topicArn) {
      if (p.has("PhoneNumber")) throw invalid("Invalid parameter: PhoneNumber (SMS is not simulated)");
      throw invalid("Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter");
    }
    const topic = this.topic(topicArn);
    if (Buffer.byteLength(message, "utf8") > MAX_MESSAGE_BYTES) throw invalid("Invalid parameter: Message too long");
    const subject = p.str("Subject");
    if (subject !== undefined && (subject.length === 0 || subject.length > 100 || !/^[\x20-\x7e]+$/.test(subject)))
      throw invalid("Invalid parameter: Subject");
    if (p.str("MessageStructure") === "json") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(message);
      } catch {
        throw invalid("Invalid parameter: Message Structure - JSON message body failed to parse");
      }
      if (!parsed || typeof parsed !== "object" || typeof (parsed as Record<string, unknown>).default !== "string") {
        throw invalid("Invalid parameter: Message Structure - No default entry in JSON message body");
      }
    }
    const attributes = readMessageAttributes(p.raw.MessageAttributes);
    const messageId = uuid(this.cloud);
    const record: PublishedMessage = {
      messageId,
      topicArn: topic.arn,
      subject,
      message,
      at: this.cloud.clock.date().toISOString(),
      attributes,
      deliveries: [],
    };
    this.published.push(record);
    for (const s of this.subscriptions.values()) {
      if (s.topicArn !== topic.arn) continue;
      const d: Delivery = { subscriptionArn: s.arn, protocol: s.protocol, endpoint: s.endpoint, status: "pending", attempts: 0 };
      record.deliveries.push(d);
      if (!passesFilter(s.attributes.get("FilterPolicy"), attributes)) {
        d.status = "filtered";
        continue;
      }
      this.deliver(record, s, d);
    }
    return { MessageId: messageId };
  }

  private deliver(m: PublishedMessage, s: Subscription, d: Delivery): void {
    const body =
      s.protocol === "lambda"
        ? undefined
        : s.attributes.get("RawMessageDelivery") === "true"
          ? m.message
          : JSON.stringify(this.notification(m, s));
    if ((s.protocol === "http" || s.protocol === "https") && isLoopback(s.endpoint) && body !== undefined) {
      const retries = this.cloud.setting("sns.httpRetries", 3);
      const attempt = () => {
        d.attempts++;
        void this.cloud.clock.hold(post(s.endpoint, body, m, s)).then(
          () => {
            d.status = "delivered";
          },
          (err: Error) => {
            d.lastError = err.message;
            if (d.attempts > retries) {
              d.status = "failed";
              return;
            }
            const t = this.cloud.clock.setTimeout(
              () => {
                this.timers.delete(t);
                attempt();
              },
              this.cloud.setting("sns.httpRetryDelayMs", 20_000),
            );
            this.timers.add(t);
          },
        );
      };
      attempt();
      return;
    }
    const lambda = this.cloud.maybeBackend<
      Backend & { invoke?(name: string, payload: unknown, opts: { type: "Event" }): Promise<unknown> }
    >("lambda");
    if (s.protocol === "lambda" && lambda?.invoke) {
      d.attempts++;
      const event = {
        Records: [
          { EventSource: "aws:sns", EventVersion: "1.0", EventSubscriptionArn: s.arn, Sns: this.notification(m, s, true) },
        ],
      };
      void lambda.invoke(s.endpoint, event, { type: "Event" }).then(
        () => {
          d.status = "delivered";
        },
        (err: Error) => {
          d.status = "failed";
          d.lastError = err.message;
        },
      );
      return;
    }
    d.status = "captured";
  }

  /** The JSON an HTTP(S) subscriber receives (and, with Lambda's key spelling, a Lambda event). */
  private notification(m: PublishedMessage, s: Subscription, lambda = false): Record<string, unknown> {
    const base = this.cloud.endpoint || "http://127.0.0.1:4566";
    const out: Record<string, unknown> = {
      Type: "Notification",
      MessageId: m.messageId,
      TopicArn: m.topicArn,
      Subject: m.subject ?? null,
      Message: m.message,
      Timestamp: m.at,
      SignatureVersion: "1",
      // Not a real signature: there is no SNS signing certificate in the simulated cloud.
      Signature: createHash("sha256").update(`${m.messageId}${m.message}`).digest("base64"),
      [lambda ? "SigningCertUrl" : "SigningCertURL"]: `${base}/_kiln/sns/certificate.pem`,
      [lambda ? "UnsubscribeUrl" : "UnsubscribeURL"]: `${base}/?Action=Unsubscribe&SubscriptionArn=${encodeURIComponent(s.arn)}`,
    };
    if (Object.keys(m.attributes).length > 0 || lambda) {
      out.MessageAttributes = Object.fromEntries(
        Object.entries(m.attributes).map(([k, a]) => [k, { Type: a.DataType, Value: a.StringValue ?? a.BinaryValue ?? "" }]),
      );
    }
    return out;
  }

  // ---------------------------------------------------------------- tags

  private tagResource(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const t = this.topicForTags(p.str("ResourceArn", { required: true }));
    for (const tag of p.tags("Tags")) t.tags.set(tag.Key, tag.Value);
    return {};
  }

  private listTagsForResource(input: unknown, ctx: RequestContext): unknown {
    const t = this.topicForTags(new Params(input, ctx).str("ResourceArn", { required: true }));
    return { Tags: [...t.tags].map(([Key, Value]) => ({ Key, Value })) };
  }

  private topicForTags(arn: string): Topic {
    const t = this.topics.get(arn);
    if (!t) throw new AwsError("ResourceNotFound", "Resource does not exist", 404);
    return t;
  }

  private topic(arn: string): Topic {
    const t = this.topics.get(arn);
    // The SDK names this NotFoundException (wire code NotFound, HTTP 404).
    if (!t) throw new AwsError("NotFound", "Topic does not exist", 404);
    return t;
  }
}

/** Registers the simulated SNS as "sns" and its admin endpoint `GET /_kiln/sns/messages[?topicArn=]` (DELETE clears). */
export function registerSns(cloud: Cloud): SnsBackend {
  const sns = new SnsBackend(cloud);
  cloud.register("sns", sns);
  cloud.admin("sns/messages", (req, url) => {
    if (req.method === "DELETE") {
      sns.clearMessages();
      return { cleared: true };
    }
    return sns.messages(url.searchParams.get("topicArn") ?? undefined);
  });
  return sns;
}

// -------------------------------------------------------------------- helpers

function invalid(what: string): AwsError {
  return new AwsError("InvalidParameter", what.startsWith("Invalid") ? what : `Invalid parameter: ${what}`);
}

/** awsQuery maps arrive as `{entry: [{key, value}]}` (Attributes) — see codec.decodeForm. */
function readMap(raw: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const entries = (raw as { entry?: { key?: string; value?: string }[] } | undefined)?.entry;
  if (!Array.isArray(entries)) return out;
  for (const e of entries) if (e && typeof e.key === "string") out.set(e.key, String(e.value ?? ""));
  return out;
}

/** A map in the response: `<Attributes><entry><key/><value/></entry>…</Attributes>`. */
function mapOut(m: Map<string, string>): unknown {
  return xmlList(
    [...m].map(([key, value]) => ({ key, value })),
    "entry",
  );
}

function readMessageAttributes(raw: unknown): Record<string, MessageAttribute> {
  const out: Record<string, MessageAttribute> = {};
  const entries = (raw as { entry?: { Name?: string; Value?: Partial<MessageAttribute> }[] } | undefined)?.entry;
  if (!Array.isArray(entries)) return out;
  if (entries.length > 10)
    throw invalid(
      "Invalid parameter: MessageAttributes Reason: Number of message attributes [" +
        entries.length +
        "] exceeds the allowed maximum [10].",
    );
  for (const e of entries) {
    const name = e?.Name ?? "";
    const v = e?.Value ?? {};
    const type = v.DataType ?? "";
    if (!/^(String|Number|Binary|String\.Array)(\..+)?$/.test(type)) {
      throw new AwsError(
        "ParameterValueInvalid",
        `The message attribute '${name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.`,
      );
    }
    if (type.startsWith("Binary") ? v.BinaryValue === undefined : v.StringValue === undefined) {
      throw new AwsError(
        "ParameterValueInvalid",
        `The message attribute '${name}' must contain non-empty message attribute value for message attribute type '${type}'.`,
      );
    }
    out[name] = { DataType: type, StringValue: v.StringValue, BinaryValue: v.BinaryValue };
  }
  return out;
}

/**
 * Subscription filter policies on message attributes: exact strings, `{"prefix": s}`,
 * `{"exists": bool}` and `{"anything-but": [...]}`. Other operators let the message through.
 */
function passesFilter(policy: string | undefined, attrs: Record<string, MessageAttribute>): boolean {
  if (!policy) return true;
  let parsed: Record<string, unknown[]>;
  try {
    parsed = JSON.parse(policy);
  } catch {
    return true;
  }
  return Object.entries(parsed).every(([key, rules]) => {
    const actual = attrs[key]?.StringValue;
    return (Array.isArray(rules) ? rules : [rules]).some((r) => {
      if (typeof r === "string" || typeof r === "number") return actual === String(r);
      if (r && typeof r === "object") {
        const o = r as Record<string, unknown>;
        if ("exists" in o) return (actual !== undefined) === Boolean(o.exists);
        if (typeof o.prefix === "string") return actual?.startsWith(o.prefix) ?? false;
        if ("anything-but" in o) {
          const bad = Array.isArray(o["anything-but"]) ? o["anything-but"] : [o["anything-but"]];
          return actual !== undefined && !bad.map(String).includes(actual);
        }
      }
      return true;
    });
  });
}

function pageOf<T>(items: T[], token: string | undefined): { page: T[]; next?: string } {
  const offset = token
    ? Number(
        Buffer.from(token, "base64")
          .toString("utf8")
          .replace(/^kiln:/, ""),
      )
    : 0;
  if (!Number.isInteger(offset) || offset < 0) throw invalid("Invalid parameter: NextToken");
  const page = items.slice(offset, offset + PAGE);
  const end = offset + page.length;
  return { page, next: end < items.length ? Buffer.from(`kiln:${end}`).toString("base64") : undefined };
}

function uuid(cloud: Cloud): string {
  const h = cloud.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function isLoopback(endpoint: string): boolean {
  try {
    const host = new URL(endpoint).hostname;
    return host === "127.0.0.1" || host === "localhost" || host === "[::1]" || host === "::1";
  } catch {
    return false;
  }
}

/** One HTTP(S) POST as SNS makes it; resolves on 2xx, rejects otherwise. */
function post(endpoint: string, body: string, m: PublishedMessage, s: Subscription): Promise<void> {
  const url = new URL(endpoint);
  const mod = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "text/plain; charset=UTF-8",
          "content-length": Buffer.byteLength(body),
          "x-amz-sns-message-type": "Notification",
          "x-amz-sns-message-id": m.messageId,
          "x-amz-sns-topic-arn": m.topicArn,
          "x-amz-sns-subscription-arn": s.arn,
          ...(s.attributes.get("RawMessageDelivery") === "true" ? { "x-amz-sns-rawdelivery": "true" } : {}),
          "user-agent": "Amazon Simple Notification Service Agent",
        },
        // Loopback endpoints in tests commonly use self-signed certificates.
        ...(url.protocol === "https:" ? { rejectUnauthorized: false } : {}),
        timeout: 15_000,
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out after 15 s")));
    req.on("error", reject);
    req.end(body);
  });
}
