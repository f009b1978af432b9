/**
 * Instances and their lifecycle on the cloud clock:
 *
 *   pending ──ec2.bootMs──▶ running ──Stop──▶ stopping ──ec2.stopMs──▶ stopped ──Start──▶ pending
 *      │ boot fault "fail"     │ Terminate                                 │ Terminate
 *      ▼                       ▼                                           ▼
 *   shutting-down ──ec2.terminateMs──▶ terminated ──ec2.terminatedVisibleMs──▶ (gone)
 *
 * A running instance has a private copy of its image's filesystem (`rootDir`) and runs the sample
 * app on it. Every transition is announced on `cloud.bus` ("instance-state") and as the AWS event
 * "EC2 Instance State-change Notification".
 */
import type { TimerHandle } from "../../../../lib/clock.ts";
import { startApp } from "../../../app/server.ts";
import type { AppHandle, InstanceStateEvent, InstanceStateName, LaunchRequest, SimInstance } from "../../contracts.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { RequestContext } from "../../protocol/types.ts";
import type { Ec2Context } from "./context.ts";
import type { Architecture, Image, ImageStore } from "./images.ts";
import type { Network, SecurityGroup, Subnet } from "./network.ts";
import type { TemplateData, TemplateStore } from "./templates.ts";
import {
  applyFilters,
  checkTags,
  dryRun,
  type FilterTable,
  IdempotencyTokens,
  paginate,
  readFilters,
  readTagSpecs,
  type Sequenced,
  tagSet,
  tagsFor,
  userInitiated,
  wellFormedId,
} from "./util.ts";

/** The low byte of `instanceState.code` (the high byte is internal to AWS). */
export const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/** Graviton families (`t4g`, `m7g`, `c6gn`, …) are arm64; the rest here are x86_64. */
export function archOfType(instanceType: string): Architecture {
  return /^[a-z]+\d+g[a-z]*\./.test(instanceType) ? "arm64" : "x86_64";
}

/** What RunInstances defaults to without an instance type. */
const DEFAULT_INSTANCE_TYPE = "m1.small";

export class Instance implements SimInstance, Sequenced {
  state: InstanceStateName = "pending";
  app?: AppHandle;
  reason = "";
  stateReason?: { code: string; message: string };
  /** Clock time shutting-down began (CreateImage fails if it falls in the reboot window). */
  shutdownAt?: number;
  bootTimer?: TimerHandle;
  /** A boot in flight (app starting); bumped to invalidate it on stop/terminate. */
  bootGeneration = 0;
  volumeTags = new Map<string, string>();
  /** Before this clock time the API does not show the instance yet (eventual consistency). */
  visibleAt = 0;

  constructor(
    readonly seq: number,
    readonly id: string,
    readonly reservationId: string,
    readonly imageId: string,
    readonly instanceType: string,
    readonly arch: Architecture,
    readonly subnet: Subnet,
    readonly privateIp: string,
    readonly groups: SecurityGroup[],
    readonly tags: Map<string, string>,
    readonly launchTime: Date,
    readonly rootDir: string,
    readonly rootVolumeId: string,
    readonly amiLaunchIndex: number,
    readonly extra: {
      clientToken?: string;
      keyName?: string;
      userData?: string;
      iamInstanceProfile?: { arn: string; id: string };
      requesterId?: string;
      ebsOptimized?: boolean;
      monitoring?: boolean;
    },
  ) {}

  get subnetId(): string {
    return this.subnet.id;
  }
  get az(): string {
    return this.subnet.az;
  }
}

interface Reservation {
  id: string;
  instances: Instance[];
  requesterId?: string;
}

export class InstanceStore {
  private readonly all = new Map<string, Instance>();
  private readonly reservations = new Map<string, Reservation>();
  private readonly runTokens = new IdempotencyTokens<string>();
  private readonly profileIds = new Map<string, string>();

  constructor(
    private readonly ctx: Ec2Context,
    private readonly network: Network,
    private readonly images: ImageStore,
    private readonly templates: TemplateStore,
  ) {}

  /** A listed instance (terminated ones stay listed for `ec2.terminatedVisibleMs`). */
  instance(id: string): Instance | undefined {
    return this.all.get(id);
  }

