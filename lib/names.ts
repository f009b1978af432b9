import { createHash } from "node:crypto";

/**
 * Every name and client token kiln creates is derived from the execution, so a retried, crashed or
 * redriven step finds what it already made instead of making it twice (ARCHITECTURE.md §2.1).
 */

export type Trigger = "push" | "rotation" | "operator" | "rollback";

const SAFE = /[^A-Za-z0-9-]/g;

function shortHash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 8);
}

/**
 * The unit of deployment is (service, environment): each has its own lock, queue, records and fleet.
 * `unitKey` is the partition key of its lock item and of its deployment records. Service names are
 * `[a-z][a-z0-9-]*` and environments `[a-z][a-z0-9-]*`, so `/` cannot occur in either and the key
 * is unambiguous. Never parse a service or environment out of a key or an execution name: read
 * them from the execution's input or the item's own `service` / `environment` fields.
 */
/** A Step Functions execution ARN (`arn:<partition>:states:<region>:<account>:execution:<machine>:<name>`). */
export const EXECUTION_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/;

export function unitKey(service: string, environment: string): string {
  return `${service}/${environment}`;
}

/**
 * Step Functions execution name for a deployment: `<service>-<environment>-<commit12>-<trigger>-<seq>`
 * (plus `-<unit hash>` when the service or environment has a hyphen), at most 80 characters and only `[A-Za-z0-9-]` (longer ones keep a prefix and a hash of the whole).
 * `seq` is the request's place in its environment's queue (assigned once, when the request is first
 * accepted), so names are unique per request and a redelivery of the same request derives the same
 * name. The name is for people; code reads service and environment from the execution's input.
 */
export function executionName(
  service: string,
  environment: string,
  commit: string,
  trigger: Trigger,
  seq: number | string,
): string {
  // With a hyphen in either name the split is ambiguous (`a-b` + `c` and `a` + `b-c` read the same):
  // such names end in a hash of the unit, which keeps them apart (and longer than any plain name).
  const unit =
    service.includes("-") || environment.includes("-") ? `-${shortHash(unitKey(service, environment)).slice(0, 6)}` : "";
  const base = `${service}-${environment}-${commit.slice(0, 12)}-${trigger}-${seq}${unit}`.replace(SAFE, "-");
  if (base.length <= 80) return base;
  return `${base.slice(0, 71)}-${shortHash(base)}`;
}

/** A client token (≤ 64 chars) for one step of one execution: stable across retries and redrives. */
export function clientToken(executionName: string, step: string): string {
  return `${step.slice(0, 20)}-${shortHash(executionName, step)}${shortHash(step, executionName)}`.slice(0, 64);
}

/** Resource name `kiln-<service>-<suffix>` kept within AWS's limits (ASG names ≤ 255, TG ≤ 32, AMI ≤ 128). */
export function resourceName(service: string, suffix: string, max = 128): string {
  const n = `kiln-${service}-${suffix}`.replace(/[^A-Za-z0-9-]/g, "-");
  return n.length <= max ? n : `${n.slice(0, max - 9)}-${shortHash(n)}`;
}
