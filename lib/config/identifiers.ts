import { z } from "zod";

/**
 * Validators for the identifiers that arrive from outside (webhook payloads, CLI, execution
 * input) and end up on instances: a commit, a branch, a repository, a service name. They are
 * deliberately stricter than git or GitHub, because these values are handed to shell scripts
 * (as environment values, never as script text — see docs/bake.md) and into AWS resource names.
 */

/** A full git object name: 40 lowercase hex characters (a SHA-1 commit id). */
export const COMMIT_PATTERN = /^[0-9a-f]{40}$/;

/** GitHub owner (1–39: alphanumerics and single inner hyphens) / repository (1–100: `[A-Za-z0-9._-]`, not `.` or `..`). */
export const REPOSITORY_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\/[A-Za-z0-9._-]{1,100}$/;

/** Service names become parts of AWS names (target groups ≤ 32 chars): lowercase, digits, hyphens. */
export const SERVICE_PATTERN = /^[a-z][a-z0-9-]{0,23}$/;

/** Conservative branch charset: a subset of what `git check-ref-format` accepts. */
const BRANCH_CHARS = /^[A-Za-z0-9._/-]+$/;

/**
 * Why `name` is not an acceptable branch, or undefined when it is. Applies the rules of
 * `git check-ref-format --branch` that matter for the charset above (no `..`, no component
 * starting with `.` or ending with `.lock`, no `//`, no leading `-` or `/`, no trailing `/` or `.`),
 * plus a 200-character cap.
 */
export function branchProblem(name: string): string | undefined {
  if (name.length === 0) return "is empty";
  if (name.length > 200) return "is longer than 200 characters";
  if (!BRANCH_CHARS.test(name)) return "may only contain letters, digits, '.', '_', '/' and '-'";
  if (name.startsWith("-")) return "may not start with '-'";
  if (name.startsWith("/") || name.endsWith("/")) return "may not start or end with '/'";
  if (name.endsWith(".")) return "may not end with '.'";
  if (name.includes("..")) return "may not contain '..'";
  if (name.includes("//")) return "may not contain '//'";
  if (name === "HEAD") return "may not be HEAD";
  for (const part of name.split("/")) {
    if (part.startsWith(".")) return "may not have a component starting with '.'";
    if (part.endsWith(".lock")) return "may not have a component ending with '.lock'";
  }
  return undefined;
}

export function isCommit(v: unknown): v is string {
  return typeof v === "string" && COMMIT_PATTERN.test(v);
}
export function isRepository(v: unknown): v is string {
  return typeof v === "string" && REPOSITORY_PATTERN.test(v) && !/\/\.\.?$/.test(v);
}
export function isBranch(v: unknown): v is string {
  return typeof v === "string" && branchProblem(v) === undefined;
}

export const CommitSchema = z.string().regex(COMMIT_PATTERN, "expected a commit id: 40 lowercase hex characters");
export const RepositorySchema = z
  .string()
  .refine(isRepository, "expected a repository as owner/name (GitHub naming: letters, digits, '-', and '.', '_' in the name)");
export const BranchSchema = z.string().superRefine((v, ctx) => {
  const p = branchProblem(v);
  if (p) ctx.addIssue({ code: "custom", message: `expected a branch name; it ${p}` });
});
export const ServiceNameSchema = z
  .string()
  .regex(SERVICE_PATTERN, "expected a service name: a lowercase letter, then up to 23 lowercase letters, digits or '-'");

/** Environment names (the values branches map to) become parts of AWS names and execution names. */
export const ENVIRONMENT_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
export const EnvironmentNameSchema = z
  .string()
  .regex(
    ENVIRONMENT_PATTERN,
    "expected an environment name such as production: a lowercase letter, then up to 31 lowercase letters, digits or '-'",
  );
