/**
 * Input validation for the console's JSON API: the action requests, the execution ARNs in queries,
 * and the same-origin rule for every request. Pure functions, so they are tested without a server.
 */
import { z } from "zod";
import { machineOfExecution } from "./execution.ts";

/** An execution ARN as Step Functions issues them (the name part is what StartExecution accepts). */
export const EXECUTION_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_.-]{1,80}:[A-Za-z0-9_.-]{1,80}$/;

export const ACTIONS = ["approve", "reject", "abort", "redrive"] as const;
export type ActionName = (typeof ACTIONS)[number];

const ActionRequestSchema = z
  .object({
    action: z.enum(ACTIONS),
    execution: z.string().regex(EXECUTION_ARN, "must be an execution ARN"),
    reason: z.string().trim().min(1).max(500).optional(),
    /** Redrive even though the commit failed the canary (the page asked the operator first). */
    force: z.boolean().optional(),
  })
  .strict();

export type ActionRequest = z.infer<typeof ActionRequestSchema>;

/** A request the console refuses, with the HTTP status to answer. */
export class ConsoleRequestError extends Error {
  override readonly name = "ConsoleRequestError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * Parses and validates an action request body. `machines` are the state machines this console acts
 * on: an execution of any other machine is refused, and approve/reject/abort apply to deployments only.
 */
export function parseActionRequest(
  body: string,
  machines: { deploy?: string; abort?: string; rollback?: string },
): ActionRequest {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new ConsoleRequestError("the request body is not JSON", 400);
  }
  const r = ActionRequestSchema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
    throw new ConsoleRequestError(`invalid request: ${issues}`, 400);
  }
  const req = r.data;
  const machine = machineOfExecution(req.execution);
  const known = Object.values(machines).filter((m): m is string => typeof m === "string");
  if (!known.includes(machine))
    throw new ConsoleRequestError(`${req.execution} is not an execution of this stack's state machines`, 404);
  if (req.action !== "redrive" && machine !== machines.deploy)
    throw new ConsoleRequestError(`only deployments can be ${req.action === "abort" ? "aborted" : `${req.action}d`}`, 400);
  if (req.reason !== undefined && req.action !== "reject")
    throw new ConsoleRequestError("a reason is only taken when rejecting", 400);
  if (req.force !== undefined && req.action !== "redrive")
    throw new ConsoleRequestError("force is only taken when redriving", 400);
  return req;
}

/** Validates an execution ARN given in a query string. */
export function parseExecutionArn(value: string | null): string {
  if (!value) throw new ConsoleRequestError("the `arn` query parameter is required", 400);
  if (!EXECUTION_ARN.test(value)) throw new ConsoleRequestError("`arn` must be an execution ARN", 400);
  return value;
}

export interface RequestFacts {
  method: string;
  host?: string;
  origin?: string;
  /** `Sec-Fetch-Site`, sent by every current browser. */
  fetchSite?: string;
  contentType?: string;
}

/**
 * The same-origin rule. Every request must name this server in `Host` (a page on another site that
 * rebinds its DNS name to 127.0.0.1 would send its own name). A state-changing request must
 * also come from this origin: browsers send `Origin` on every cross-site POST, and requiring a JSON
 * content type means a cross-site form cannot post without a preflight, which this server never grants.
 */
export function checkSameOrigin(req: RequestFacts, allowedHosts: readonly string[]): void {
  if (!req.host || !allowedHosts.includes(req.host.toLowerCase())) throw new ConsoleRequestError("unexpected Host header", 421);
  // Reads need nothing more: a link from elsewhere (a page, a pager alert) may open the console, and
  // without CORS headers no other origin can read an API answer.
  if (req.method === "GET" || req.method === "HEAD") return;
  if (req.origin !== undefined && req.origin !== `http://${req.host.toLowerCase()}`)
    throw new ConsoleRequestError("cross-origin request refused", 403);
  if (req.origin === undefined && req.fetchSite !== undefined && req.fetchSite !== "same-origin") {
    throw new ConsoleRequestError("cross-site request refused", 403);
  }
  if (!/^application\/json(;|$)/i.test(req.contentType ?? ""))
    throw new ConsoleRequestError("the request body must be application/json", 415);
}
