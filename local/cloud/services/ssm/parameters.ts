/**
 * Parameter Store: String / StringList / SecureString parameters with versions, tiers, tags and
 * path queries, plus the public `/aws/service/ami-amazon-linux-latest/…` parameters that follow the
 * newest base AMI EC2 publishes.
 *
 * SecureString values are kept in clear in memory (there is no KMS here) and returned as an opaque
 * base64 blob unless the caller asks `WithDecryption`, as AWS returns the ciphertext.
 */
import { createHash } from "node:crypto";
import type { Cloud } from "../../cloud.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { RequestContext } from "../../protocol/types.ts";
import { paginate } from "./common.ts";

export type ParameterType = "String" | "StringList" | "SecureString";
type Tier = "Standard" | "Advanced";

interface Version {
  name: string;
  type: ParameterType;
  value: string;
  version: number;
  keyId?: string;
  description: string;
  allowedPattern: string;
  tier: Tier;
  dataType: string;
  lastModified: number;
  lastModifiedUser: string;
  labels: string[];
}

interface Stored {
  name: string;
  versions: Version[];
  tags: Map<string, string>;
  /** Public AWS parameter (no account in its ARN, read only). */
  public?: boolean;
}

/** A base image as EC2 announces it (`baseImages()` and the "base-image-published" bus event). */
export interface BaseImage {
  imageId: string;
  name?: string;
  arch: string;
  /** ISO-8601 publication instant (orders images published before SSM started). */
  publishedAt?: string;
}

/** Public parameters kiln reads, by EC2 architecture. */
export const PUBLIC_AMI_PARAMETERS: Record<string, string> = {
  x86_64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
  arm64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
};

const NAME_CHARS = /^[a-zA-Z0-9_.\-/]+$/;
const MAX_VERSIONS = 100;
const DEFAULT_KEY = "alias/aws/ssm";

export class ParameterStore {
  private readonly params = new Map<string, Stored>();

  constructor(private readonly cloud: Cloud) {}

  // ---------------------------------------------------------------- public AMI parameters

  /** Points the public AL2023 parameter of the image's architecture at it (newest wins). */
  publishBaseImage(img: BaseImage): void {
    const name = PUBLIC_AMI_PARAMETERS[img.arch === "amd64" ? "x86_64" : img.arch === "aarch64" ? "arm64" : img.arch];
    if (!name || !img.imageId) return;
    let p = this.params.get(name);
    if (!p) {
      p = { name, versions: [], tags: new Map(), public: true };
      this.params.set(name, p);
    }
    const last = p.versions.at(-1);
    if (last?.value === img.imageId) return;
    p.versions.push({
      name,
      type: "String",
      value: img.imageId,
      version: (last?.version ?? 0) + 1,
      description: "",
      allowedPattern: "",
      tier: "Standard",
      dataType: "text",
      lastModified: this.cloud.clock.now(),
      lastModifiedUser: "",
      labels: [],
    });
  }

  // ---------------------------------------------------------------- actions

