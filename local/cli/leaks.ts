/**
 * `kiln leaks [--json]`: what the janitor would remove now — builders and incomplete AMIs of ended
 * executions, orphan snapshots, retired fleets past their window, launch-template versions no group
 * uses. It runs the janitor itself with `dryRun` (the stack's function, so the same classification
 * on the stack's clock), never a second copy of its rules. Exit 0 when nothing leaks, 1 otherwise.
 */
import { InvokeCommand } from "@aws-sdk/client-lambda";
import type { JanitorAction, JanitorReport } from "../../lib/bake/janitor.ts";
import { CliError, EXIT, type Target } from "./target.ts";

export async function leaks(target: Target): Promise<JanitorAction[]> {
  const fn = target.functions.janitor;
  if (!fn) throw new CliError("the stack has no janitor function", EXIT.failed);
  const r = await target.clients.lambda.send(
    new InvokeCommand({ FunctionName: fn, Payload: Buffer.from(JSON.stringify({ dryRun: true })) }),
  );
  const out = JSON.parse(Buffer.from(r.Payload ?? new Uint8Array()).toString("utf8")) as JanitorReport & {
    errorType?: string;
    errorMessage?: string;
  };
  if (r.FunctionError) throw new CliError(`janitor failed: ${out.errorType}: ${out.errorMessage}`, EXIT.failed);
  return out.removed;
}

export function formatLeaks(found: JanitorAction[], out: (line: string) => void): void {
  if (found.length === 0) out("no leaks: everything kiln tagged is live, retained by policy, or gone");
  for (const a of found) out(`${a.kind.padEnd(24)} ${a.resource}  (${a.execution}) ${a.why}`);
}
