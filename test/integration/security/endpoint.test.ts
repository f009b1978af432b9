/**
 * The local cloud endpoint serves only its own clients: a DNS-rebinding page (foreign Host) and a
 * browser's cross-site request (foreign Origin, Sec-Fetch-Site) are refused before any service
 * runs — so no page on the same laptop can run SendCommand's bash — while the SDK, the AWS CLI and
 * the public Function URL keep working.
 */
import http from "node:http";
import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCloud } from "../../../local/cloud/index.ts";

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

  it("still serves the SDK on its loopback Host", async () => {
    const ec2 = new EC2Client(cloud.clientConfig());
    await expect(ec2.send(new DescribeInstancesCommand({}))).resolves.toBeDefined();
    const r = await raw("POST", "/", { ...form, host: `127.0.0.1:${port}` }, FORM);
    expect(r.status).not.toBe(421);
    expect(r.status).not.toBe(403);
  });

  it("leaves Function URLs public (a cross-site call reaches the function layer)", async () => {
    const r = await raw("POST", "/lambda-url/nope/", { host: `127.0.0.1:${port}`, origin: "https://github.com" }, "{}");
    expect(r.status).not.toBe(403);
    expect(r.status).not.toBe(421);
  });
});
