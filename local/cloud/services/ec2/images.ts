/**
 * AMIs and their EBS snapshots. A snapshot owns a filesystem directory (the image's root volume);
 * an image points at its root snapshot. Deregistering an image leaves its snapshots, as on AWS.
 *
 * Public Amazon Linux 2023 images (x86_64, arm64) are seeded at start; the admin API publishes
 * newer ones (`POST /_kiln/ec2/publish-base-image`) the way AWS releases a new AL2023 build.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { APP_ROOTFS } from "../../../app/server.ts";
import type { FaultRule } from "../../faults.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { RequestContext } from "../../protocol/types.ts";
import { AMAZON_OWNER_ID, type Ec2Context } from "./context.ts";
import {
  applyFilters,
  dryRun,
  type FilterTable,
  paginate,
  readFilters,
  readTagSpecs,
  type Sequenced,
  tagSet,
  tagsFor,
  wellFormedId,
} from "./util.ts";

export type Architecture = "x86_64" | "arm64";
export type ImageState = "pending" | "available" | "failed" | "deregistered";
export type SnapshotState = "pending" | "completed" | "error";

export interface Snapshot extends Sequenced {
  id: string;
  volumeId: string;
  state: SnapshotState;
  startTime: Date;
  /** When the snapshot completes (drives `progress`). */
  doneAt: number;
  completionTime?: Date;
  description: string;
  ownerId: string;
  ownerAlias?: string;
  volumeSize: number;
  stateMessage?: string;
  tags: Map<string, string>;
  /** The filesystem this snapshot holds. */
  dir: string;
  deleted: boolean;
}

export interface Image extends Sequenced {
  id: string;
  name: string;
  description?: string;
  ownerId: string;
  ownerAlias?: string;
  isPublic: boolean;
  arch: Architecture;
  state: ImageState;
  stateReason?: { code: string; message: string };
  creationDate: Date;
  rootSnapshotId: string;
  sourceInstanceId?: string;
  imageLocation: string;
  tags: Map<string, string>;
  lastLaunchedTime?: Date;
  /** Before this clock time DescribeImages does not show the image yet (eventual consistency). */
  visibleAt?: number;
}

/** What CreateImage needs to know about its source instance. */
export interface ImageSource {
  id: string;
  state: string;
  rootDir: string;
  arch: Architecture;
  rootVolumeId: string;
  /** Clock time the instance began shutting down, if it did. */
  shutdownAt?: number;
}

/** A public base image as the SSM public parameters publish it. */
export interface BaseImage {
  imageId: string;
  name: string;
  arch: Architecture;
  /** ISO-8601 instant the image was published. */
  publishedAt: string;
}

const ROOT_DEVICE = "/dev/xvda";
const AL2023_RELEASE = "2023.6";
const NAME_PATTERN = /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/;
const DAY_MS = 86_400_000;

export class ImageStore {
  private readonly images = new Map<string, Image>();
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly base: BaseImage[] = [];

  constructor(
    private readonly ctx: Ec2Context,
    private readonly instance: (id: string) => ImageSource | undefined,
  ) {
    // A new account sees AL2023 images that were published a while ago (`ec2.baseImageAgeMs`).
    const at = new Date(ctx.cloud.clock.now() - ctx.cloud.setting("ec2.baseImageAgeMs", 7 * DAY_MS));
    this.publishBase("x86_64", at);
    this.publishBase("arm64", at);
  }

  baseImages(): BaseImage[] {
    return this.base.map((b) => ({ ...b }));
  }

  /**
   * Publishes a new public AL2023 image for `arch`: its name carries the publication date
   * (`al2023-ami-2023.6.YYYYMMDD.N-kernel-6.1-<arch>`), N counting builds of the same day.
   */
  publishBase(arch: Architecture, at: Date = this.ctx.now()): BaseImage {
    const day = at.toISOString().slice(0, 10).replace(/-/g, "");
    let build = 0;
    const nameOf = (n: number) => `al2023-ami-${AL2023_RELEASE}.${day}.${n}-kernel-6.1-${arch}`;
    while ([...this.images.values()].some((i) => i.name === nameOf(build) && i.ownerId === AMAZON_OWNER_ID)) build++;
    const name = nameOf(build);
    const imageId = this.ctx.id("ami");
    const snap = this.newSnapshot({
      ownerId: AMAZON_OWNER_ID,
      ownerAlias: "amazon",
      volumeId: "vol-ffffffff",
      description: `Snapshot of ${name}`,
      state: "completed",
      at,
    });
    this.ctx.disks.copy(APP_ROOTFS, snap.dir, { immutable: true });
    writeFileSync(join(snap.dir, "etc", "kiln-base-image"), `${name}\n`);
    const image: Image = {
      id: imageId,
      name,
      description: `Amazon Linux 2023 AMI ${AL2023_RELEASE}.${day}.${build} ${arch} HVM kernel-6.1`,
      ownerId: AMAZON_OWNER_ID,
      ownerAlias: "amazon",
      isPublic: true,
      arch,
      state: "available",
      creationDate: at,
      rootSnapshotId: snap.id,
      imageLocation: `amazon/${name}`,
      tags: new Map(),
      seq: this.ctx.seq(),
    };
    this.images.set(imageId, image);
    const b: BaseImage = { imageId, name, arch, publishedAt: at.toISOString() };
    this.base.push(b);
    return { ...b };
  }

