import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import {
  CreateImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplateVersionsCommand,
  type Image,
} from "@aws-sdk/client-ec2";
import { NotReadyError, StepFailedError } from "../errors.ts";
import { type Attempt, type BakeDeps, type BakePlan, type PollResult, Roles, Tags } from "./types.ts";
import { awsCode, guardedReconciler, reconciler, tagList, tagsOf } from "./util.ts";
import { checkDeadline, nextCheckSeconds, waitStart } from "./waits.ts";

export interface ImageInput {
  plan: BakePlan;
  attempt?: Attempt;
}

const FAILED_STATES = new Set(["failed", "invalid", "error", "deregistered"]);

/** Snapshot ids an image's block device mappings reference. */
export function snapshotsOf(image: Image): string[] {
  return (image.BlockDeviceMappings ?? []).map((b) => b.Ebs?.SnapshotId).filter((s): s is string => Boolean(s));
}

async function imagesBy(deps: Pick<BakeDeps, "ec2">, filters: { Name: string; Values: string[] }[]): Promise<Image[]> {
  const out: Image[] = [];
  let NextToken: string | undefined;
  do {
    const r = await deps.ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: filters, NextToken }));
    out.push(...(r.Images ?? []));
    NextToken = r.NextToken;
  } while (NextToken);
  return out.sort((a, b) => (b.CreationDate ?? "").localeCompare(a.CreationDate ?? ""));
}

async function describeImage(deps: Pick<BakeDeps, "ec2">, imageId: string): Promise<Image | undefined> {
  try {
    return (await deps.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0];
  } catch (err) {
    if (awsCode(err) === "InvalidAMIID.NotFound" || awsCode(err) === "InvalidAMIID.Unavailable") return undefined;
    throw err;
  }
}

/** Deregisters an AMI and deletes its snapshots; gone already is fine. */
export async function deleteImage(deps: Pick<BakeDeps, "ec2">, image: Image): Promise<string[]> {
  const snaps = snapshotsOf(image);
  try {
    await deps.ec2.send(new DeregisterImageCommand({ ImageId: image.ImageId! }));
  } catch (err) {
    if (awsCode(err) !== "InvalidAMIID.NotFound" && awsCode(err) !== "InvalidAMIID.Unavailable") throw err;
  }
  for (const s of snaps) {
    try {
      await deps.ec2.send(new DeleteSnapshotCommand({ SnapshotId: s }));
    } catch (err) {
      if (awsCode(err) !== "InvalidSnapshot.NotFound") throw err;
    }
  }
  return snaps;
}

export interface FindImageResult {
  found: boolean;
  imageId?: string;
  name?: string;
  /** The execution that baked the reused image. */
  bakedBy?: string;
}

/**
 * FindImage: an available, complete AMI already baked for the same service, commit and base AMI
 * (by any execution — including this one, on redrive) is reused instead of baking again.
 */
export const findImage = reconciler(
  "FindImage",
  async (input: ImageInput, deps: Pick<BakeDeps, "ec2">): Promise<FindImageResult> => {
    const { plan } = input;
    const [hit] = await imagesBy(deps, [
      { Name: `tag:${Tags.service}`, Values: [plan.service] },
      { Name: `tag:${Tags.commit}`, Values: [plan.commit] },
      { Name: `tag:${Tags.baseAmi}`, Values: [plan.baseAmi.imageId] },
      { Name: `tag:${Tags.role}`, Values: [Roles.image] },
      { Name: `tag:${Tags.complete}`, Values: ["true"] },
      { Name: "state", Values: ["available"] },
    ]);
    if (!hit?.ImageId) return { found: false };
    return {
      found: true,
      imageId: hit.ImageId,
      ...(hit.Name ? { name: hit.Name } : {}),
      bakedBy: tagsOf(hit.Tags)[Tags.execution] ?? "",
    };
  },
);

export interface CreateImageInput extends ImageInput {
  builderId: string;
}

/**
 * CreateImage: make sure an AMI named after this execution exists (pending or available).
 * CreateImage has no client token: the AMI name is the key, and `InvalidAMIName.Duplicate` means a
 * previous call got through — adopt that image. A failed AMI from an earlier attempt is deleted
 * and made again (redrive); one from this attempt fails the step.
 */