  list(): Instance[] {
    return [...this.all.values()];
  }

  /** What the API shows: instances past their `ec2.describeDelayMs` visibility lag. */
  private visible(): Instance[] {
    const now = this.ctx.cloud.clock.now();
    return this.list().filter((i) => i.visibleAt <= now);
  }

  private isVisible(id: string): boolean {
    const i = this.all.get(id);
    return i !== undefined && i.visibleAt <= this.ctx.cloud.clock.now();
  }

  taggable(id: string): Map<string, string> | undefined {
    if (id.startsWith("vol-")) return this.visible().find((i) => i.rootVolumeId === id)?.volumeTags;
    return this.isVisible(id) ? this.instance(id)?.tags : undefined;
  }

  // ── launching ────────────────────────────────────────────────────────────────────────────────

  /**
   * Launches `req.count` instances in one reservation (no ClientToken semantics). Request fields
   * override the launch template's; throws the AwsError RunInstances would.
   */
  launch(
    req: LaunchRequest & { clientToken?: string; keyName?: string; volumeTags?: Record<string, string>; requesterId?: string },
  ): Instance[] {
    let data: TemplateData = {};
    let templateTags: Record<string, string> = {};
    if (req.launchTemplate) {
      const t = this.templates.find({ id: req.launchTemplate.id });
      const v = this.templates.version(t, String(req.launchTemplate.version));
      data = v.data;
      // AWS stamps instances launched from a template with where they came from.
      templateTags = { "aws:ec2launchtemplate:id": t.id, "aws:ec2launchtemplate:version": String(v.number) };
    }
    const imageId = req.imageId ?? data.imageId;
    if (!imageId) throw new AwsError("MissingParameter", "The request must contain the parameter ImageId");
    const image = this.images.launchable(imageId);
    const instanceType = req.instanceType ?? data.instanceType ?? DEFAULT_INSTANCE_TYPE;
    if (!/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(instanceType)) {
      throw new AwsError("InvalidParameterValue", `Invalid value '${instanceType}' for InstanceType.`);
    }
    const typeArch = archOfType(instanceType);
    if (typeArch !== image.arch) {
      throw new AwsError(
        "InvalidParameterValue",
        `The architecture '${typeArch}' of the specified instance type does not match the architecture '${image.arch}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.`,
      );
    }
    const nic = data.networkInterfaces?.find((n) => (n.deviceIndex ?? 0) === 0);
    const subnetId = req.subnetId ?? nic?.subnetId;
    let subnet: Subnet;
    if (subnetId) {
      const s = this.network.subnet(subnetId);
      if (!s) throw new AwsError("InvalidSubnetID.NotFound", `The subnet ID '${subnetId}' does not exist`);
      subnet = s;
    } else {
      const az = data.placement?.availabilityZone;
      const candidates = az ? this.network.subnets.filter((s) => s.az === az) : this.network.subnets;
      if (candidates.length === 0) throw new AwsError("InvalidParameterValue", `Invalid availability zone: [${az}]`);
      subnet = candidates[Math.floor(this.ctx.cloud.random() * candidates.length)]!;
    }
    const groupIds = req.securityGroupIds?.length ? req.securityGroupIds : (data.securityGroupIds ?? nic?.groups ?? []);
    const groupNames = data.securityGroups ?? [];
    const groups: SecurityGroup[] = [];
    for (const gid of groupIds) {
      const g = this.network.group(gid);
      if (!g) throw new AwsError("InvalidGroup.NotFound", `The security group '${gid}' does not exist`);
      groups.push(g);
    }
    for (const name of groupNames) {
      const g = this.network.groups.find((x) => x.name === name);
      if (!g)
        throw new AwsError(
          "InvalidGroup.NotFound",
          `The security group '${name}' does not exist in default VPC '${this.network.vpc.id}'`,
        );
      groups.push(g);
    }
    if (groups.length === 0) groups.push(this.network.groups[0]!);
    const profile = this.profile(req.iamInstanceProfile ?? data.iamInstanceProfile?.arn ?? data.iamInstanceProfile?.name);
    const tags: Record<string, string> = {};
    const volumeTags: Record<string, string> = {};
    for (const s of data.tagSpecifications ?? []) {
      for (const t of s.tags) {
        if (s.resourceType === "instance") tags[t.Key] = t.Value;
        if (s.resourceType === "volume") volumeTags[t.Key] = t.Value;
      }
    }
    Object.assign(tags, req.tags, templateTags);
    Object.assign(volumeTags, req.volumeTags ?? {});
    const count = req.count;
    if (!Number.isInteger(count) || count < 1)
      throw new AwsError("InvalidParameterValue", `Value (${count}) for parameter MaxCount is invalid. Must be at least 1.`);

    const reservation: Reservation = { id: this.ctx.id("r"), instances: [], requesterId: req.requesterId };
    const now = this.ctx.now();
    const source = this.images.rootDirOf(image);
    for (let i = 0; i < count; i++) {
      const id = this.ctx.id("i");
      const rootDir = this.ctx.disks.instanceDir(id);
      this.ctx.disks.copy(source, rootDir, { immutable: true });
      const inst = new Instance(
        this.ctx.seq(),
        id,
        reservation.id,
        image.id,
        instanceType,
        image.arch,
        subnet,
        this.network.allocateIp(subnet),
        groups,
        new Map(Object.entries(tags)),
        now,
        rootDir,
        this.ctx.id("vol"),
        i,
        {
          clientToken: req.clientToken,
          keyName: req.keyName ?? data.keyName,
          userData: req.userData ?? data.userData,
          iamInstanceProfile: profile,
          requesterId: req.requesterId,
          ebsOptimized: data.ebsOptimized,
          monitoring: data.monitoring?.enabled,
        },
      );
      inst.volumeTags = new Map(Object.entries(volumeTags));
      // AWS documents a short window in which a new id is unknown to Describe/CreateTags (opt-in).
      inst.visibleAt = now.getTime() + this.ctx.cloud.setting("ec2.describeDelayMs", 0);
      this.all.set(id, inst);
      reservation.instances.push(inst);
      this.announce(inst);
      this.scheduleBoot(inst);
    }
    this.reservations.set(reservation.id, reservation);
    this.images.launched(image);
    return reservation.instances;
  }