  /** A registered (not deregistered) image. */
  image(id: string): Image | undefined {
    const i = this.images.get(id);
    return i && i.state !== "deregistered" ? i : undefined;
  }

  snapshot(id: string): Snapshot | undefined {
    const s = this.snapshots.get(id);
    return s && !s.deleted ? s : undefined;
  }

  /** The filesystem an instance launched from `image` starts with. */
  rootDirOf(image: Image): string {
    return this.snapshots.get(image.rootSnapshotId)!.dir;
  }

  /** Throws the error RunInstances gives for an image id it cannot launch. */
  launchable(id: string): Image {
    if (!wellFormedId(id, "ami")) throw new AwsError("InvalidAMIID.Malformed", `Invalid id: "${id}" (expecting "ami-...")`);
    const image = this.image(id);
    if (!image) throw new AwsError("InvalidAMIID.NotFound", `The image id '[${id}]' does not exist`);
    if (image.state !== "available")
      throw new AwsError("InvalidAMIID.Unavailable", `The image id '[${id}]' is not available (state ${image.state})`);
    if (!image.isPublic && image.ownerId !== this.ctx.accountId)
      throw new AwsError("InvalidAMIID.NotFound", `The image id '[${id}]' does not exist`);
    return image;
  }

  /** Tag maps of images and snapshots (CreateTags on `ami-…` / `snap-…`). */
  taggable(id: string): Map<string, string> | undefined {
    return this.image(id)?.tags ?? this.snapshot(id)?.tags;
  }

  private newSnapshot(o: {
    ownerId: string;
    ownerAlias?: string;
    volumeId: string;
    description: string;
    state: SnapshotState;
    at: Date;
    doneAt?: number;
    tags?: Map<string, string>;
  }): Snapshot {
    const id = this.ctx.id("snap");
    const snap: Snapshot = {
      id,
      volumeId: o.volumeId,
      state: o.state,
      startTime: o.at,
      doneAt: o.doneAt ?? o.at.getTime(),
      completionTime: o.state === "completed" ? o.at : undefined,
      description: o.description,
      ownerId: o.ownerId,
      ownerAlias: o.ownerAlias,
      volumeSize: 8,
      tags: o.tags ?? new Map(),
      dir: this.ctx.disks.snapshotDir(id),
      deleted: false,
      seq: this.ctx.seq(),
    };
    this.snapshots.set(id, snap);
    return snap;
  }

  private emitImageState(image: Image): void {
    this.ctx.cloud.emit({
      source: "aws.ec2",
      detailType: "EC2 AMI State Change",
      detail: {
        RequestId: this.ctx.cloud.hex(8),
        ImageId: image.id,
        State: image.state,
        ...(image.state === "failed" ? { ErrorMessage: image.stateReason?.message ?? "" } : {}),
      },
      resources: [`arn:aws:ec2:${this.ctx.region}::image/${image.id}`],
    });
  }

  private progress(s: Snapshot): string {
    if (s.state !== "pending") return s.state === "completed" ? "100%" : "0%";
    const total = Math.max(1, s.doneAt - s.startTime.getTime());
    const pct = Math.floor(((this.ctx.cloud.clock.now() - s.startTime.getTime()) / total) * 100);
    return `${Math.max(0, Math.min(99, pct))}%`;
  }

