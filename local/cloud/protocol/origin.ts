/**
 * The HTTP endpoint's own rules, checked before a request reaches any service: it answers only to
 * its loopback Host (a DNS-rebinding page sends its own host name) and refuses a browser's
 * cross-site requests (a foreign `Origin`, or `Sec-Fetch-Site: cross-site|same-site`), so a web page
 * open on the same machine cannot drive the simulated cloud (whose Run Command runs bash). Function
 * URLs stay open to any caller, as AWS serves them (AuthType NONE); the ALB listeners are separate
 * servers. In-process requests (the SDK's in-process transport) do not pass here.
 */
import type { RawRequest, RawResponse } from "./types.ts";

/** Paths AWS makes public: Lambda Function URLs. */
const PUBLIC_PATH = /^\/lambda-url\//;

function plain(status: number, message: string): RawResponse {
  return { status, headers: { "content-type": "text/plain; charset=utf-8" }, body: Buffer.from(`${message}\n`) };
}

/** The refusal for a request the endpoint must not serve, or undefined to serve it. */
export function refuseForeign(req: RawRequest, allowedHosts: ReadonlySet<string>): RawResponse | undefined {
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const host = (header("host") ?? "").toLowerCase();
  if (!allowedHosts.has(host))
    return plain(421, `Host '${header("host") ?? ""}' is not this endpoint (it answers only to ${[...allowedHosts].join(", ")})`);
  if (PUBLIC_PATH.test(req.url)) return undefined;
  const origin = header("origin");
  if (
    origin !== undefined &&
    !allowedHosts.has(
      origin
        .replace(/^https?:\/\//, "")
        .replace(/\/$/, "")
        .toLowerCase(),
    )
  )
    return plain(403, `Cross-origin request from ${origin} refused: the local cloud serves only its own clients`);
  const site = header("sec-fetch-site");
  if (site && site !== "same-origin" && site !== "none")
    return plain(403, `Cross-site request (Sec-Fetch-Site: ${site}) refused`);
  return undefined;
}