  /** `{arn,id}` of an instance profile given by name or ARN (ids are stable per profile). */
  private profile(spec: string | undefined): { arn: string; id: string } | undefined {
    if (!spec) return undefined;
    const arn = spec.startsWith("arn:") ? spec : `arn:aws:iam::${this.ctx.accountId}:instance-profile/${spec}`;
    let id = this.profileIds.get(arn);
    if (!id) {
      id = `AIPA${this.ctx.cloud.hex(17).toUpperCase()}`;
      this.profileIds.set(arn, id);
    }
    return { arn, id };
  }

  private scheduleBoot(inst: Instance): void {
    const fault = this.ctx.cloud.faults.match("boot", { imageId: inst.imageId, instanceId: inst.id });
    let ms = this.ctx.duration("bootMs", 20_000, 0.5);
    if (fault?.mode === "slow") ms += Number(fault.delayMs ?? 60_000);
    const generation = ++inst.bootGeneration;
    inst.bootTimer = this.ctx.after(ms, () => {
      inst.bootTimer = undefined;
      if (fault?.mode === "fail") this.failBoot(inst);
      else void this.boot(inst, generation);
    });
  }

  private failBoot(inst: Instance): void {
    if (inst.state !== "pending") return;
    inst.stateReason = { code: "Server.InternalError", message: "Server.InternalError: Internal error on launch" };
    inst.reason = `Server.InternalError (${userInitiated(this.ctx.now()).slice("User initiated (".length, -1)})`;
    this.beginShutdown(inst);
  }

