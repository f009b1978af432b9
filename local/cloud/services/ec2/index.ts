/**
 * Simulated EC2 (EC2 query protocol, API version 2016-11-15): the default VPC, instances that boot
 * and run the sample app, AMIs baked from their filesystems, snapshots, launch templates and tags.
 *
 * Actions: DescribeAvailabilityZones, DescribeVpcs, DescribeSubnets, DescribeSecurityGroups;
 * RunInstances (ImageId or LaunchTemplate, ClientToken idempotency, TagSpecification instance and
 * volume), DescribeInstances, DescribeInstanceStatus, StopInstances, StartInstances,
 * TerminateInstances; CreateImage, DescribeImages, DeregisterImage (DeleteAssociatedSnapshots),
 * DescribeSnapshots, DeleteSnapshot; CreateLaunchTemplate, CreateLaunchTemplateVersion,
 * DescribeLaunchTemplates, DescribeLaunchTemplateVersions, ModifyLaunchTemplate,
 * DeleteLaunchTemplateVersions, DeleteLaunchTemplate; CreateTags, DeleteTags. DryRun answers
 * DryRunOperation. Not simulated: creating VPCs/subnets/groups, volumes as resources of their own
 * (a root volume id per instance is taggable), CopyImage/RegisterImage, `resolve:ssm:` image ids
 * in launch templates, instance attributes, termination protection, request token buckets (use
 * `api` faults for throttling).
 *
 * Other services reach it in process through `Ec2Api` (`cloud.backend<Ec2Backend>("ec2")`).
 * Settings (all through `cloud.setting`):
 * - `ec2.bootMs` (20000, ±`ec2.bootMsJitter` 0.5), `ec2.stopMs` (30000), `ec2.terminateMs` (30000),
 *   `ec2.terminatedVisibleMs` (3600000);
 * - `ec2.imageMs` (300000, ±`ec2.imageMsJitter` 0.2), `ec2.imageRebootMs` (60000, skipped with
 *   NoReboot), `ec2.baseImageAgeMs` (7 days: age of the seeded AL2023 images);
 * - `ec2.describeDelayMs`, `ec2.imageDescribeDelayMs` (0): eventual-consistency lag of new ids;
 * - `ec2.keepSandboxes` (false): keep instance directories after termination and shutdown;
 * - `app.realServers` (true): give each running instance a real loopback HTTP server.
 * Faults: `boot` (mode slow | fail, delayMs), `ami` (the image fails).
 */
import type { Cloud } from "../../cloud.ts";
import type { Ec2Api, LaunchRequest, SimInstance } from "../../contracts.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { RequestContext, ServiceDefinition } from "../../protocol/types.ts";
import { Ec2Context } from "./context.ts";
import { Disks } from "./disk.ts";
import { type Architecture, type BaseImage, ImageStore } from "./images.ts";
import { InstanceStore } from "./instances.ts";
import { Network } from "./network.ts";
import { TemplateStore } from "./templates.ts";
import { addTags, checkTags, dryRun, wellFormedId } from "./util.ts";

export type { BaseImage } from "./images.ts";
export { archOfType, STATE_CODES } from "./instances.ts";

export const EC2_VERSION = "2016-11-15";
export const EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/";

/** Event on `cloud.bus`: "base-image-published". */
export interface BaseImagePublishedEvent {
  imageId: string;
  name: string;
  arch: Architecture;
}

/** The EC2 backend: the cross-service contract plus base-image publishing. */
export interface Ec2Backend extends Ec2Api {
  /** Every public AL2023 base image published so far, oldest first. */
  baseImages(): BaseImage[];
  /** Publishes new base images (both architectures unless one is given) and announces them. */
  publishBaseImage(arch?: Architecture): BaseImage[];
}

