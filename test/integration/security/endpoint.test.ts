/**
 * The local cloud endpoint serves only its own clients: a DNS-rebinding page (foreign Host) and a
 * browser's cross-site request (foreign Origin, Sec-Fetch-Site) are refused before any service
 * runs — so no page on the same laptop can run SendCommand's bash — while the SDK, the AWS CLI and
 * the public Function URL keep working.
 */
import http from "node:http";
import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCloud } from "../../../local/cloud/index.ts";
import { Sha256, signedFetch } from "../../../local/cloud/protocol/sigv4.ts";

type Cloud = Awaited<ReturnType<typeof createCloud>>;
let cloud: Cloud;
let port: number;

beforeAll(async () => {
  cloud = createCloud({});
  await cloud.start({ port: 0 });
  port = Number(new URL(cloud.endpoint!).port);
});
afterAll(async () => cloud?.stop());

/** A raw request with exactly these headers (fetch would not let a test forge Host). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body = "",
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method, path, headers: { ...headers, "content-length": Buffer.byteLength(body) } },
      (res) => {
        let data = "";
        res.on("data", (c) => (data += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const FORM = "Action=DescribeInstances&Version=2016-11-15";

const form = { "content-type": "application/x-www-form-urlencoded" };

describe("the local cloud endpoint accepts only its own clients", () => {
  it("refuses a foreign Host (DNS rebinding) with 421 and runs nothing", async () => {
    const r = await raw("POST", "/", { ...form, host: `evil.example:${port}` }, FORM);
    expect(r.status).toBe(421);
    expect(r.body).toMatch(/not this endpoint/);
  });

  it("refuses a cross-site form POST (foreign Origin) with 403", async () => {
    const r = await raw("POST", "/", { ...form, host: `127.0.0.1:${port}`, origin: "https://evil.example" }, FORM);
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/Cross-origin/);
  });

  it("refuses a cross-site GET ?Action=… (Sec-Fetch-Site) with 403", async () => {
    const r = await raw("GET", `/?${FORM}`, { host: `localhost:${port}`, "sec-fetch-site": "cross-site" });
    expect(r.status).toBe(403);
  });

  it("still serves the SDK on its loopback Host, over HTTP", async () => {
    const ec2 = new EC2Client(cloud.clientConfig({ http: true }));
    await expect(ec2.send(new DescribeInstancesCommand({}))).resolves.toBeDefined();
  });

  it("leaves Function URLs public (a cross-site call reaches the function layer)", async () => {
    const r = await raw("POST", "/lambda-url/nope/", { host: `127.0.0.1:${port}`, origin: "https://github.com" }, "{}");
    expect(r.status).not.toBe(403);
    expect(r.status).not.toBe(421);
  });
});

describe("every API call and the admin API must be signed (SigV4) with the cloud's own credentials", () => {
  const host = () => `127.0.0.1:${port}`;

  it("refuses an unsigned call in its protocol's error shape (EC2 XML), running nothing", async () => {
    const r = await raw("POST", "/", { ...form, host: host() }, FORM);
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/<Code>MissingAuthenticationToken<\/Code>/);
  });

  it("refuses another key, a wrong secret and a tampered body; the SDK sees the AWS error codes", async () => {
    const other = new EC2Client({
      ...cloud.clientConfig({ http: true }),
      credentials: { accessKeyId: "AKIAOTHER", secretAccessKey: "x" },
    });
    await expect(other.send(new DescribeInstancesCommand({}))).rejects.toMatchObject({ name: "UnrecognizedClientException" });
    const wrong = new EC2Client({
      ...cloud.clientConfig({ http: true }),
      credentials: { accessKeyId: cloud.credentials.accessKeyId, secretAccessKey: "not-the-secret" },
    });
    await expect(wrong.send(new DescribeInstancesCommand({}))).rejects.toMatchObject({ name: "SignatureDoesNotMatch" });
    // A signed request replayed with another body (the signature covers the payload hash).
    const signed = await signedFetch(`http://${host()}/`, cloud.credentials, { method: "POST", headers: form, body: FORM });
    expect(signed.status).toBe(200);
    const signer = new SignatureV4({ credentials: cloud.credentials, region: "us-east-1", service: "ec2", sha256: Sha256 });
    const req = await signer.sign(
      new HttpRequest({ method: "POST", hostname: "127.0.0.1", port, path: "/", headers: { ...form, host: host() }, body: FORM }),
    );
    const replay = await raw(
      "POST",
      "/",
      { ...(req.headers as Record<string, string>) },
      "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0",
    );
    expect(replay.status).toBe(403);
    expect(replay.body).toMatch(/SignatureDoesNotMatch/);
    // Signed the way botocore signs (no X-Amz-Content-Sha256 header): the body is in the signature.
    const bare = new SignatureV4({
      credentials: cloud.credentials,
      region: "us-east-1",
      service: "ec2",
      sha256: Sha256,
      applyChecksum: false,
    });
    const req2 = await bare.sign(
      new HttpRequest({ method: "POST", hostname: "127.0.0.1", port, path: "/", headers: { ...form, host: host() }, body: FORM }),
    );
    expect((await raw("POST", "/", req2.headers as Record<string, string>, FORM)).status).toBe(200);
    const replay2 = await raw("POST", "/", req2.headers as Record<string, string>, `${FORM}&DryRun=true`);
    expect(replay2.status).toBe(403);
    expect(replay2.body).toMatch(/SignatureDoesNotMatch/);
  });

  it("refuses a signature older than the allowed clock skew", async () => {
    const signer = new SignatureV4({ credentials: cloud.credentials, region: "us-east-1", service: "ec2", sha256: Sha256 });
    const req = await signer.sign(
      new HttpRequest({ method: "POST", hostname: "127.0.0.1", port, path: "/", headers: { ...form, host: host() }, body: FORM }),
      { signingDate: new Date(Date.now() - 60 * 60_000) },
    );
    const r = await raw("POST", "/", req.headers as Record<string, string>, FORM);
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/Signature expired/);
  });

  it("guards the admin API the same way: unsigned 403, signed 200", async () => {
    expect((await raw("GET", "/_kiln/world", { host: host() })).status).toBe(403);
    expect((await raw("POST", "/_kiln/faults", { host: host(), "content-type": "application/json" }, "{}")).status).toBe(403);
    const r = await signedFetch(`http://${host()}/_kiln/world`, cloud.credentials);
    expect(r.status).toBe(200);
  });

  it("leaves open only what AWS serves unsigned: Function URLs, SNS's certificate, the capture stand-ins", async () => {
    expect((await raw("POST", "/lambda-url/nope/", { host: host() }, "{}")).status).not.toBe(403);
    expect(
      (await raw("POST", "/_kiln/capture/slack", { host: host(), "content-type": "application/json" }, "{}")).status,
    ).not.toBe(403);
    expect((await raw("GET", "/_kiln/sns/certificate.pem", { host: host() })).status).not.toBe(403);
  });
});