  private renderImage(i: Image) {
    const snap = this.snapshots.get(i.rootSnapshotId);
    return {
      imageId: i.id,
      imageLocation: i.imageLocation,
      imageState: i.state,
      imageOwnerId: i.ownerId,
      creationDate: i.creationDate.toISOString(),
      isPublic: i.isPublic,
      architecture: i.arch,
      imageType: "machine",
      name: i.name,
      description: i.description,
      imageOwnerAlias: i.ownerAlias,
      rootDeviceType: "ebs",
      rootDeviceName: ROOT_DEVICE,
      blockDeviceMapping: [
        {
          deviceName: ROOT_DEVICE,
          ebs: {
            deleteOnTermination: true,
            snapshotId: i.rootSnapshotId,
            volumeSize: snap?.volumeSize ?? 8,
            volumeType: "gp3",
            encrypted: false,
          },
        },
      ],
      virtualizationType: "hvm",
      hypervisor: "xen",
      enaSupport: true,
      sriovNetSupport: "simple",
      bootMode: "uefi-preferred",
      imdsSupport: "v2.0",
      platformDetails: "Linux/UNIX",
      usageOperation: "RunInstances",
      stateReason: i.stateReason,
      sourceInstanceId: i.sourceInstanceId,
      lastLaunchedTime: i.lastLaunchedTime?.toISOString(),
      tagSet: tagSet(i.tags),
    };
  }

  private renderSnapshot(s: Snapshot) {
    return {
      snapshotId: s.id,
      volumeId: s.volumeId,
      status: s.state,
      statusMessage: s.stateMessage,
      startTime: s.startTime,
      completionTime: s.completionTime,
      progress: this.progress(s),
      ownerId: s.ownerId,
      ownerAlias: s.ownerAlias,
      description: s.description,
      volumeSize: s.volumeSize,
      encrypted: false,
      storageTier: "standard",
      tagSet: tagSet(s.tags),
    };
  }

  /** Image ids a caller names that are unknown: the NotFound message lists them all. */
  private notFound(ids: string[]): AwsError {
    return ids.length === 1
      ? new AwsError("InvalidAMIID.NotFound", `The image id '[${ids[0]}]' does not exist`)
      : new AwsError("InvalidAMIID.NotFound", `The image ids '[${ids.join(", ")}]' do not exist`);
  }

  readonly actions = {
    CreateImage: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const instanceId = p.str("InstanceId", { required: true });
      const name = p.str("Name", { required: true });
      const description = p.str("Description", { max: 255 });
      const noReboot = p.bool("NoReboot", false)!;
      const specs = readTagSpecs(p, ["image", "snapshot"]);
      dryRun(p);
      if (!NAME_PATTERN.test(name)) {
        throw new AwsError(
          "InvalidAMIName.Malformed",
          `AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'`,
        );
      }
      const src = this.instance(instanceId);
      if (!src) throw new AwsError("InvalidInstanceID.NotFound", `The instance ID '${instanceId}' does not exist`);
      if (src.state !== "running" && src.state !== "stopped") {
        throw new AwsError(
          "IncorrectInstanceState",
          `The instance '${instanceId}' is not in a state from which it can be imaged (it is ${src.state}).`,
        );
      }
      const dup = [...this.images.values()].find(
        (i) => i.name === name && i.ownerId === this.ctx.accountId && i.state !== "deregistered",
      );
      if (dup) throw new AwsError("InvalidAMIName.Duplicate", `AMI name ${name} is already in use by AMI ${dup.id}`);

      const now = this.ctx.now();
      const imageId = this.ctx.id("ami");
      // Without NoReboot AWS shuts the instance down and restarts it before snapshotting.
      const rebootMs = noReboot ? 0 : this.ctx.duration("imageRebootMs", 60_000);
      const totalMs = rebootMs + this.ctx.duration("imageMs", 300_000, 0.2);
      const snap = this.newSnapshot({
        ownerId: this.ctx.accountId,
        volumeId: src.rootVolumeId,
        description: `Created by CreateImage(${instanceId}) for ${imageId}`,
        state: "pending",
        at: now,
        doneAt: now.getTime() + totalMs,
        tags: tagsFor(specs, "snapshot"),
      });
      // The filesystem is captured now (point in time); `run/` is tmpfs and never captured.
      this.ctx.disks.copy(src.rootDir, snap.dir, { skipVolatile: true });
      const image: Image = {
        id: imageId,
        name,
        description,
        ownerId: this.ctx.accountId,
        isPublic: false,
        arch: src.arch,
        state: "pending",
        creationDate: now,
        rootSnapshotId: snap.id,
        sourceInstanceId: instanceId,
        imageLocation: `${this.ctx.accountId}/${name}`,
        tags: tagsFor(specs, "image"),
        // Right after CreateImage, DescribeImages may not know the id yet (opt-in lag).
        visibleAt: now.getTime() + this.ctx.cloud.setting("ec2.imageDescribeDelayMs", 0),
        seq: this.ctx.seq(),
      };
      this.images.set(imageId, image);
      const fault = this.ctx.cloud.faults.match("ami", { imageId, instanceId, name });
      this.emitImageState(image);
      this.ctx.after(totalMs, () => this.finishImage(image, snap, fault, rebootMs ? now.getTime() + rebootMs : undefined));
      return { imageId };
    },