  putParameter(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const name = p.str("Name", { required: true });
    const value = p.str("Value", { required: true });
    validateName(name, true);
    const existing = this.params.get(name);
    const overwrite = p.bool("Overwrite", false) ?? false;
    const tags = p.tags("Tags");
    if (existing && !overwrite) {
      throw new AwsError(
        "ParameterAlreadyExists",
        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
      );
    }
    if (overwrite && tags.length > 0 && existing) {
      throw new AwsError(
        "ValidationException",
        "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
      );
    }
    const prev = existing?.versions.at(-1);
    const type = (p.str("Type") as ParameterType | undefined) ?? prev?.type;
    if (!type) throw new AwsError("ValidationException", "A parameter type is required when you create a parameter.");
    if (!["String", "StringList", "SecureString"].includes(type))
      throw new AwsError("UnsupportedParameterType", `Parameter type ${type} is not supported.`);
    const keyId = p.str("KeyId");
    if (keyId !== undefined && type !== "SecureString")
      throw new AwsError("ValidationException", "KeyId is required for SecureString type parameter only.");
    if (value.length === 0)
      throw new AwsError(
        "ValidationException",
        "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
    const allowedPattern = p.str("AllowedPattern", { max: 1024 }) ?? prev?.allowedPattern ?? "";
    if (allowedPattern) {
      let re: RegExp;
      try {
        re = new RegExp(allowedPattern);
      } catch {
        throw new AwsError(
          "InvalidAllowedPatternException",
          `The allowed pattern ${allowedPattern} is not a valid regular expression.`,
        );
      }
      if (!re.test(value))
        throw new AwsError(
          "ParameterPatternMismatchException",
          `Parameter value, cannot be validated against allowedPattern: ${allowedPattern}`,
        );
    }
    const dataType = p.str("DataType") ?? prev?.dataType ?? "text";
    if (!["text", "aws:ec2:image", "aws:ssm:integration"].includes(dataType))
      throw new AwsError(
        "ValidationException",
        `The following data type is not supported: ${dataType} (Data type names are all lowercase.)`,
      );
    const tier = this.tier(p.str("Tier"), value, prev?.tier);
    if (existing && prev && prev.version >= MAX_VERSIONS && existing.versions.length >= MAX_VERSIONS) {
      // AWS drops the oldest version unless it carries a label.
      if ((existing.versions[0]?.labels.length ?? 0) > 0) {
        throw new AwsError(
          "ParameterMaxVersionLimitExceeded",
          `You attempted to create a new version of ${name} by calling the PutParameter API with the overwrite flag. Version ${existing.versions[0]?.version}, the oldest version, can't be deleted because it has a label associated with it.`,
        );
      }
      existing.versions.shift();
    }
    const v: Version = {
      name,
      type,
      value,
      version: (prev?.version ?? 0) + 1,
      keyId: type === "SecureString" ? (keyId ?? prev?.keyId ?? DEFAULT_KEY) : undefined,
      description: p.str("Description", { max: 1024 }) ?? prev?.description ?? "",
      allowedPattern,
      tier,
      dataType,
      lastModified: this.cloud.clock.now(),
      lastModifiedUser: `arn:aws:iam::${this.cloud.accountId}:user/kiln-local`,
      labels: [],
    };
    const stored = existing ?? { name, versions: [], tags: new Map<string, string>() };
    stored.versions.push(v);
    for (const t of tags) stored.tags.set(t.Key, t.Value);
    this.params.set(name, stored);
    this.cloud.emit({
      source: "aws.ssm",
      detailType: "Parameter Store Change",
      resources: [this.arn(stored)],
      detail: { operation: existing ? "Update" : "Create", name, type, description: v.description },
    });
    return { Version: v.version, Tier: v.tier };
  }

  getParameter(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const raw = p.str("Name", { required: true });
    const decrypt = p.bool("WithDecryption", false) ?? false;
    const { stored, version, selector } = this.lookup(raw);
    return { Parameter: this.render(stored, version, decrypt, selector) };
  }

  getParameters(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const names = p.list<string>("Names", { required: true });
    if (names.length < 1 || names.length > 10)
      throw new AwsError(
        "ValidationException",
        "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10",
      );
    const decrypt = p.bool("WithDecryption", false) ?? false;
    const found: unknown[] = [];
    const invalid: string[] = [];
    for (const n of names) {
      try {
        const { stored, version, selector } = this.lookup(n);
        found.push(this.render(stored, version, decrypt, selector));
      } catch (err) {
        if (err instanceof AwsError && (err.code === "ParameterNotFound" || err.code === "ParameterVersionNotFound"))
          invalid.push(n);
        else throw err;
      }
    }
    return { Parameters: found, InvalidParameters: invalid };
  }

  getParametersByPath(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const path = p.str("Path", { required: true, max: 2048 });
    if (!path.startsWith("/") || !NAME_CHARS.test(path))
      throw new AwsError(
        "ValidationException",
        `The parameter path ${path} is not valid: a path must begin with a forward slash and use only letters, numbers, and . - _ /`,
      );
    const recursive = p.bool("Recursive", false) ?? false;
    const decrypt = p.bool("WithDecryption", false) ?? false;
    const maxResults = p.int("MaxResults", { min: 1, max: 10 }) ?? 10;
    const filters = readParameterFilters(p, ["Type", "KeyId", "Label", "DataType"]);
    const prefix = path.endsWith("/") ? path : `${path}/`;
    const items = [...this.params.values()]
      .filter((s) => s.name.startsWith(prefix) && (recursive || !s.name.slice(prefix.length).includes("/")))
      .filter((s) => filters.every((f) => f(s)))
      .sort((a, b) => a.name.localeCompare(b.name));
    const { page, next } = paginate(items, maxResults, p.str("NextToken"));
    return { Parameters: page.map((s) => this.render(s, s.versions.at(-1)!, decrypt)), NextToken: next };
  }

  deleteParameter(input: unknown, ctx: RequestContext): unknown {
    const name = new Params(input, ctx).str("Name", { required: true });
    this.remove(name);
    return {};
  }

  deleteParameters(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const names = p.list<string>("Names", { required: true });
    if (names.length < 1 || names.length > 10)
      throw new AwsError(
        "ValidationException",
        "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10",
      );
    const deleted: string[] = [];
    const invalid: string[] = [];
    for (const n of names) {
      try {
        this.remove(n);
        deleted.push(n);
      } catch {
        invalid.push(n);
      }
    }
    return { DeletedParameters: deleted, InvalidParameters: invalid };
  }

  describeParameters(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const legacy = p.list<{ Key?: string; Values?: string[] }>("Filters");
    if (legacy.length > 0 && p.list("ParameterFilters").length > 0) {
      throw new AwsError("ValidationException", "You can use either Filters or ParameterFilters in a single request.");
    }
    const maxResults = p.int("MaxResults", { min: 1, max: 50 }) ?? 50;
    const filters = readParameterFilters(p, ["Name", "Path", "Type", "KeyId", "Tier", "DataType", "Label"]);
    for (const f of legacy) {
      const values = f?.Values ?? [];
      if (f?.Key === "Name") filters.push((s) => values.some((v) => s.name.startsWith(v)));
      else if (f?.Key === "Type") filters.push((s) => values.includes(s.versions.at(-1)!.type));
      else if (f?.Key === "KeyId") filters.push((s) => values.includes(s.versions.at(-1)!.keyId ?? ""));
      else throw new AwsError("InvalidFilterKey", `${String(f?.Key)} is not a valid filter key`);
    }
    // Public parameters are not in the account's own list.
    const items = [...this.params.values()]
      .filter((s) => !s.public)
      .filter((s) => filters.every((f) => f(s)))
      .sort((a, b) => a.name.localeCompare(b.name));
    const { page, next } = paginate(items, maxResults, p.str("NextToken"));
    return {
      Parameters: page.map((s) => {
        const v = s.versions.at(-1)!;
        return {
          Name: s.name,
          ARN: this.arn(s),
          Type: v.type,
          KeyId: v.keyId,
          LastModifiedDate: new Date(v.lastModified),
          LastModifiedUser: v.lastModifiedUser,
          Description: v.description || undefined,
          AllowedPattern: v.allowedPattern || undefined,
          Version: v.version,
          Tier: v.tier,
          Policies: [],
          DataType: v.dataType,
        };
      }),
      NextToken: next,
    };
  }

  getParameterHistory(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const name = p.str("Name", { required: true });
    const decrypt = p.bool("WithDecryption", false) ?? false;
    const maxResults = p.int("MaxResults", { min: 1, max: 50 }) ?? 50;
    const stored = this.params.get(resolveName(name));
    if (!stored) throw notFound(name);
    const { page, next } = paginate(stored.versions, maxResults, p.str("NextToken"));
    return {
      Parameters: page.map((v) => ({
        Name: v.name,
        Type: v.type,
        KeyId: v.keyId,
        LastModifiedDate: new Date(v.lastModified),
        LastModifiedUser: v.lastModifiedUser,
        Description: v.description || undefined,
        Value: this.value(v, decrypt),
        AllowedPattern: v.allowedPattern || undefined,
        Version: v.version,
        Labels: v.labels,
        Tier: v.tier,
        Policies: [],
        DataType: v.dataType,
      })),
      NextToken: next,
    };
  }

  addTagsToResource(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const stored = this.taggable(p);
    for (const t of p.tags("Tags")) stored.tags.set(t.Key, t.Value);
    return {};
  }

  removeTagsFromResource(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const stored = this.taggable(p);
    for (const k of p.list<string>("TagKeys", { required: true })) stored.tags.delete(k);
    return {};
  }

  listTagsForResource(input: unknown, ctx: RequestContext): unknown {
    const stored = this.taggable(new Params(input, ctx));
    return { TagList: [...stored.tags].map(([Key, Value]) => ({ Key, Value })) };
  }

  /** Parameters with SecureString values masked (world snapshot). */
  snapshot(): unknown[] {
    return [...this.params.values()].map((s) => {
      const v = s.versions.at(-1)!;
      return {
        name: s.name,
        type: v.type,
        value: v.type === "SecureString" ? "****" : v.value,
        version: v.version,
        tier: v.tier,
        lastModified: new Date(v.lastModified).toISOString(),
        public: s.public ?? false,
        tags: Object.fromEntries(s.tags),
      };
    });
  }

  // ---------------------------------------------------------------- internals

  private taggable(p: Params): Stored {
    const type = p.str("ResourceType", { required: true });
    const id = p.str("ResourceId", { required: true });
    if (type !== "Parameter")
      throw new AwsError(
        "InvalidResourceType",
        `Resource type ${type} is not supported by the simulated cloud (only Parameter).`,
      );
    const stored = this.params.get(id);
    if (!stored || stored.public)
      throw new AwsError("InvalidResourceId", `The resource ID ${id} is not valid. Verify the ID and try again.`);
    return stored;
  }

  private remove(name: string): void {
    const stored = this.params.get(name);
    if (!stored || stored.public) throw notFound(name);
    this.params.delete(name);
    const v = stored.versions.at(-1)!;
    this.cloud.emit({
      source: "aws.ssm",
      detailType: "Parameter Store Change",
      resources: [this.arn(stored)],
      detail: { operation: "Delete", name, type: v.type, description: v.description },
    });
  }

  /** Resolves a name or ARN with an optional `:version` or `:label` selector. */
  private lookup(raw: string): { stored: Stored; version: Version; selector?: string } {
    let name = raw;
    let selector: string | undefined;
    const arn = /^arn:aws[a-z-]*:ssm:[^:]*:[^:]*:parameter(\/.*)$/.exec(raw);
    if (arn) name = arn[1]!;
    const colon = name.lastIndexOf(":");
    if (colon > 0) {
      selector = name.slice(colon);
      name = name.slice(0, colon);
    }
    if (/\s/.test(name.trim()) || name.length === 0)
      throw new AwsError("ValidationException", `Parameter name ${raw} is not valid.`);
    let stored = this.params.get(name);
    // An ARN carries "parameter/name" for a name without a leading slash.
    if (!stored && arn && name.startsWith("/")) stored = this.params.get(name.slice(1));
    if (!stored) throw notFound(raw);
    let version = stored.versions.at(-1)!;
    if (selector) {
      const sel = selector.slice(1);
      const found = /^\d+$/.test(sel)
        ? stored.versions.find((v) => v.version === Number(sel))
        : stored.versions.find((v) => v.labels.includes(sel));
      if (!found)
        throw new AwsError(
          "ParameterVersionNotFound",
          `Systems Manager could not find version ${sel} of ${name}. Verify the version and try again.`,
        );
      version = found;
    }
    return { stored, version, selector };
  }

  private render(s: Stored, v: Version, decrypt: boolean, selector?: string): Record<string, unknown> {
    return {
      Name: s.name,
      Type: v.type,
      Value: this.value(v, decrypt),
      Version: v.version,
      Selector: selector,
      LastModifiedDate: new Date(v.lastModified),
      ARN: this.arn(s),
      DataType: v.dataType,
    };
  }

  private value(v: Version, decrypt: boolean): string {
    if (v.type !== "SecureString" || decrypt) return v.value;
    // Opaque, stable stand-in for the KMS ciphertext AWS returns without WithDecryption.
    const digest = createHash("sha256").update(`${v.keyId}\0${v.version}\0${v.value}`).digest();
    return `AQICAH${Buffer.concat([digest, digest]).toString("base64")}`;
  }

  private arn(s: Stored): string {
    const path = s.name.startsWith("/") ? s.name : `/${s.name}`;
    // Public parameters carry no account id (reference §5.6).
    return `arn:aws:ssm:${this.cloud.region}:${s.public ? "" : this.cloud.accountId}:parameter${path}`;
  }

  private tier(requested: string | undefined, value: string, prev: Tier | undefined): Tier {
    if (requested !== undefined && !["Standard", "Advanced", "Intelligent-Tiering"].includes(requested)) {
      throw new AwsError(
        "ValidationException",
        `1 validation error detected: Value '${requested}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]`,
      );
    }
    let tier: Tier = requested === "Advanced" ? "Advanced" : requested === "Standard" ? "Standard" : (prev ?? "Standard");
    if (requested === "Intelligent-Tiering") tier = value.length > 4096 ? "Advanced" : (prev ?? "Standard");
    if (prev === "Advanced" && requested === "Standard")
      throw new AwsError(
        "ValidationException",
        "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier.",
      );
    const limit = tier === "Advanced" ? 8192 : 4096;
    if (value.length > limit) {
      throw new AwsError(
        "ValidationException",
        tier === "Standard"
          ? "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier."
          : "Advanced tier parameters support a maximum parameter value of 8192 characters.",
      );
    }
    return tier;
  }
}

function notFound(name: string): AwsError {
  return new AwsError("ParameterNotFound", `Parameter ${name} not found.`);
}

function resolveName(raw: string): string {
  const arn = /^arn:aws[a-z-]*:ssm:[^:]*:[^:]*:parameter(\/.*)$/.exec(raw);
  return arn ? arn[1]! : raw;
}

/** PutParameter name rules (AWS): characters, fully qualified hierarchies, reserved prefixes, 15 levels. */
function validateName(name: string, forWrite: boolean): void {
  if (name.length > 2048)
    throw new AwsError(
      "ValidationException",
      "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to 2048",
    );
  if (!NAME_CHARS.test(name)) {
    throw new AwsError(
      "ValidationException",
      'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol "/".',
    );
  }
  if (name.includes("/") && !name.startsWith("/"))
    throw new AwsError("ValidationException", "Parameter name must be a fully qualified name.");
  if (forWrite && /^\/?(aws|ssm)/i.test(name)) {
    throw new AwsError("ValidationException", `No access to reserved parameter name: ${name}.`);
  }
  if (name.split("/").filter(Boolean).length > 15) {
    throw new AwsError("HierarchyLevelLimitExceededException", "Parameter name hierarchy exceeds the maximum of 15 levels.");
  }
}

type StoredPredicate = (s: Stored) => boolean;

/** `ParameterFilters` ({Key, Option, Values}) limited to the keys the calling action allows. */
function readParameterFilters(p: Params, allowed: string[]): StoredPredicate[] {
  return p.list<{ Key?: string; Option?: string; Values?: string[] }>("ParameterFilters").map((f) => {
    const key = String(f?.Key ?? "");
    const option = f?.Option ?? "Equals";
    const values = f?.Values ?? [];
    const test = (actual: string | undefined) =>
      actual !== undefined &&
      values.some((v) =>
        option === "BeginsWith" ? actual.startsWith(v) : option === "Contains" ? actual.includes(v) : actual === v,
      );
    const latest = (s: Stored) => s.versions.at(-1)!;
    if (key.startsWith("tag:")) {
      const tag = key.slice(4);
      return (s) => (values.length === 0 ? s.tags.has(tag) : test(s.tags.get(tag)));
    }
    if (!allowed.includes(key))
      throw new AwsError(
        "InvalidFilterKey",
        `The following filter key is not valid: ${key}. Valid filter keys include: [${allowed.join(", ")}, tag:<key>].`,
      );
    switch (key) {
      case "Name":
        return (s) => test(s.name) || test(s.name.replace(/^\//, ""));
      case "Path": {
        return (s) =>
          values.some((v) => {
            const prefix = v.endsWith("/") ? v : `${v}/`;
            if (!s.name.startsWith(prefix)) return false;
            return option === "Recursive" || !s.name.slice(prefix.length).includes("/");
          });
      }
      case "Type":
        return (s) => test(latest(s).type);
      case "KeyId":
        return (s) => test(latest(s).keyId);
      case "Tier":
        return (s) => test(latest(s).tier);
      case "DataType":
        return (s) => test(latest(s).dataType);
      case "Label":
        return (s) => s.versions.some((v) => v.labels.some((l) => test(l)));
      default:
        return () => false;
    }
  });
}
