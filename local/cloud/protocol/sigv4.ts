/**
 * Signature Version 4 on the local cloud's HTTP endpoint: a request must be signed with the cloud's
 * own credentials (generated per cloud, written by `kiln up` to `.kiln/stack.json`, readable by
 * the user only), as AWS requires of every API call. The signature is recomputed with the AWS SDK's
 * own signer (`@smithy/signature-v4`) over exactly the headers the client says it signed, so what
 * the SDK, botocore (the AWS CLI, boto3) and any SigV4 client send verifies, and a request made by
 * anything without the secret (another user on the machine, a page that got past the Host and
 * Origin rules) does not. Only what AWS itself serves without a signature stays open: Function URLs
 * (AuthType NONE), SNS's signing certificate and its unsubscribe / confirm links, and the capture
 * stand-ins for PagerDuty and Slack (public services). In-process clients do not pass here.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Checksum, SourceData } from "@smithy/types";
import type { RawRequest } from "./types.ts";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Fresh credentials for one cloud: an `AKIA`-style key id and a 40-character secret. */
export function generateCredentials(): Credentials {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const id = [...randomBytes(16)].map((b) => alphabet[b % 32]).join("");
  return { accessKeyId: `AKIA${id}`, secretAccessKey: randomBytes(30).toString("base64").replace(/[+/]/g, "x") };
}

/** Paths and queries AWS serves without a signature. */
export function isPublic(req: Pick<RawRequest, "method" | "url">): boolean {
  const [path = "/", qs = ""] = req.url.split("?", 2);
  if (/^\/lambda-url\//.test(path)) return true;
  if (/^\/_kiln\/capture\//.test(path) || path === "/_kiln/sns/certificate.pem") return true;
  // SNS's UnsubscribeURL / SubscribeURL: links a subscriber follows without credentials.
  return req.method === "GET" && path === "/" && /(?:^|&)Action=(Unsubscribe|ConfirmSubscription)(?:&|$)/.test(qs);
}

/** SHA-256 (and HMAC-SHA-256 with a secret) in the shape the signer expects, on node:crypto. */
export class Sha256 implements Checksum {
  private readonly h: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash("sha256") : createHmac("sha256", toBuffer(secret));
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    throw new Error("not resettable");
  }
}

function toBuffer(d: SourceData): Buffer {
  if (typeof d === "string") return Buffer.from(d, "utf8");
  if (ArrayBuffer.isView(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return Buffer.from(d);
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/\s]+)\/(\d{8})\/([^/\s]+)\/([^/\s]+)\/aws4_request,\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/;

/** Why a request is refused (AWS's error code and message), or undefined when its signature holds. */
export async function verifySignature(
  req: RawRequest,
  credentials: Credentials,
  opts: { now: number; maxSkewMs: number },
): Promise<{ code: string; message: string } | undefined> {
  const header = (n: string) => {
    const v = req.headers[n];
    return Array.isArray(v) ? v.join(",") : v;
  };
  const auth = header("authorization");
  if (!auth) {
    if (/[?&]X-Amz-Signature=/.test(req.url))
      return {
        code: "IncompleteSignature",
        message: "Presigned URLs are not accepted by the local cloud; sign the request's headers.",
      };
    return {
      code: "MissingAuthenticationToken",
      message:
        "Request is missing Authentication Token: sign it with the local cloud's credentials (kiln up prints them; .kiln/stack.json holds them).",
    };
  }
  const m = AUTH.exec(auth.trim());
  if (!m) return { code: "IncompleteSignature", message: "Authorization header is not a valid AWS4-HMAC-SHA256 signature." };
  const [, keyId, day, region, service, signedList, signature] = m as unknown as string[];
  if (keyId !== credentials.accessKeyId)
    return {
      code: "UnrecognizedClientException",
      message: `The security token included in the request is invalid: access key ${keyId} is not this local cloud's (see .kiln/stack.json).`,
    };
  const amzDate = header("x-amz-date");
  const signedAt = amzDate
    ? Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"))
    : NaN;
  if (!Number.isFinite(signedAt) || amzDate!.slice(0, 8) !== day)
    return { code: "IncompleteSignature", message: "X-Amz-Date is missing or does not match the credential scope's date." };
  if (Math.abs(opts.now - signedAt) > opts.maxSkewMs)
    return {
      code: "InvalidSignatureException",
      message: `Signature expired: ${amzDate} is more than ${opts.maxSkewMs / 60_000} minutes from the local cloud's time.`,
    };
  const signed = signedList!.split(";");
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const v = header(name);
    if (v === undefined) return { code: "IncompleteSignature", message: `Signed header ${name} is missing from the request.` };
    headers[name] = v;
  }
  // The signer trusts a signed X-Amz-Content-Sha256 as the payload's hash: hold it to the body itself.
  const claimed = headers["x-amz-content-sha256"];
  if (claimed !== undefined && claimed !== createHash("sha256").update(req.body).digest("hex"))
    return { code: "SignatureDoesNotMatch", message: "X-Amz-Content-Sha256 does not match the request's payload." };
  const [path = "/", qs = ""] = req.url.split("?", 2);
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(qs)) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const host = header("host") ?? "";
  const request = new HttpRequest({
    method: req.method,
    protocol: "http:",
    hostname: host.replace(/:\d+$/, ""),
    // The path as sent (already escaped by the client): the signer escapes it once more, as AWS's canonical URI does.
    path,
    query,
    headers,
    body: req.body,
  });
  const signer = new SignatureV4({
    credentials,
    region: region!,
    service: service!,
    sha256: Sha256,
    applyChecksum: false,
    uriEscapePath: service !== "s3",
  });
  const again = await signer.sign(request, { signingDate: new Date(signedAt), signableHeaders: new Set(signed) });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(again.headers.authorization))?.[1] ?? "";
  const a = Buffer.from(expected);
  const b = Buffer.from(signature!);
  if (a.length !== b.length || !timingSafeEqual(a, b))
    return {
      code: "SignatureDoesNotMatch",
      message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key.",
    };
  return undefined;
}

/**
 * `fetch` signed with the cloud's credentials, for the admin API (`/_kiln/*`) and raw calls.
 * (`curl --aws-sigv4 aws:amz:us-east-1:kiln --user "$KEY:$SECRET"` does the same from a shell.)
 */
export async function signedFetch(
  url: string,
  credentials: Credentials,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  region = "us-east-1",
): Promise<Response> {
  const u = new URL(url);
  const query: Record<string, string> = {};
  for (const [k, v] of u.searchParams) query[k] = v;
  const request = new HttpRequest({
    method: init.method ?? "GET",
    protocol: u.protocol,
    hostname: u.hostname,
    port: Number(u.port) || undefined,
    path: u.pathname,
    query,
    headers: { host: u.host, ...(init.headers ?? {}) },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const signer = new SignatureV4({ credentials, region, service: "kiln", sha256: Sha256 });
  const signed = await signer.sign(request);
  const { host: _host, ...headers } = signed.headers;
  return fetch(url, { method: request.method, headers, ...(init.body !== undefined ? { body: init.body } : {}) });
}
