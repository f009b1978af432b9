import middy from "@middy/core";
import type { Context } from "aws-lambda";
import type { z } from "zod";
import { classify, InvalidInputError } from "./errors.ts";

/**
 * Wraps a domain function as a Lambda handler: parse the event with a zod schema (invalid input is
 * `kiln.InvalidInput`, named so the state machine does not retry it), call the domain function, and
 * rethrow failures as kiln errors whose `name` the state machine's Retry/Catch match.
 */
export function stepHandler<S extends z.ZodType, R>(
  step: string,
  schema: S,
  fn: (input: z.infer<S>, context: Context) => Promise<R>,
) {
  return middy<unknown, R>().handler(async (event: unknown, context: Context) => {
    const parsed = schema.safeParse(event);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; ");
      throw new InvalidInputError(`${step}: invalid input — ${issues}`);
    }
    try {
      return await fn(parsed.data, context);
    } catch (err) {
      throw classify(err, step);
    }
  });
}