  /** Starts the app on the instance's filesystem, then declares it running. */
  private async boot(inst: Instance, generation: number): Promise<void> {
    if (inst.state !== "pending") return;
    let app: AppHandle;
    try {
      app = await startApp({
        instance: inst.id,
        rootDir: inst.rootDir,
        clock: this.ctx.cloud.clock,
        faults: this.ctx.cloud.faults,
        realServer: this.ctx.cloud.setting("app.realServers", true),
      });
    } catch (err) {
      // The host could not run the service: AWS would see an instance that failed to launch.
      inst.stateReason = { code: "Server.InternalError", message: `Server.InternalError: ${(err as Error).message}` };
      this.beginShutdown(inst);
      return;
    }
    if (inst.state !== "pending" || inst.bootGeneration !== generation) {
      await app.stop();
      return;
    }
    inst.app = app;
    inst.stateReason = undefined;
    this.setState(inst, "running");
  }

  // ── state changes ────────────────────────────────────────────────────────────────────────────

  private setState(inst: Instance, to: InstanceStateName): void {
    const from = inst.state;
    if (from === to) return;
    inst.state = to;
    const event: InstanceStateEvent = { instance: inst, from, to };
    this.ctx.cloud.bus.emit("instance-state", event);
    this.announce(inst);
  }

  /** The AWS event for the instance's current state (EventBridge picks it up). */
  private announce(inst: Instance): void {
    this.ctx.cloud.emit({
      source: "aws.ec2",
      detailType: "EC2 Instance State-change Notification",
      detail: { "instance-id": inst.id, state: inst.state },
      resources: [`arn:aws:ec2:${this.ctx.region}:${this.ctx.accountId}:instance/${inst.id}`],
    });
  }

  private stopApp(inst: Instance): void {
    const app = inst.app;
    inst.app = undefined;
    if (app) void app.stop();
  }

  private beginShutdown(inst: Instance): void {
    this.ctx.cancel(inst.bootTimer);
    inst.bootTimer = undefined;
    inst.bootGeneration++;
    inst.shutdownAt = this.ctx.cloud.clock.now();
    this.stopApp(inst);
    this.setState(inst, "shutting-down");
    this.ctx.after(this.ctx.duration("terminateMs", 30_000), () => this.finishTermination(inst));
  }

  private finishTermination(inst: Instance): void {
    if (inst.state !== "shutting-down") return;
    this.network.releaseIp(inst.subnet, inst.privateIp);
    if (!this.ctx.cloud.setting("ec2.keepSandboxes", false)) this.ctx.disks.remove(inst.rootDir);
    this.setState(inst, "terminated");
    // AWS keeps terminated instances visible for about an hour.
    this.ctx.after(this.ctx.duration("terminatedVisibleMs", 3_600_000), () => this.all.delete(inst.id));
  }

  /** Begins termination of every id (unknown ids are ignored: the API validates first). */
  terminate(ids: string[], reason?: string): { inst: Instance; previous: InstanceStateName }[] {
    const out: { inst: Instance; previous: InstanceStateName }[] = [];
    for (const id of ids) {
      const inst = this.instance(id);
      if (!inst) continue;
      const previous = inst.state;
      if (inst.state !== "shutting-down" && inst.state !== "terminated") {
        inst.stateReason = {
          code: "Client.UserInitiatedShutdown",
          message: "Client.UserInitiatedShutdown: User initiated shutdown",
        };
        inst.reason = reason ?? userInitiated(this.ctx.now());
        this.beginShutdown(inst);
      }
      out.push({ inst, previous });
    }
    return out;
  }

  private stop(inst: Instance): InstanceStateName {
    const previous = inst.state;
    if (inst.state === "stopped" || inst.state === "stopping") return previous;
    if (inst.state !== "running") {
      throw new AwsError("IncorrectInstanceState", `This instance '${inst.id}' is not in a state from which it can be stopped.`);
    }
    inst.stateReason = { code: "Client.UserInitiatedShutdown", message: "Client.UserInitiatedShutdown: User initiated shutdown" };
    inst.reason = userInitiated(this.ctx.now());
    this.stopApp(inst);
    this.setState(inst, "stopping");
    this.ctx.after(this.ctx.duration("stopMs", 30_000), () => {
      if (inst.state === "stopping") this.setState(inst, "stopped");
    });
    return previous;
  }