    DescribeImages: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("ImageId");
      const owners = p.list<string>("Owner");
      dryRun(p);
      for (const id of ids)
        if (!wellFormedId(id, "ami")) throw new AwsError("InvalidAMIID.Malformed", `Invalid id: "${id}" (expecting "ami-...")`);
      const now = this.ctx.cloud.clock.now();
      const shown = (i: Image | undefined): i is Image => i !== undefined && (i.visibleAt ?? 0) <= now;
      const missing = ids.filter((id) => !shown(this.image(id)));
      if (missing.length) throw this.notFound(missing);
      let listed = ids.length
        ? ids.map((id) => this.image(id)!)
        : [...this.images.values()].filter((i) => i.state !== "deregistered" && shown(i));
      listed = listed.filter((i) => i.isPublic || i.ownerId === this.ctx.accountId);
      if (owners.length) {
        listed = listed.filter((i) =>
          owners.some((o) =>
            o === "self" ? i.ownerId === this.ctx.accountId : /^\d{12}$/.test(o) ? i.ownerId === o : i.ownerAlias === o,
          ),
        );
      }
      const table: FilterTable<Image> = {
        name: (i) => i.name,
        state: (i) => i.state,
        "image-id": (i) => i.id,
        architecture: (i) => i.arch,
        "owner-id": (i) => i.ownerId,
        "owner-alias": (i) => i.ownerAlias,
        "is-public": (i) => i.isPublic,
        "creation-date": (i) => i.creationDate.toISOString(),
        description: (i) => i.description,
        "image-type": () => "machine",
        "root-device-type": () => "ebs",
        "root-device-name": () => ROOT_DEVICE,
        "platform-details": () => "Linux/UNIX",
        "virtualization-type": () => "hvm",
        hypervisor: () => "xen",
        "source-instance-id": (i) => i.sourceInstanceId,
        "block-device-mapping.snapshot-id": (i) => i.rootSnapshotId,
        "block-device-mapping.device-name": () => ROOT_DEVICE,
        "manifest-location": (i) => i.imageLocation,
        "ena-support": () => true,
        "boot-mode": () => "uefi-preferred",
      };
      const filtered = applyFilters(listed, readFilters(p), table, (i) => i.tags);
      const { page, nextToken } = paginate(filtered, p, { min: 6, max: 1000 });
      return { imagesSet: page.map((i) => this.renderImage(i)), nextToken };
    },

    DeregisterImage: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const id = p.str("ImageId", { required: true });
      const deleteSnapshots = p.bool("DeleteAssociatedSnapshots", false);
      dryRun(p);
      if (!wellFormedId(id, "ami")) throw new AwsError("InvalidAMIID.Malformed", `Invalid id: "${id}" (expecting "ami-...")`);
      const image = this.image(id);
      if (!image) throw this.notFound([id]);
      if (image.ownerId !== this.ctx.accountId)
        throw new AwsError("UnauthorizedOperation", `You are not authorized to deregister image ${id}.`, 403);
      image.state = "deregistered";
      this.emitImageState(image);
      // Snapshots survive unless asked for: AWS keeps (and bills) them.
      const results: { snapshotId: string; returnCode: string }[] = [];
      if (deleteSnapshots) {
        const snap = this.snapshot(image.rootSnapshotId);
        if (snap) {
          if (this.usedBy(snap.id)) results.push({ snapshotId: snap.id, returnCode: "skipped" });
          else {
            this.deleteSnapshot(snap);
            results.push({ snapshotId: snap.id, returnCode: "success" });
          }
        }
      }
      return { return: true, deleteSnapshotResultSet: deleteSnapshots ? results : undefined };
    },

    DescribeSnapshots: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("SnapshotId");
      const owners = p.list<string>("Owner");
      dryRun(p);
      for (const id of ids) {
        if (!wellFormedId(id, "snap"))
          throw new AwsError("InvalidParameterValue", `Value (${id}) for parameter snapshotId is invalid. Expected: 'snap-...'.`);
        if (!this.snapshot(id)) throw new AwsError("InvalidSnapshot.NotFound", `The snapshot '${id}' does not exist.`);
      }
      let listed = ids.length ? ids.map((id) => this.snapshot(id)!) : [...this.snapshots.values()].filter((s) => !s.deleted);
      if (owners.length) {
        listed = listed.filter((s) =>
          owners.some((o) =>
            o === "self" ? s.ownerId === this.ctx.accountId : /^\d{12}$/.test(o) ? s.ownerId === o : s.ownerAlias === o,
          ),
        );
      } else if (!ids.length) {
        // The base images' snapshots are not public: without Owner only your own are listed.
        listed = listed.filter((s) => s.ownerId === this.ctx.accountId);
      }
      const table: FilterTable<Snapshot> = {
        "snapshot-id": (s) => s.id,
        status: (s) => s.state,
        "owner-id": (s) => s.ownerId,
        "owner-alias": (s) => s.ownerAlias,
        "volume-id": (s) => s.volumeId,
        description: (s) => s.description,
        progress: (s) => this.progress(s),
        "start-time": (s) => s.startTime.toISOString(),
        "volume-size": (s) => s.volumeSize,
        encrypted: () => false,
        "storage-tier": () => "standard",
      };
      const filtered = applyFilters(listed, readFilters(p), table, (s) => s.tags);
      const { page, nextToken } = paginate(filtered, p, { min: 5, max: 1000 });
      return { snapshotSet: page.map((s) => this.renderSnapshot(s)), nextToken };
    },

    DeleteSnapshot: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const id = p.str("SnapshotId", { required: true });
      dryRun(p);
      if (!wellFormedId(id, "snap"))
        throw new AwsError("InvalidParameterValue", `Value (${id}) for parameter snapshotId is invalid. Expected: 'snap-...'.`);
      const snap = this.snapshot(id);
      if (!snap) throw new AwsError("InvalidSnapshot.NotFound", `The snapshot '${id}' does not exist.`);
      if (snap.ownerId !== this.ctx.accountId)
        throw new AwsError("UnauthorizedOperation", `You are not authorized to delete snapshot ${id}.`, 403);
      const user = this.usedBy(id);
      if (user) throw new AwsError("InvalidSnapshot.InUse", `The snapshot ${id} is currently in use by ${user.id}`);
      this.deleteSnapshot(snap);
      return { return: true };
    },
  };

  /** The registered image whose root is this snapshot, if any. */
  private usedBy(snapshotId: string): Image | undefined {
    return [...this.images.values()].find((i) => i.state !== "deregistered" && i.rootSnapshotId === snapshotId);
  }

  private deleteSnapshot(snap: Snapshot): void {
    snap.deleted = true;
    this.ctx.disks.remove(snap.dir);
  }

  private finishImage(image: Image, snap: Snapshot, fault: FaultRule | undefined, rebootEndsAt: number | undefined): void {
    if (image.state !== "pending") return;
    const src = image.sourceInstanceId ? this.instance(image.sourceInstanceId) : undefined;
    const now = this.ctx.now();
    // Terminating the source while AWS reboots it for a consistent snapshot fails the image.
    const terminatedDuringReboot = rebootEndsAt !== undefined && src?.shutdownAt !== undefined && src.shutdownAt < rebootEndsAt;
    if (fault || terminatedDuringReboot) {
      image.state = "failed";
      image.stateReason = terminatedDuringReboot
        ? {
            code: "Client.InstanceTerminated",
            message: "Client.InstanceTerminated: Instance was terminated during image creation",
          }
        : {
            code: "Server.InternalError",
            message: fault?.message ? String(fault.message) : "Server.InternalError: Internal error",
          };
      snap.state = "error";
      snap.stateMessage = image.stateReason.message;
    } else {
      snap.state = "completed";
      snap.completionTime = now;
      image.state = "available";
    }
    this.emitImageState(image);
  }

  /** Marks an image as launched (`lastLaunchedTime`). */
  launched(image: Image): void {
    image.lastLaunchedTime = this.ctx.now();
  }

  snapshotState() {
    return {
      images: [...this.images.values()]
        .filter((i) => i.state !== "deregistered")
        .map((i) => ({
          id: i.id,
          name: i.name,
          state: i.state,
          owner: i.ownerAlias ?? i.ownerId,
          arch: i.arch,
          tags: Object.fromEntries(i.tags),
        })),
      snapshots: [...this.snapshots.values()]
        .filter((s) => !s.deleted && s.ownerId === this.ctx.accountId)
        .map((s) => ({ id: s.id, state: s.state, progress: this.progress(s) })),
    };
  }
}
