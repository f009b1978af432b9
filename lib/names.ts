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
 * Step Functions execution name for a deployment: `<service>-<commit12>-<trigger>[-<nonce>]`,
 * at most 80 characters and only `[A-Za-z0-9-]`. A GitHub redelivery of the same push derives the
 * same name, so StartExecution collapses it. `nonce` distinguishes deliberate re-runs (rotation
 * day, operator retry) of the same commit.
 */
export function executionName(service: string, commit: string, trigger: Trigger, nonce?: string): string {
  const base = `${service.replace(SAFE, "-")}-${commit.slice(0, 12)}-${trigger}${nonce ? `-${nonce.replace(SAFE, "-")}` : ""}`;
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
