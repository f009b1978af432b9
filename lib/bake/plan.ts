import { createHash } from "node:crypto";
import { DescribeImagesCommand, type Image } from "@aws-sdk/client-ec2";
import { GetParameterCommand } from "@aws-sdk/client-ssm";
import { environmentsOf, loadConfig, serviceConfig } from "../config/load.ts";
import type { KilnConfig, ServiceConfig } from "../config/schema.ts";
import { ConfigInvalidError, InvalidInputError, StepFailedError } from "../errors.ts";
import { clientToken } from "../names.ts";
import { type BakeDeps, type BakePlan, type DeployInput, type ExecutionRef, type ResolvedBaseAmi, Tags } from "./types.ts";
import { awsCode, reconciler, tagValue } from "./util.ts";

function hash8(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 8);
}

/** `20260105T090000Z` */
function compactTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new InvalidInputError(`execution start time ${JSON.stringify(iso)} is not a date`);
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/**
 * AMI name for this execution: `kiln-<execution name>-<start time>`. AMI names are unique per
 * account and Region and CreateImage has no client token, so the name is the idempotency key
 * (a retried CreateImage adopts `InvalidAMIName.Duplicate`). The start time keeps a name reused
 * by Step Functions after 90 days from colliding with an old AMI. ≤ 128 chars, AMI charset.
 */