export const createImage = guardedReconciler(
  "CreateImage",
  async (input: CreateImageInput, deps: Pick<BakeDeps, "ec2" | "lock">): Promise<{ imageId: string; adopted: boolean }> => {
    const { plan } = input;
    const attempt = input.attempt?.redriveCount ?? 0;
    const [existing] = await imagesBy(deps, [{ Name: "name", Values: [plan.image.name] }]);
    if (existing?.ImageId) {
      if (!FAILED_STATES.has(existing.State ?? "")) return { imageId: existing.ImageId, adopted: true };
      const madeIn = Number(tagsOf(existing.Tags)[Tags.attempt] ?? "0");
      if (madeIn >= attempt) throw imageFailed(plan, existing, input.builderId);
      await deleteImage(deps, existing);
    }
    const tags = {
      ...plan.tags,
      [Tags.attempt]: String(attempt),
      [Tags.commit]: plan.commit,
      [Tags.baseAmi]: plan.baseAmi.imageId,
    };
    try {
      const r = await deps.ec2.send(
        new CreateImageCommand({
          InstanceId: input.builderId,
          Name: plan.image.name,
          Description: plan.image.description,
          // Reboot for file-system-consistent snapshots (the AWS default, spelled out).
          NoReboot: false,
          TagSpecifications: [
            { ResourceType: "image", Tags: tagList({ ...tags, [Tags.role]: Roles.image }) },
            { ResourceType: "snapshot", Tags: tagList({ ...tags, [Tags.role]: Roles.snapshot }) },
          ],
        }),
      );
      if (!r.ImageId) throw new StepFailedError("CreateImage returned no image id");
      return { imageId: r.ImageId, adopted: false };
    } catch (err) {
      if (awsCode(err) !== "InvalidAMIName.Duplicate") {
        if (awsCode(err) === "IncorrectInstanceState" || awsCode(err) === "InvalidInstanceID.NotFound")
          throw new StepFailedError(
            `CreateImage: builder ${input.builderId} cannot be imaged (${(err as Error).message}); start a new execution`,
            { cause: err },
          );
        throw err;
      }
      // "AMI name <name> is already in use by AMI ami-…": a previous call got through.
      const id = /\b(ami-[0-9a-f]+)\b/.exec((err as Error).message ?? "")?.[1];
      const [again] = await imagesBy(deps, [{ Name: "name", Values: [plan.image.name] }]);
      if (again?.ImageId) return { imageId: again.ImageId, adopted: true };
      if (id) return { imageId: id, adopted: true };
      throw new NotReadyError(`CreateImage: name ${plan.image.name} is taken but the image is not visible yet`, { cause: err });
    }
  },
);

function imageFailed(plan: BakePlan, image: Image, builderId: string | undefined): StepFailedError {
  const reason = image.StateReason ? `${image.StateReason.Code}: ${image.StateReason.Message}` : "no reason given";
  return new StepFailedError(
    `AMI ${image.ImageId} (${plan.image.name}) is ${image.State} (${reason}). ${builderId ? `The builder ${builderId} is kept; ` : ""}redrive deletes this AMI and creates it again`,
  );
}

export interface WaitImageInput extends ImageInput {
  imageId: string;
  builderId: string;
}

export interface ImageStatus extends PollResult {
  imageId: string;
  builderId: string;
}

/** AMI not visible right after CreateImage (reference §1.7): tolerated for this long. */
const VISIBILITY_GRACE_SECONDS = 60;

/**
 * WaitImage: done when the AMI is `available`. A failed AMI made in an earlier attempt is deleted
 * and made again from the same builder (redrive); if that builder is gone the step fails with
 * advice rather than silently re-running the install. A failed AMI made in this attempt fails
 * the step.
 */
