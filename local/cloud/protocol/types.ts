import type { Clock } from "../../../lib/clock.ts";

/** Wire protocols spoken by the simulated cloud (see ../shared/reference/aws-semantics.md §1). */
export type Protocol = "ec2" | "query" | "json" | "rest-json";

/** What every action receives besides its parsed input. */
export interface RequestContext {
  readonly requestId: string;
  readonly region: string;
  readonly accountId: string;
  readonly clock: Clock;
  /** Service signing name (`ec2`, `autoscaling`, …) and action (`RunInstances`). */
  readonly service: string;
  readonly action: string;
  readonly protocol: Protocol;
}

/**
 * An action receives its input already decoded into a plain object:
 * - ec2/query: form fields nested by their dots; `N`-indexed segments become arrays and the
 *   awsQuery `member` segment is dropped, so `Tags.member.1.Key=a` and `Tag.1.Key=a` both give
 *   `{ Tags: [{ Key: "a" }] }` / `{ Tag: [{ Key: "a" }] }`. Leaf values stay strings.
 * - json: the request body as JSON.
 * - rest-json: `{ ...pathParams, ...query, body }` as the route's `bind` builds it.
 *
 * It returns the output as a plain object whose keys are the wire element names. For XML protocols,
 * arrays become `<item>` (ec2) or `<member>` (query) lists, Dates become ISO-8601, booleans
 * `true`/`false`; for json, Dates become epoch seconds.
 */
// `any`: inputs are wire-shaped and validated by each action
export type Action = (input: any, ctx: RequestContext) => unknown | Promise<unknown>;

export interface RestRoute {
  method: string;
  /** Matched against the URL path; named groups become input members. */
  pattern: RegExp;
  action: string;
  /** HTTP status on success (default 200). */
  status?: number;
  /**
   * Builds the action input. Default: path groups + query string + parsed JSON body under `body`.
   */
  bind?: (m: Record<string, string>, query: URLSearchParams, body: Buffer, headers: Record<string, string>) => unknown;
  /** Builds the raw HTTP response from the action output (default: JSON body). */
  render?: (out: unknown) => { status?: number; headers?: Record<string, string>; body: string | Buffer };
}

export interface ServiceDefinition {
  /** SigV4 signing name, also the key in the service registry: `ec2`, `autoscaling`, `elasticloadbalancing`, `ssm`, `states`, `monitoring`, `sns`, `events`, `scheduler`, `lambda`. */
  readonly signingName: string;
  readonly protocol: Protocol;
  /** ec2/query: the `Version` form value. */
  readonly version?: string;
  /** ec2/query: XML namespace of responses. */
  readonly xmlns?: string;
  /** json: `X-Amz-Target` prefix (`AmazonSSM`, `AWSStepFunctions`, …). */
  readonly targetPrefix?: string;
  /** json: `1.0` or `1.1`. */
  readonly jsonVersion?: "1.0" | "1.1";
  /** json: prefix put before error codes in `__type` (SFN uses `com.amazonaws.swf.service.v2.model#`). */
  readonly errorPrefix?: string;
  /** rest-json routes. */
  readonly routes?: RestRoute[];
  readonly actions: Record<string, Action>;
}

export interface RawRequest {
  method: string;
  /** Path plus query string. */
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}