/** Which store answers NotFound for which id prefix in CreateTags/DeleteTags. */
const NOT_FOUND: Record<string, (id: string) => AwsError> = {
  i: (id) => new AwsError("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`),
  ami: (id) => new AwsError("InvalidAMIID.NotFound", `The image id '[${id}]' does not exist`),
  snap: (id) => new AwsError("InvalidSnapshot.NotFound", `The snapshot '${id}' does not exist.`),
  lt: (id) =>
    new AwsError("InvalidLaunchTemplateId.NotFound", `The specified launch template, with template ID ${id}, does not exist.`),
  vol: (id) => new AwsError("InvalidVolume.NotFound", `The volume '${id}' does not exist.`),
  vpc: (id) => new AwsError("InvalidVpcID.NotFound", `The vpc ID '${id}' does not exist`),
  subnet: (id) => new AwsError("InvalidSubnetID.NotFound", `The subnet ID '${id}' does not exist`),
  sg: (id) => new AwsError("InvalidGroup.NotFound", `The security group '${id}' does not exist`),
};

class Ec2 implements Ec2Backend {
  readonly definition: ServiceDefinition;
  private readonly ctx: Ec2Context;
  private readonly network: Network;
  private readonly images: ImageStore;
  private readonly templates: TemplateStore;
  private readonly fleet: InstanceStore;

  constructor(private readonly cloud: Cloud) {
    this.ctx = new Ec2Context(cloud, new Disks(cloud.dataDir, (work) => cloud.clock.hold(work)));
    this.network = new Network(this.ctx);
    this.images = new ImageStore(this.ctx, (id) => this.fleet.instance(id));
    this.templates = new TemplateStore(this.ctx);
    this.fleet = new InstanceStore(this.ctx, this.network, this.images, this.templates);
    this.definition = {
      signingName: "ec2",
      protocol: "ec2",
      version: EC2_VERSION,
      xmlns: EC2_XMLNS,
      actions: {
        ...this.network.actions,
        ...this.fleet.actions,
        ...this.images.actions,
        ...this.templates.actions,
        CreateTags: (input: unknown, rc: RequestContext) => this.createTags(input, rc),
        DeleteTags: (input: unknown, rc: RequestContext) => this.deleteTags(input, rc),
      },
    };
  }

  // ── Ec2Api ────────────────────────────────────────────────────────────────────────────────────

  instance(id: string): SimInstance | undefined {
    return this.fleet.instance(id);
  }

  instances(): SimInstance[] {
    return this.fleet.list();
  }

  launch(req: LaunchRequest): SimInstance[] {
    return this.fleet.launch(req);
  }

  terminate(ids: string[], reason?: string): void {
    this.fleet.terminate(ids, reason);
  }

  resolveLaunchTemplate(spec: { id?: string; name?: string; version?: string }) {
    const t = this.templates.find(spec);
    const v = this.templates.version(t, spec.version);
    return { id: t.id, name: t.name, version: v.number, imageId: v.data.imageId, instanceType: v.data.instanceType };
  }

  subnets() {
    return this.network.subnets.map((s) => ({ id: s.id, az: s.az, vpcId: s.vpcId, cidr: s.cidr }));
  }

  baseImages(): BaseImage[] {
    return this.images.baseImages();
  }

  publishBaseImage(arch?: Architecture): BaseImage[] {
    const archs: Architecture[] = arch ? [arch] : ["x86_64", "arm64"];
    return archs.map((a) => {
      const b = this.images.publishBase(a);
      const event: BaseImagePublishedEvent = { imageId: b.imageId, name: b.name, arch: b.arch };
      this.cloud.bus.emit("base-image-published", event);
      return b;
    });
  }

  // ── tags ─────────────────────────────────────────────────────────────────────────────────────

  /** The tag map of any taggable resource, or the NotFound/InvalidID error AWS gives. */
  private tagsOf(id: string): Map<string, string> {
    const prefix = id.slice(0, id.indexOf("-"));
    const notFound = NOT_FOUND[prefix];
    if (!notFound || !wellFormedId(id, prefix)) throw new AwsError("InvalidID", `The ID '${id}' is not valid`);
    const tags = this.fleet.taggable(id) ?? this.images.taggable(id) ?? this.templates.taggable(id) ?? this.network.taggable(id);
    if (!tags) throw notFound(id);
    return tags;
  }

  private createTags(input: unknown, rc: RequestContext) {
    const p = new Params(input, rc);
    const ids = p.list<string>("ResourceId", { required: true });
    const tags = p.tags("Tag");
    if (tags.length === 0) throw p.missing("Tag");
    dryRun(p);
    checkTags(tags, true);
    // Every id is checked before any is tagged: the call succeeds or fails as a whole.
    const targets = ids.map((id) => ({ id, tags: this.tagsOf(id) }));
    for (const t of targets) addTags(new Map(t.tags), tags, t.id);
    for (const t of targets) addTags(t.tags, tags, t.id);
    return { return: true };
  }

  private deleteTags(input: unknown, rc: RequestContext) {
    const p = new Params(input, rc);
    const ids = p.list<string>("ResourceId", { required: true });
    const tags = p.list<{ Key?: string; Value?: string }>("Tag");
    dryRun(p);
    const targets = ids.map((id) => this.tagsOf(id));
    for (const target of targets) {
      // Without Tag.N every user tag goes; `aws:` tags are never the caller's to delete.
      const keys = tags.length
        ? tags
        : [...target.keys()].filter((k) => !k.startsWith("aws:")).map((Key) => ({ Key, Value: undefined }));
      for (const t of keys) {
        if (!t.Key || t.Key.startsWith("aws:")) continue;
        if (t.Value === undefined || target.get(t.Key) === t.Value) target.delete(t.Key);
      }
    }
    return { return: true };
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────────────

  async stop(): Promise<void> {
    this.ctx.dispose();
    await this.fleet.stopAll();
    if (!this.cloud.setting("ec2.keepSandboxes", false)) await this.ctx.disks.dispose();
  }

  snapshot() {
    return {
      dataDir: this.ctx.disks.root,
      vpc: this.network.vpc.id,
      subnets: this.subnets(),
      instances: this.fleet.snapshotState(),
      ...this.images.snapshotState(),
      launchTemplates: this.templates.snapshotState(),
    };
  }
}

/**
 * Registers simulated EC2 as "ec2" and its admin endpoint
 * `POST /_kiln/ec2/publish-base-image` (body `{arch?}`: publish a newer AL2023 base AMI).
 */
export function registerEc2(cloud: Cloud): Ec2Backend {
  const ec2 = new Ec2(cloud);
  cloud.register("ec2", ec2);
  cloud.admin("ec2/publish-base-image", (req) => {
    if (req.method !== "POST") throw new Error("use POST");
    const body = JSON.parse(req.body.toString("utf8") || "{}") as { arch?: string };
    if (body.arch !== undefined && body.arch !== "x86_64" && body.arch !== "arm64")
      throw new Error(`arch must be x86_64 or arm64, not ${body.arch}`);
    return { published: ec2.publishBaseImage(body.arch as Architecture | undefined) };
  });
  cloud.admin("ec2/base-images", () => ec2.baseImages());
  return ec2;
}
