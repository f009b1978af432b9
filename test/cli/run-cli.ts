/** Runs the CLI in process and captures what it prints (stdout lines, stderr lines) and its exit code. */
import { main } from "../../bin/kiln.ts";
import type { Target } from "../../local/cli/target.ts";

export async function runCli(argv: string[], target?: Target): Promise<{ code: number; out: string; err: string }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  try {
    const code = await main(argv, (l) => lines.push(l), target ? { target } : {});
    return { code, out: lines.join("\n"), err: errors.join("\n") };
  } finally {
    console.error = original;
  }
}