export const waitImage = reconciler(
  "WaitImage",
  async (input: WaitImageInput, deps: Pick<BakeDeps, "ec2" | "clock">): Promise<ImageStatus> => {
    const { plan } = input;
    const cfg = plan.config;
    const attempt = input.attempt?.redriveCount ?? 0;
    const image = await describeImage(deps, input.imageId);
    const base = { imageId: input.imageId, builderId: input.builderId };
    if (!image) {
      const elapsed = (deps.clock.now() - waitStart(undefined, input.attempt)) / 1000;
      if (attempt === 0 && elapsed < VISIBILITY_GRACE_SECONDS)
        return { ...base, status: "pending", waitSeconds: 10, detail: `AMI ${input.imageId} not visible yet` };
      // Gone (deregistered by someone): make it again if the builder is still there.
      const again = await createImage({ plan, attempt: input.attempt, builderId: input.builderId }, deps);
      return {
        ...base,
        imageId: again.imageId,
        status: "pending",
        waitSeconds: cfg.expected.imageAvailableSeconds,
        detail: `AMI ${input.imageId} vanished; created ${again.imageId}`,
      };
    }
    if (image.State === "available") return { ...base, status: "done", waitSeconds: 0, detail: `AMI ${input.imageId} available` };
    if (FAILED_STATES.has(image.State ?? "")) {
      const madeIn = Number(tagsOf(image.Tags)[Tags.attempt] ?? "0");
      if (madeIn >= attempt) throw imageFailed(plan, image, input.builderId);
      // A redrive after a failed AMI: the builder must still be there to image it again.
      const builder = (
        await deps.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "instance-id", Values: [input.builderId] }] }))
      ).Reservations?.[0]?.Instances?.[0];
      if (!builder || !["running", "stopped"].includes(builder.State?.Name ?? ""))
        throw new StepFailedError(
          `WaitImage: AMI ${input.imageId} failed and builder ${input.builderId} is ${builder?.State?.Name ?? "gone"}; start a new execution`,
        );
      const again = await createImage({ plan, attempt: input.attempt, builderId: input.builderId }, deps);
      return {
        ...base,
        imageId: again.imageId,
        status: "pending",
        waitSeconds: cfg.expected.imageAvailableSeconds,
        detail: `AMI ${input.imageId} had failed in attempt ${madeIn}; created ${again.imageId}`,
      };
    }
    const created = image.CreationDate ? Date.parse(image.CreationDate) : undefined;
    const elapsed = checkDeadline(
      deps.clock.now(),
      waitStart(created, input.attempt),
      cfg.timeouts.imageAvailableSeconds,
      `WaitImage: AMI ${input.imageId} is still ${image.State}; the builder ${input.builderId} is kept`,
    );
    return {
      ...base,
      status: "pending",
      waitSeconds: nextCheckSeconds(elapsed, cfg.expected.imageAvailableSeconds, cfg.timeouts.imageAvailableSeconds),
      detail: `AMI ${input.imageId} is ${image.State}`,
    };
  },
);

export interface TagImageInput extends ImageInput {
  imageId: string;
}

/** The provenance tags of a complete AMI. */
export function provenanceTags(plan: BakePlan, image: Image, now: Date): Record<string, string> {
  return {
    ...plan.tags,
    [Tags.role]: Roles.image,
    [Tags.commit]: plan.commit,
    [Tags.baseAmi]: plan.baseAmi.imageId,
    [Tags.repository]: plan.repository,
    [Tags.branch]: plan.branch,
    [Tags.trigger]: plan.trigger,
    ...(plan.requestedBy ? { [Tags.requestedBy]: plan.requestedBy } : {}),
    // The image's own creation time keeps a retried TagImage writing the same value.
    [Tags.builtAt]: image.CreationDate ?? now.toISOString(),
    [Tags.complete]: "true",
  };
}

/** TagImage: write provenance on the AMI and its snapshots, and mark the AMI complete (reusable). */
export const tagImage = guardedReconciler(
  "TagImage",
  async (
    input: TagImageInput,
    deps: Pick<BakeDeps, "ec2" | "clock" | "lock">,
  ): Promise<{ imageId: string; tags: Record<string, string> }> => {
    const image = await describeImage(deps, input.imageId);
    if (!image) throw new StepFailedError(`TagImage: AMI ${input.imageId} does not exist`);
    if (image.State !== "available") throw new StepFailedError(`TagImage: AMI ${input.imageId} is ${image.State}, not available`);
    const tags = provenanceTags(input.plan, image, deps.clock.date());
    const snaps = snapshotsOf(image);
    if (snaps.length > 0) {
      const { [Tags.complete]: _c, ...snapTags } = tags;
      await deps.ec2.send(
        new CreateTagsCommand({
          Resources: snaps,
          Tags: tagList({ ...snapTags, [Tags.role]: Roles.snapshot, [Tags.image]: input.imageId }),
        }),
      );
    }
    // The image last: `kiln:complete` is the commit point FindImage and the janitor rely on.
    await deps.ec2.send(new CreateTagsCommand({ Resources: [input.imageId], Tags: tagList(tags) }));
    return { imageId: input.imageId, tags };
  },
);

export interface PruneCandidate {
  imageId: string;
  name?: string;
  creationDate: string;
}

export interface PruneSelection {
  keep: { imageId: string; why: string }[];
  remove: string[];
}

/**
 * Which complete AMIs of a service to delete: everything beyond the newest `retain`, except
 * the ones in `protect` (the image this execution produced or reuses, images a launch-template
 * version used by an Auto Scaling group references, images instances run). Protected images do
 * count towards `retain` like any other; older protected ones are kept in addition.
 */