  private start(inst: Instance): InstanceStateName {
    const previous = inst.state;
    if (inst.state === "pending" || inst.state === "running") return previous;
    if (inst.state !== "stopped") {
      throw new AwsError("IncorrectInstanceState", `The instance '${inst.id}' is not in a state from which it can be started.`);
    }
    inst.stateReason = undefined;
    inst.reason = "";
    this.setState(inst, "pending");
    this.scheduleBoot(inst);
    return previous;
  }

  // ── wire ─────────────────────────────────────────────────────────────────────────────────────

  /** Ids that must all exist (InvalidInstanceID.Malformed / .NotFound naming every missing one). */
  private existing(ids: string[]): Instance[] {
    for (const id of ids) if (!wellFormedId(id, "i")) throw new AwsError("InvalidInstanceID.Malformed", `Invalid id: "${id}"`);
    const missing = ids.filter((id) => !this.isVisible(id));
    if (missing.length === 1) throw new AwsError("InvalidInstanceID.NotFound", `The instance ID '${missing[0]}' does not exist`);
    if (missing.length > 1)
      throw new AwsError("InvalidInstanceID.NotFound", `The instance IDs '${missing.join(", ")}' do not exist`);
    return ids.map((id) => this.all.get(id)!);
  }

  private renderState(s: InstanceStateName) {
    return { code: STATE_CODES[s], name: s };
  }

  renderInstance(i: Instance) {
    const ip = i.privateIp;
    return {
      instanceId: i.id,
      imageId: i.imageId,
      instanceState: this.renderState(i.state),
      privateDnsName: i.state === "terminated" ? "" : `ip-${ip.replace(/\./g, "-")}.ec2.internal`,
      dnsName: "",
      reason: i.reason,
      keyName: i.extra.keyName,
      amiLaunchIndex: i.amiLaunchIndex,
      productCodes: [],
      instanceType: i.instanceType,
      launchTime: i.launchTime,
      placement: { availabilityZone: i.az, availabilityZoneId: i.subnet.azId, groupName: "", tenancy: "default" },
      monitoring: { state: i.extra.monitoring ? "enabled" : "disabled" },
      subnetId: i.state === "terminated" ? undefined : i.subnetId,
      vpcId: i.state === "terminated" ? undefined : i.subnet.vpcId,
      privateIpAddress: i.state === "terminated" ? undefined : ip,
      // AWS reports a launching instance's reason as "pending" until it runs or fails.
      stateReason: i.stateReason ?? (i.state === "pending" ? { code: "pending", message: "pending" } : undefined),
      architecture: i.arch,
      rootDeviceType: "ebs",
      rootDeviceName: "/dev/xvda",
      blockDeviceMapping:
        i.state === "terminated"
          ? []
          : [
              {
                deviceName: "/dev/xvda",
                ebs: { volumeId: i.rootVolumeId, status: "attached", attachTime: i.launchTime, deleteOnTermination: true },
              },
            ],
      virtualizationType: "hvm",
      clientToken: i.extra.clientToken ?? "",
      tagSet: tagSet(i.tags),
      groupSet: i.groups.map((g) => ({ groupId: g.id, groupName: g.name })),
      sourceDestCheck: true,
      hypervisor: "xen",
      iamInstanceProfile: i.extra.iamInstanceProfile,
      ebsOptimized: i.extra.ebsOptimized ?? false,
      enaSupport: true,
      metadataOptions: {
        state: "applied",
        httpTokens: "required",
        httpPutResponseHopLimit: 2,
        httpEndpoint: "enabled",
        httpProtocolIpv6: "disabled",
        instanceMetadataTags: "disabled",
      },
      hibernationOptions: { configured: false },
      bootMode: "uefi-preferred",
      currentInstanceBootMode: "uefi",
      platformDetails: "Linux/UNIX",
      usageOperation: "RunInstances",
    };
  }

  private renderReservation(r: Reservation, instances: Instance[] = r.instances) {
    return {
      reservationId: r.id,
      ownerId: this.ctx.accountId,
      requesterId: r.requesterId,
      groupSet: [],
      instancesSet: instances.map((i) => this.renderInstance(i)),
    };
  }

