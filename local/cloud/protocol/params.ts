import { type AwsError, invalidValue, missingParameter } from "./errors.ts";
import type { RequestContext } from "./types.ts";

type Proto = "ec2" | "query" | "json";

/**
 * Typed reads of an action's decoded input that fail with the error each protocol uses for a
 * missing or malformed parameter (EC2 `MissingParameter`/`InvalidParameterValue`, awsQuery
 * `ValidationError`, JSON `ValidationException`).
 */
export class Params {
  private readonly proto: Proto;
  // `any`: decoded wire input
  constructor(
    readonly raw: any,
    ctx: Pick<RequestContext, "protocol"> | Proto,
  ) {
    const p = typeof ctx === "string" ? ctx : ctx.protocol;
    this.proto = p === "rest-json" ? "json" : p;
    if (this.raw === null || typeof this.raw !== "object" || Array.isArray(this.raw)) this.raw = {};
  }

  missing(name: string): AwsError {
    return missingParameter(this.proto, name);
  }
  invalid(name: string, value: unknown, why: string): AwsError {
    return invalidValue(this.proto, name, value, why);
  }

  has(name: string): boolean {
    return this.raw[name] !== undefined && this.raw[name] !== "";
  }

  str(name: string): string | undefined;
  str(name: string, opts: { required: true; pattern?: RegExp; max?: number }): string;
  str(name: string, opts?: { required?: boolean; pattern?: RegExp; max?: number }): string | undefined;
  str(name: string, opts: { required?: boolean; pattern?: RegExp; max?: number } = {}): string | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || (v === "" && opts.required)) {
      if (opts.required) throw this.missing(name);
      return undefined;
    }
    if (typeof v !== "string") {
      if (this.proto === "json" && (typeof v === "number" || typeof v === "boolean")) {
        throw this.invalid(name, v, "expected a string");
      }
      if (typeof v !== "string") throw this.invalid(name, JSON.stringify(v), "expected a string");
    }
    if (opts.max !== undefined && v.length > opts.max) throw this.invalid(name, v, `must be at most ${opts.max} characters`);
    if (opts.pattern && !opts.pattern.test(v)) throw this.invalid(name, v, `must match ${opts.pattern.source}`);
    return v;
  }

  int(name: string): number | undefined;
  int(name: string, opts: { required: true; min?: number; max?: number }): number;
  int(name: string, opts?: { required?: boolean; min?: number; max?: number; default?: number }): number | undefined;
  int(name: string, opts: { required?: boolean; min?: number; max?: number; default?: number } = {}): number | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || v === "") {
      if (opts.required) throw this.missing(name);
      return opts.default;
    }
    const n = typeof v === "number" ? v : /^-?\d+$/.test(String(v)) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n)) throw this.invalid(name, v, "expected an integer");
    if (opts.min !== undefined && n < opts.min) throw this.invalid(name, v, `must be at least ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) throw this.invalid(name, v, `must be at most ${opts.max}`);
    return n;
  }

  num(name: string, opts: { required?: boolean } = {}): number | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || v === "") {
      if (opts.required) throw this.missing(name);
      return undefined;
    }
    const n = Number(v);
    if (!Number.isFinite(n)) throw this.invalid(name, v, "expected a number");
    return n;
  }

  bool(name: string, dflt?: boolean): boolean | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || v === "") return dflt;
    if (v === true || v === "true") return true;
    if (v === false || v === "false") return false;
    throw this.invalid(name, v, "expected true or false");
  }

  /** A list; an awsQuery empty list (`Name=`) or an absent key gives []. */
  // `any`: wire shapes
  list<T = any>(name: string, opts: { required?: boolean } = {}): T[] {
    const v = this.raw[name];
    if (v === undefined || v === null || v === "") {
      if (opts.required) throw this.missing(name);
      return [];
    }
    if (Array.isArray(v)) return v as T[];
    throw this.invalid(name, JSON.stringify(v), "expected a list");
  }

  /** A nested structure as its own Params. */
  obj(name: string, opts: { required?: boolean } = {}): Params | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null || v === "") {
      if (opts.required) throw this.missing(name);
      return undefined;
    }
    if (typeof v !== "object" || Array.isArray(v)) throw this.invalid(name, JSON.stringify(v), "expected a structure");
    return new Params(v, this.proto);
  }

  /** `[{Key,Value}]` tag lists (EC2 `Tag.N`, awsQuery `Tags.member.N`, JSON `Tags`). */
  tags(name: string): { Key: string; Value: string }[] {
    return this.list(name).map((t) => {
      if (!t || typeof t !== "object" || typeof t.Key !== "string")
        throw this.invalid(name, JSON.stringify(t), "each tag needs a Key");
      return { Key: t.Key, Value: t.Value === undefined ? "" : String(t.Value) };
    });
  }
}