export function amiName(execution: ExecutionRef): string {
  const n = `kiln-${execution.name}-${compactTime(execution.startedAt)}`.replace(/[^A-Za-z0-9()[\] ./'@_-]/g, "-");
  return n.length <= 128 ? n : `${n.slice(0, 119)}-${hash8(n)}`;
}

/** The branch a non-push deployment builds: the one mapped to `environment` (default production), else the first configured. */
export function defaultBranch(cfg: ServiceConfig, environment = "production"): string {
  const entries = Object.entries(cfg.branches);
  return (entries.find(([, env]) => env === environment) ?? entries[0])![0];
}

/**
 * The environment a deployment goes to: the input's (which the queue always sets) — it must be the
 * one its branch maps to — else its branch's.
 */
export function environmentOfInput(input: DeployInput, cfg: ServiceConfig): string {
  const envs = environmentsOf(cfg);
  if (input.environment !== undefined && !envs.includes(input.environment))
    throw new InvalidInputError(`environment ${input.environment} is not one of service ${input.service}'s (${envs.join(", ")})`);
  const branch = input.branch ?? defaultBranch(cfg, input.environment);
  const fromBranch = Object.hasOwn(cfg.branches, branch) ? cfg.branches[branch] : undefined;
  if (!fromBranch)
    throw new InvalidInputError(
      `branch ${branch} does not deploy service ${input.service} (configured: ${Object.keys(cfg.branches).join(", ")})`,
    );
  if (input.environment !== undefined && input.environment !== fromBranch)
    throw new InvalidInputError(
      `branch ${branch} deploys environment ${fromBranch} of ${input.service}, not ${input.environment}`,
    );
  return fromBranch;
}

/**
 * Pure part of Prepare: validates the request against the service's configuration and derives
 * every name, token and tag of the execution.
 */
export function derivePlan(input: DeployInput, execution: ExecutionRef, cfg: ServiceConfig, baseAmi: ResolvedBaseAmi): BakePlan {
  // GitHub repository names are case-insensitive.
  if (input.repository !== undefined && input.repository.toLowerCase() !== cfg.repository.toLowerCase())
    throw new InvalidInputError(
      `repository ${input.repository} is not the one configured for service ${input.service} (${cfg.repository})`,
    );
  if (input.trigger === "push" && input.branch === undefined)
    throw new InvalidInputError("a push deployment needs the branch that was pushed");
  const environment = environmentOfInput(input, cfg);
  const branch = input.branch ?? defaultBranch(cfg, environment);
  const name = amiName(execution);
  const tags: Record<string, string> = {
    ...cfg.tags,
    [Tags.service]: input.service,
    [Tags.execution]: execution.name,
    [Tags.executionArn]: execution.arn,
  };
  return {
    version: 1,
    service: input.service,
    commit: input.commit,
    trigger: input.trigger,
    repository: cfg.repository,
    branch,
    environment,
    ...(input.seq !== undefined ? { seq: input.seq } : {}),
    ...(input.requestedBy ? { requestedBy: tagValue(input.requestedBy) } : {}),
    execution,
    region: cfg.region,
    baseAmi,
    image: {
      name,
      description: `kiln ${input.service} ${input.commit.slice(0, 12)} on ${baseAmi.imageId} (${execution.name})`.slice(0, 255),
      retain: cfg.image.retain,
    },
    builder: {
      name: `kiln-${input.service}-builder-${input.commit.slice(0, 12)}`,
      clientToken: clientToken(execution.name, "LaunchBuilder"),
      instanceType: cfg.builder.instanceType,
      ...(cfg.builder.subnet ? { subnet: cfg.builder.subnet } : {}),
      securityGroups: cfg.builder.securityGroups,
      instanceProfile: cfg.builder.instanceProfile,
      rootDevice: {
        deviceName: baseAmi.rootDeviceName,
        encrypted: cfg.image.encrypted,
        ...(cfg.image.kmsKeyId ? { kmsKeyId: cfg.image.kmsKeyId } : {}),
        ...(cfg.builder.rootVolumeGiB ? { volumeSizeGiB: cfg.builder.rootVolumeGiB } : {}),
      },
    },
    env: { KILN_COMMIT: input.commit, KILN_REPO: cfg.repository, KILN_SERVICE: input.service, KILN_BRANCH: branch },
    tags,
    config: cfg,
  };
}

/** Resolves the configured base AMI to an available image (SSM parameter, id, or newest name match). */
export async function resolveBaseAmi(cfg: ServiceConfig, deps: Pick<BakeDeps, "ec2" | "ssm">): Promise<ResolvedBaseAmi> {
  const b = cfg.baseAmi;
  let imageId: string;
  let source: string;
  let image: Image | undefined;
  if ("ssmParameter" in b) {
    source = `ssm:${b.ssmParameter}`;
    try {
      const r = await deps.ssm.send(new GetParameterCommand({ Name: b.ssmParameter }));
      imageId = r.Parameter?.Value ?? "";
    } catch (err) {
      if (awsCode(err) === "ParameterNotFound")
        throw new ConfigInvalidError(`base AMI parameter ${b.ssmParameter} does not exist in ${cfg.region}`, { cause: err });
      throw err;
    }
    if (!/^ami-[0-9a-f]+$/.test(imageId))
      throw new StepFailedError(`base AMI parameter ${b.ssmParameter} holds ${JSON.stringify(imageId)}, not an AMI id`);
  } else if ("imageId" in b) {
    source = "id";
    imageId = b.imageId;
  } else {
    source = `filter:${b.name}`;
    const r = await deps.ec2.send(
      new DescribeImagesCommand({
        Owners: b.owners,
        Filters: [
          { Name: "name", Values: [b.name] },
          { Name: "state", Values: ["available"] },
          { Name: "architecture", Values: [cfg.architecture] },
        ],
      }),
    );
    image = (r.Images ?? []).sort((x, y) => (y.CreationDate ?? "").localeCompare(x.CreationDate ?? ""))[0];
    if (!image?.ImageId)
      throw new ConfigInvalidError(`no available ${cfg.architecture} AMI named ${b.name} owned by ${b.owners.join(", ")}`);
    imageId = image.ImageId;
  }
  if (!image) {
    try {
      image = (await deps.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0];
    } catch (err) {
      if (awsCode(err) === "InvalidAMIID.NotFound" || awsCode(err) === "InvalidAMIID.Unavailable")
        throw new StepFailedError(`base AMI ${imageId} (${source}) does not exist or is no longer available`, { cause: err });
      throw err;
    }
  }
  if (!image || (image.State && image.State !== "available"))
    throw new StepFailedError(`base AMI ${imageId} (${source}) is ${image?.State ?? "missing"}, not available`);
  if (image.Architecture && image.Architecture !== cfg.architecture)
    throw new ConfigInvalidError(
      `base AMI ${imageId} is ${image.Architecture} but the service is configured for ${cfg.architecture}`,
    );
  return {
    imageId,
    source,
    ...(image.Name ? { name: image.Name } : {}),
    rootDeviceName: image.RootDeviceName ?? "/dev/xvda",
    ...(image.Architecture ? { architecture: image.Architecture } : {}),
  };
}

export interface PrepareInput {
  input: DeployInput;
  execution: ExecutionRef;
}

/**
 * Prepare: load and validate the service's configuration, resolve the base AMI, and derive the
 * plan. Self-contained output: later steps never read the configuration again.
 */
export const prepare = reconciler(
  "Prepare",
  async (p: PrepareInput, deps: Pick<BakeDeps, "ec2" | "ssm"> & { config?: KilnConfig }): Promise<{ plan: BakePlan }> => {
    const config = deps.config ?? loadConfig();
    // The environment's settings: the service's with the environment's overrides.
    const cfg = serviceConfig(config, p.input.service, environmentOfInput(p.input, serviceConfig(config, p.input.service)));
    const baseAmi = await resolveBaseAmi(cfg, deps);
    return { plan: derivePlan(p.input, p.execution, cfg, baseAmi) };
  },
);