  readonly actions = {
    RunInstances: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const min = p.int("MinCount", { required: true, min: 1 });
      const max = p.int("MaxCount", { required: true, min: 1 });
      if (min > max)
        throw new AwsError(
          "InvalidParameterValue",
          `Value (${min}) for parameter MinCount is invalid. MinCount must not be greater than MaxCount.`,
        );
      const token = p.str("ClientToken");
      if (token && token.length > 64)
        throw new AwsError(
          "InvalidParameterValue",
          "Value for parameter ClientToken is invalid. The maximum length is 64 characters.",
        );
      const specs = readTagSpecs(p, ["instance", "volume", "network-interface", "spot-instances-request"]);
      dryRun(p);
      // Same token and same parameters: the same reservation, with its instances as they are now.
      const known = this.runTokens.lookup(token, input);
      if (known) return this.renderReservation(this.reservations.get(known)!);
      const lt = p.obj("LaunchTemplate");
      let launchTemplate: { id: string; version: number } | undefined;
      if (lt) {
        const t = this.templates.find({ id: lt.str("LaunchTemplateId"), name: lt.str("LaunchTemplateName") });
        launchTemplate = { id: t.id, version: this.templates.version(t, lt.str("Version")).number };
      }
      const iam = p.obj("IamInstanceProfile");
      const instanceTags = Object.fromEntries(tagsFor(specs, "instance"));
      checkTags(
        Object.entries(instanceTags).map(([Key, Value]) => ({ Key, Value })),
        true,
      );
      const instances = this.launch({
        imageId: p.str("ImageId"),
        instanceType: p.str("InstanceType"),
        subnetId: p.str("SubnetId"),
        securityGroupIds: p.list<string>("SecurityGroupId"),
        launchTemplate,
        tags: instanceTags,
        volumeTags: Object.fromEntries(tagsFor(specs, "volume")),
        count: max,
        iamInstanceProfile: iam ? (iam.str("Arn") ?? iam.str("Name")) : undefined,
        userData: p.str("UserData"),
        keyName: p.str("KeyName"),
        clientToken: token,
      });
      const reservationId = instances[0]!.reservationId;
      this.runTokens.remember(token, input, reservationId);
      return this.renderReservation(this.reservations.get(reservationId)!);
    },

