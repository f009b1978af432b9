import type { Tag } from "@aws-sdk/client-ec2";
import { classify } from "../errors.ts";
import { assertHolder } from "../lock/holder.ts";
import type { BakeDeps, BakePlan } from "./types.ts";

/** EC2 tag list → record. */
export function tagsOf(tags: Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key) out[t.Key] = t.Value ?? "";
  return out;
}

/** Record → EC2 tag list. */
export function tagList(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/** The AWS error code of an SDK error (its `name`), or undefined. */
export function awsCode(err: unknown): string | undefined {
  return err && typeof err === "object" && "name" in err ? String((err as { name: unknown }).name) : undefined;
}

/**
 * Tag values allow letters, digits, spaces and `_ . : / = + - @` (EC2 allows more, other
 * services less); anything else becomes `_`, capped at 256 characters.
 */
export function tagValue(v: string): string {
  return v.replace(/[^\p{L}\p{N} _.:/=+\-@]/gu, "_").slice(0, 256);
}

/**
 * Wraps a domain step so whatever escapes it is a kiln error the state machine can match
 * (throttling → kiln.Throttled, the rest → kiln.StepFailed with the step's name in the cause).
 */
export function reconciler<I, D, R>(step: string, fn: (input: I, deps: D) => Promise<R>): (input: I, deps: D) => Promise<R> {
  const wrapped = async (input: I, deps: D) => {
    try {
      return await fn(input, deps);
    } catch (err) {
      throw classify(err, step);
    }
  };
  Object.defineProperty(wrapped, "name", { value: fn.name || step });
  return wrapped;
}

/**
 * A reconciler for a step that makes or changes the service's builders or images: it runs only
 * while the execution holds its environment's lock, so a superseded or aborted execution redriven
 * later fails with `kiln.Superseded` before it launches, runs or deletes anything (I6, I7).
 */
export function guardedReconciler<I extends { plan: BakePlan }, D extends Pick<BakeDeps, "lock">, R>(
  step: string,
  fn: (input: I, deps: D) => Promise<R>,
): (input: I, deps: D) => Promise<R> {
  return reconciler(step, async (input: I, deps: D) => {
    const { service, environment, execution } = input.plan;
    await assertHolder({ service, environment, executionName: execution.name }, deps.lock);
    return fn(input, deps);
  });
}