export function selectPrunable(images: PruneCandidate[], retain: number, protect: Map<string, string>): PruneSelection {
  const sorted = [...images].sort((a, b) => b.creationDate.localeCompare(a.creationDate) || b.imageId.localeCompare(a.imageId));
  const keep: PruneSelection["keep"] = [];
  const remove: string[] = [];
  sorted.forEach((img, i) => {
    const why = protect.get(img.imageId);
    if (why) keep.push({ imageId: img.imageId, why });
    else if (i < retain) keep.push({ imageId: img.imageId, why: `among the newest ${retain}` });
    else remove.push(img.imageId);
  });
  return { keep, remove };
}

/** AMIs referenced by launch-template versions Auto Scaling groups (and their instances) use. */
async function imagesInUse(deps: Pick<BakeDeps, "ec2" | "autoscaling">, candidates: string[]): Promise<Map<string, string>> {
  const used = new Map<string, string>();
  if (deps.autoscaling) {
    const versions = new Map<string, Set<string>>(); // template id or name → versions
    const add = (key: string | undefined, version: string | undefined) => {
      if (!key) return;
      if (!versions.has(key)) versions.set(key, new Set());
      versions.get(key)!.add(version ?? "$Default");
    };
    let NextToken: string | undefined;
    do {
      const r = await deps.autoscaling.send(new DescribeAutoScalingGroupsCommand({ NextToken }));
      for (const g of r.AutoScalingGroups ?? []) {
        const lt = g.LaunchTemplate ?? g.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
        add(lt?.LaunchTemplateId ?? lt?.LaunchTemplateName, lt?.Version);
        for (const i of g.Instances ?? [])
          add(i.LaunchTemplate?.LaunchTemplateId ?? i.LaunchTemplate?.LaunchTemplateName, i.LaunchTemplate?.Version);
      }
      NextToken = r.NextToken;
    } while (NextToken);
    for (const [key, vs] of versions) {
      const r = await deps.ec2.send(
        new DescribeLaunchTemplateVersionsCommand({
          ...(key.startsWith("lt-") ? { LaunchTemplateId: key } : { LaunchTemplateName: key }),
          Versions: [...vs],
        }),
      );
      for (const v of r.LaunchTemplateVersions ?? []) {
        const img = v.LaunchTemplateData?.ImageId;
        if (img) used.set(img, `used by launch template ${v.LaunchTemplateName ?? key} version ${v.VersionNumber}`);
      }
    }
  }
  if (candidates.length > 0) {
    const r = await deps.ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: "image-id", Values: candidates },
          { Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped"] },
        ],
      }),
    );
    for (const res of r.Reservations ?? [])
      for (const i of res.Instances ?? [])
        if (i.ImageId && !used.has(i.ImageId)) used.set(i.ImageId, `run by instance ${i.InstanceId}`);
  }
  return used;
}

export interface PruneInput extends ImageInput {
  /** The image this execution baked or reuses (the one about to go live). */
  imageId: string;
}

/**
 * PruneImages: delete the service's complete AMIs (and their snapshots) beyond the retention
 * count — never one a launch-template version an Auto Scaling group uses references, one an
 * instance runs, nor this execution's image.
 */
export const pruneImages = guardedReconciler(
  "PruneImages",
  async (
    input: PruneInput,
    deps: Pick<BakeDeps, "ec2" | "autoscaling" | "lock">,
  ): Promise<PruneSelection & { deletedSnapshots: string[] }> => {
    const { plan } = input;
    const images = await imagesBy(deps, [
      { Name: `tag:${Tags.service}`, Values: [plan.service] },
      { Name: `tag:${Tags.role}`, Values: [Roles.image] },
      { Name: `tag:${Tags.complete}`, Values: ["true"] },
    ]);
    const byId = new Map(images.map((i) => [i.ImageId!, i]));
    const protect = await imagesInUse(deps, [...byId.keys()]);
    protect.set(input.imageId, "this deployment's image");
    const sel = selectPrunable(
      images
        .filter((i) => i.ImageId)
        .map((i) => ({ imageId: i.ImageId!, ...(i.Name ? { name: i.Name } : {}), creationDate: i.CreationDate ?? "" })),
      plan.image.retain,
      protect,
    );
    const deletedSnapshots: string[] = [];
    for (const id of sel.remove) deletedSnapshots.push(...(await deleteImage(deps, byId.get(id)!)));
    return { ...sel, deletedSnapshots };
  },
);