    DescribeInstances: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("InstanceId");
      dryRun(p);
      if (ids.length && p.has("MaxResults")) {
        throw new AwsError(
          "InvalidParameterCombination",
          "The parameter instancesSet cannot be used with the parameter maxResults",
        );
      }
      const listed = ids.length ? this.existing(ids) : this.visible();
      const table: FilterTable<Instance> = {
        "instance-id": (i) => i.id,
        "instance-state-name": (i) => i.state,
        "instance-state-code": (i) => STATE_CODES[i.state],
        "image-id": (i) => i.imageId,
        "instance-type": (i) => i.instanceType,
        "subnet-id": (i) => i.subnetId,
        "vpc-id": (i) => i.subnet.vpcId,
        "availability-zone": (i) => i.az,
        "private-ip-address": (i) => i.privateIp,
        "private-dns-name": (i) => `ip-${i.privateIp.replace(/\./g, "-")}.ec2.internal`,
        "reservation-id": (i) => i.reservationId,
        "client-token": (i) => i.extra.clientToken,
        "key-name": (i) => i.extra.keyName,
        "launch-time": (i) => i.launchTime.toISOString(),
        architecture: (i) => i.arch,
        "iam-instance-profile.arn": (i) => i.extra.iamInstanceProfile?.arn,
        "instance.group-id": (i) => i.groups.map((g) => g.id),
        "instance.group-name": (i) => i.groups.map((g) => g.name),
        "group-id": (i) => i.groups.map((g) => g.id),
        "owner-id": () => this.ctx.accountId,
        "requester-id": (i) => i.extra.requesterId,
        reason: (i) => i.reason,
        "state-reason-code": (i) => i.stateReason?.code,
        "root-device-type": () => "ebs",
        "launch-template.launch-template-id": (i) => i.tags.get("aws:ec2launchtemplate:id"),
        "launch-template.version": (i) => i.tags.get("aws:ec2launchtemplate:version"),
      };
      const filtered = applyFilters(listed, readFilters(p), table, (i) => i.tags);
      const { page, nextToken } = paginate(filtered, p, { min: 5, max: 1000 });
      // Instances of one reservation on a page are grouped under it, in launch order.
      const byReservation = new Map<string, Instance[]>();
      for (const i of page) {
        const list = byReservation.get(i.reservationId) ?? [];
        list.push(i);
        byReservation.set(i.reservationId, list);
      }
      return {
        reservationSet: [...byReservation].map(([rid, list]) => this.renderReservation(this.reservations.get(rid)!, list)),
        nextToken,
      };
    },

    DescribeInstanceStatus: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("InstanceId");
      const all = p.bool("IncludeAllInstances", false);
      dryRun(p);
      let listed = ids.length ? this.existing(ids) : this.visible();
      // By default only running instances have a status.
      if (!all) listed = listed.filter((i) => i.state === "running");
      const table: FilterTable<Instance> = {
        "instance-state-name": (i) => i.state,
        "instance-state-code": (i) => STATE_CODES[i.state],
        "availability-zone": (i) => i.az,
        "instance-status.status": (i) => (i.state === "running" ? "ok" : "not-applicable"),
        "system-status.status": (i) => (i.state === "running" ? "ok" : "not-applicable"),
      };
      const { page, nextToken } = paginate(applyFilters(listed, readFilters(p), table), p, { min: 5, max: 1000 });
      const summary = (i: Instance) =>
        i.state === "running"
          ? { status: "ok", details: [{ name: "reachability", status: "passed" }] }
          : { status: "not-applicable" };
      return {
        instanceStatusSet: page.map((i) => ({
          instanceId: i.id,
          availabilityZone: i.az,
          availabilityZoneId: i.subnet.azId,
          instanceState: this.renderState(i.state),
          instanceStatus: summary(i),
          systemStatus: summary(i),
          attachedEbsStatus: summary(i),
        })),
        nextToken,
      };
    },

    TerminateInstances: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("InstanceId", { required: true });
      dryRun(p);
      if (ids.length > 1000)
        throw new AwsError(
          "InvalidParameterValue",
          "The maximum number of instances that can be terminated in one request is 1000.",
        );
      // One unknown id fails the whole call: nothing is terminated.
      this.existing(ids);
      const changes = this.terminate(ids);
      return {
        instancesSet: changes.map((c) => ({
          instanceId: c.inst.id,
          currentState: this.renderState(c.inst.state),
          previousState: this.renderState(c.previous),
        })),
      };
    },

    StopInstances: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("InstanceId", { required: true });
      dryRun(p);
      const insts = this.existing(ids);
      for (const i of insts) {
        if (i.state !== "running" && i.state !== "stopping" && i.state !== "stopped") {
          throw new AwsError("IncorrectInstanceState", `This instance '${i.id}' is not in a state from which it can be stopped.`);
        }
      }
      return {
        instancesSet: insts.map((i) => {
          const previous = this.stop(i);
          return { instanceId: i.id, currentState: this.renderState(i.state), previousState: this.renderState(previous) };
        }),
      };
    },

    StartInstances: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("InstanceId", { required: true });
      dryRun(p);
      const insts = this.existing(ids);
      for (const i of insts) {
        if (i.state !== "stopped" && i.state !== "pending" && i.state !== "running") {
          throw new AwsError("IncorrectInstanceState", `The instance '${i.id}' is not in a state from which it can be started.`);
        }
      }
      return {
        instancesSet: insts.map((i) => {
          const previous = this.start(i);
          return { instanceId: i.id, currentState: this.renderState(i.state), previousState: this.renderState(previous) };
        }),
      };
    },
  };

  /** Stops every app (cloud shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.list().map(async (i) => {
        const app = i.app;
        i.app = undefined;
        await app?.stop();
      }),
    );
  }

  snapshotState() {
    return this.list().map((i) => ({
      id: i.id,
      state: i.state,
      imageId: i.imageId,
      instanceType: i.instanceType,
      privateIp: i.privateIp,
      az: i.az,
      launchTime: i.launchTime.toISOString(),
      tags: Object.fromEntries(i.tags),
      rootDir: i.rootDir,
      appPort: i.app?.port,
    }));
  }
}

export type { Image };
