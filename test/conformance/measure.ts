/**
 * Prints the conformance figures of docs/local-step-functions.md and every miss:
 *   npx tsx test/conformance/measure.ts            (with the definition validator, ~30 s)
 *   NOVAL=1 npx tsx test/conformance/measure.ts    (executions only)
 */
import { type Case, loadCases, type Outcome, runExecutionCase, runRejectCase, runValidateCase } from "./localstack.ts";

export function feature(c: Case): string {
  return c.id
    .replace("tests/aws/services/stepfunctions/v2/", "")
    .split("/")[0]!
    .replace(/\.py::.*/, "");
}

const cases = loadCases();
const res: Outcome[] = [];
for (const c of cases) {
  res.push(
    c.kind === "execution"
      ? await runExecutionCase(c, { validate: !process.env.NOVAL })
      : c.kind === "reject"
        ? runRejectCase(c)
        : runValidateCase(c),
  );
}
const groups = new Map<string, [number, number]>();
res.forEach((r, i) => {
  const c = cases[i]!;
  const k = `${c.kind} ${c.kind === "execution" ? feature(c) : ""}`.trim();
  const g = groups.get(k) ?? [0, 0];
  g[0] += r.ok ? 1 : 0;
  g[1]++;
  groups.set(k, g);
});
for (const [k, [ok, n]] of [...groups].sort()) console.log(`${k}: ${ok}/${n}`);
for (const r of res)
  if (!r.ok) console.log("MISS", r.id.replace("tests/aws/services/stepfunctions/v2/", ""), "::", r.why?.slice(0, 400));
process.exit(0);
