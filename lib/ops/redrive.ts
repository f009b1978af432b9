/** What an operator should know before redriving a failed deployment. */
import { ErrorNames } from "../errors.ts";
import { parseInput } from "./target.ts";

/**
 * Why a failed execution should not simply be redriven, or nothing: a deployment whose commit
 * failed the canary judge or its alarms (`kiln.VerificationFailed`) is a bad commit, and a redrive
 * judges the same commit again on fresh traffic. The way forward is an abort or a new push.
 */
export function judgedFailure(d: { status?: string; error?: string; cause?: string }): string | undefined {
  if (d.status !== "FAILED" || d.error !== ErrorNames.VerificationFailed) return undefined;
  const first = causeMessage(d.cause).split("\n")[0]!.trim();
  return first.length > 300 ? `${first.slice(0, 300)}…` : first || "the canary judge or its alarms failed the commit";
}

/** A Lambda error cause is `{"errorType","errorMessage",…}` JSON: the message is what an operator reads. */
export function causeMessage(cause: string | undefined): string {
  const message = parseInput(cause)?.errorMessage;
  return typeof message === "string" ? message : (cause ?? "");
}
