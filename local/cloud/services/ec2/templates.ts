/**
 * Launch templates and their immutable, sequentially numbered versions. `$Latest` is the highest
 * existing version, `$Default` the one ModifyLaunchTemplate set (1 at creation).
 */

import { xmlList } from "../../protocol/codec.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params as P, type Params } from "../../protocol/params.ts";
import type { RequestContext } from "../../protocol/types.ts";
import type { Ec2Context } from "./context.ts";
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
  wellFormedId,
} from "./util.ts";

/** The launch parameters a version holds (the subset of `RequestLaunchTemplateData` modelled here). */
export interface TemplateData {
  imageId?: string;
  instanceType?: string;
  keyName?: string;
  userData?: string;
  securityGroupIds?: string[];
  securityGroups?: string[];
  iamInstanceProfile?: { arn?: string; name?: string };
  tagSpecifications?: { resourceType: string; tags: { Key: string; Value: string }[] }[];
  metadataOptions?: {
    httpTokens?: string;
    httpPutResponseHopLimit?: number;
    httpEndpoint?: string;
    instanceMetadataTags?: string;
  };
  monitoring?: { enabled: boolean };
  placement?: { availabilityZone?: string; tenancy?: string };
  ebsOptimized?: boolean;
  disableApiTermination?: boolean;
  instanceInitiatedShutdownBehavior?: string;
  networkInterfaces?: {
    deviceIndex?: number;
    subnetId?: string;
    groups?: string[];
    associatePublicIpAddress?: boolean;
    deleteOnTermination?: boolean;
  }[];
  blockDeviceMappings?: {
    deviceName?: string;
    ebs?: { volumeSize?: number; volumeType?: string; deleteOnTermination?: boolean; encrypted?: boolean };
  }[];
}

export interface TemplateVersion {
  number: number;
  description?: string;
  createTime: Date;
  data: TemplateData;
}

export interface LaunchTemplate extends Sequenced {
  id: string;
  name: string;
  createTime: Date;
  defaultVersion: number;
  /** Highest number ever issued (deleted numbers are not reused). */
  lastIssued: number;
  versions: Map<number, TemplateVersion>;
  tags: Map<string, string>;
}

const NAME_PATTERN = /^[a-zA-Z0-9().\-/_]{3,128}$/;

export class TemplateStore {
  private readonly templates = new Map<string, LaunchTemplate>();
  private readonly createTokens = new IdempotencyTokens<unknown>();
  private readonly versionTokens = new IdempotencyTokens<unknown>();

  constructor(private readonly ctx: Ec2Context) {}

  private get createdBy(): string {
    return `arn:aws:iam::${this.ctx.accountId}:root`;
  }

  byId(id: string): LaunchTemplate | undefined {
    return this.templates.get(id);
  }

  byName(name: string): LaunchTemplate | undefined {
    for (const t of this.templates.values()) if (t.name === name) return t;
    return undefined;
  }

  latest(t: LaunchTemplate): number {
    return Math.max(...t.versions.keys());
  }

  /** The template named by id xor name, with AWS's errors for each way of naming it. */
  find(spec: { id?: string; name?: string }): LaunchTemplate {
    if (spec.id && spec.name)
      throw new AwsError(
        "InvalidParameterCombination",
        "Specify either the launch template ID or the launch template name, not both.",
      );
    if (spec.id) {
      if (!wellFormedId(spec.id, "lt"))
        throw new AwsError("InvalidLaunchTemplateId.Malformed", `The specified launch template ID ${spec.id} is malformed.`);
      const t = this.byId(spec.id);
      if (!t)
        throw new AwsError(
          "InvalidLaunchTemplateId.NotFound",
          `The specified launch template, with template ID ${spec.id}, does not exist.`,
        );
      return t;
    }
    if (spec.name) {
      const t = this.byName(spec.name);
      if (!t)
        throw new AwsError(
          "InvalidLaunchTemplateName.NotFoundException",
          `The specified launch template, with template name ${spec.name}, does not exist.`,
        );
      return t;
    }
    throw new AwsError("MissingParameter", "The request must contain the parameter LaunchTemplateName or LaunchTemplateId");
  }

  /** `$Latest`, `$Default` or a number → an existing version. */
  version(t: LaunchTemplate, v: string | undefined): TemplateVersion {
    const n =
      v === undefined || v === "" || v === "$Default"
        ? t.defaultVersion
        : v === "$Latest"
          ? this.latest(t)
          : /^\d+$/.test(v)
            ? Number(v)
            : Number.NaN;
    const found = this.versions(t).find((x) => x.number === n);
    if (!found)
      throw new AwsError(
        "InvalidLaunchTemplateId.VersionNotFound",
        `Could not find the specified version ${v} for the launch template with ID ${t.id}.`,
      );
    return found;
  }

  private versions(t: LaunchTemplate): TemplateVersion[] {
    return [...t.versions.values()];
  }

  /** Launch-template tags of CreateTags/DeleteTags. */
  taggable(id: string): Map<string, string> | undefined {
    return this.byId(id)?.tags;
  }

  private renderTemplate(t: LaunchTemplate) {
    return {
      launchTemplateId: t.id,
      launchTemplateName: t.name,
      createTime: t.createTime,
      createdBy: this.createdBy,
      defaultVersionNumber: t.defaultVersion,
      latestVersionNumber: this.latest(t),
      tagSet: tagSet(t.tags),
    };
  }

  private renderVersion(t: LaunchTemplate, v: TemplateVersion) {
    return {
      launchTemplateId: t.id,
      launchTemplateName: t.name,
      versionNumber: v.number,
      versionDescription: v.description,
      createTime: v.createTime,
      createdBy: this.createdBy,
      defaultVersion: v.number === t.defaultVersion,
      launchTemplateData: renderData(v.data),
    };
  }

  readonly actions = {
    CreateLaunchTemplate: (input: unknown, rc: RequestContext) => {
      const p = new P(input, rc);
      const name = p.str("LaunchTemplateName", { required: true });
      const dataP = p.obj("LaunchTemplateData", { required: true })!;
      const description = p.str("VersionDescription", { max: 255 });
      const token = p.str("ClientToken", { max: 128 });
      const specs = readTagSpecs(p, ["launch-template"]);
      dryRun(p);
      const again = this.createTokens.lookup(token, input);
      if (again) return again;
      if (!NAME_PATTERN.test(name)) {
        throw new AwsError(
          "InvalidLaunchTemplateName.MalformedException",
          "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'",
        );
      }
      if (this.byName(name))
        throw new AwsError("InvalidLaunchTemplateName.AlreadyExistsException", `Launch template name already in use.`);
      const data = readData(dataP);
      const now = this.ctx.now();
      const t: LaunchTemplate = {
        id: this.ctx.id("lt"),
        name,
        createTime: now,
        defaultVersion: 1,
        lastIssued: 1,
        versions: new Map([[1, { number: 1, description, createTime: now, data }]]),
        tags: tagsFor(specs, "launch-template"),
        seq: this.ctx.seq(),
      };
      this.templates.set(t.id, t);
      const out = { launchTemplate: this.renderTemplate(t) };
      this.createTokens.remember(token, input, out);
      return out;
    },

    CreateLaunchTemplateVersion: (input: unknown, rc: RequestContext) => {
      const p = new P(input, rc);
      const dataP = p.obj("LaunchTemplateData", { required: true })!;
      const token = p.str("ClientToken", { max: 128 });
      const description = p.str("VersionDescription", { max: 255 });
      const source = p.str("SourceVersion");
      dryRun(p);
      const again = this.versionTokens.lookup(token, input);
      if (again) return again;
      const t = this.find({ id: p.str("LaunchTemplateId"), name: p.str("LaunchTemplateName") });
      const given = readData(dataP);
      // With SourceVersion the new version inherits every field and the request overrides field
      // by field; without it, the version holds only what the request gives.
      const data = source !== undefined ? { ...this.version(t, source).data, ...given } : given;
      const number = ++t.lastIssued;
      const v: TemplateVersion = { number, description, createTime: this.ctx.now(), data };
      t.versions.set(number, v);
      const out = { launchTemplateVersion: this.renderVersion(t, v) };
      this.versionTokens.remember(token, input, out);
      return out;
    },

    DescribeLaunchTemplates: (input: unknown, rc: RequestContext) => {
      const p = new P(input, rc);
      const ids = p.list<string>("LaunchTemplateId");
      const names = p.list<string>("LaunchTemplateName");
      dryRun(p);
      for (const id of ids) this.find({ id });
      for (const n of names) {
        if (!this.byName(n))
          throw new AwsError(
            "InvalidLaunchTemplateName.NotFoundException",
            "At least one of the launch templates specified in the request does not exist.",
          );
      }
      const listed = [...this.templates.values()].filter(
        (t) => (ids.length === 0 || ids.includes(t.id)) && (names.length === 0 || names.includes(t.name)),
      );
      const table: FilterTable<LaunchTemplate> = {
        "launch-template-name": (t) => t.name,
        "launch-template-id": (t) => t.id,
        "create-time": (t) => t.createTime.toISOString(),
      };
      const { page, nextToken } = paginate(
        applyFilters(listed, readFilters(p), table, (t) => t.tags),
        p,
        { min: 1, max: 200 },
      );
      return { launchTemplates: page.map((t) => this.renderTemplate(t)), nextToken };
    },

    DescribeLaunchTemplateVersions: (input: unknown, rc: RequestContext) => {
      const p = new P(input, rc);
      const wanted = p.list<string>("LaunchTemplateVersion");
      const min = p.str("MinVersion");
      const max = p.str("MaxVersion");
      dryRun(p);
      const id = p.str("LaunchTemplateId");
      const name = p.str("LaunchTemplateName");
      let rows: { t: LaunchTemplate; v: TemplateVersion }[];
      if (!id && !name) {
        // Across the account only the aliases make sense.
        if (wanted.length === 0 || wanted.some((w) => w !== "$Latest" && w !== "$Default")) {
          throw new AwsError("MissingParameter", "The request must contain the parameter LaunchTemplateName or LaunchTemplateId");
        }
        rows = [...this.templates.values()].flatMap((t) => dedupe(wanted.map((w) => ({ t, v: this.version(t, w) }))));
      } else {
        const t = this.find({ id, name });
        let versions = wanted.length
          ? dedupe(wanted.map((w) => ({ t, v: this.version(t, w) }))).map((r) => r.v)
          : this.versions(t);
        const lo = min === undefined ? undefined : Number(min);
        const hi = max === undefined ? undefined : Number(max);
        if (lo !== undefined) versions = versions.filter((v) => v.number >= lo);
        if (hi !== undefined) versions = versions.filter((v) => v.number <= hi);
        // AWS lists the newest version first.
        rows = versions.sort((a, b) => b.number - a.number).map((v) => ({ t, v }));
      }
      const table: FilterTable<{ t: LaunchTemplate; v: TemplateVersion }> = {
        "is-default-version": (r) => r.v.number === r.t.defaultVersion,
        "image-id": (r) => r.v.data.imageId,
        "instance-type": (r) => r.v.data.instanceType,
        "iam-instance-profile": (r) => r.v.data.iamInstanceProfile?.arn ?? r.v.data.iamInstanceProfile?.name,
        "key-name": (r) => r.v.data.keyName,
        "create-time": (r) => r.v.createTime.toISOString(),
        "ebs-optimized": (r) => r.v.data.ebsOptimized,
      };
      const filtered = applyFilters(rows, readFilters(p), table).map((r, i) => ({ ...r, seq: i }));
      const { page, nextToken } = paginate(filtered, p, { min: 1, max: 200 });
      return { launchTemplateVersionSet: page.map((r) => this.renderVersion(r.t, r.v)), nextToken };
    },

    ModifyLaunchTemplate: (input: unknown, rc: RequestContext) => {
      const p = new P(input, rc);
      dryRun(p);
      const t = this.find({ id: p.str("LaunchTemplateId"), name: p.str("LaunchTemplateName") });
      // The model member is DefaultVersion; the EC2 wire name is SetDefaultVersion.
      const dv = p.str("SetDefaultVersion");
      if (dv !== undefined) {
        if (!/^\d+$/.test(dv))
          throw new AwsError(
            "InvalidParameterValue",
            `Value (${dv}) for parameter SetDefaultVersion is invalid. Expected a version number.`,
          );
        t.defaultVersion = this.version(t, dv).number;
      }
      return { launchTemplate: this.renderTemplate(t) };
    },

    DeleteLaunchTemplateVersions: (input: unknown, rc: RequestContext) => {
      const p = new P(input, rc);
      const wanted = p.list<string>("LaunchTemplateVersion", { required: true });
      dryRun(p);
      const t = this.find({ id: p.str("LaunchTemplateId"), name: p.str("LaunchTemplateName") });
      const ok: { launchTemplateId: string; launchTemplateName: string; versionNumber: number }[] = [];
      const bad: {
        launchTemplateId: string;
        launchTemplateName: string;
        versionNumber: number;
        responseError: { code: string; message: string };
      }[] = [];
      for (const w of wanted) {
        const n = Number(w);
        const base = { launchTemplateId: t.id, launchTemplateName: t.name, versionNumber: n };
        if (!/^\d+$/.test(w) || !t.versions.has(n)) {
          bad.push({
            ...base,
            versionNumber: Number.isFinite(n) ? n : 0,
            responseError: { code: "launchTemplateVersionDoesNotExist", message: `Could not find launch template version ${w}.` },
          });
        } else if (n === t.defaultVersion) {
          // The default version can only go with the whole template (DeleteLaunchTemplate).
          bad.push({
            ...base,
            responseError: {
              code: "unexpectedError",
              message: "Cannot delete the default version of a launch template. Use DeleteLaunchTemplate to delete the template.",
            },
          });
        } else {
          t.versions.delete(n);
          ok.push(base);
        }
      }
      return { successfullyDeletedLaunchTemplateVersionSet: ok, unsuccessfullyDeletedLaunchTemplateVersionSet: bad };
    },

    DeleteLaunchTemplate: (input: unknown, rc: RequestContext) => {
      const p = new P(input, rc);
      dryRun(p);
      const t = this.find({ id: p.str("LaunchTemplateId"), name: p.str("LaunchTemplateName") });
      this.templates.delete(t.id);
      return { launchTemplate: this.renderTemplate(t) };
    },
  };

  snapshotState() {
    return [...this.templates.values()].map((t) => ({
      id: t.id,
      name: t.name,
      defaultVersion: t.defaultVersion,
      latestVersion: this.latest(t),
      versions: [...t.versions.values()].map((v) => ({ number: v.number, description: v.description, imageId: v.data.imageId })),
    }));
  }
}

function dedupe<R extends { v: TemplateVersion }>(rows: R[]): R[] {
  const seen = new Set<number>();
  return rows.filter((r) => !seen.has(r.v.number) && seen.add(r.v.number));
}

/** `LaunchTemplateData.*` from the wire (EC2 query names) into the stored form. */
export function readData(d: Params): TemplateData {
  const raw = d.raw as Record<string, unknown>;
  const out: TemplateData = {};
  const str = (k: string) => d.str(k);
  if (raw.ImageId !== undefined) out.imageId = str("ImageId");
  if (raw.InstanceType !== undefined) out.instanceType = str("InstanceType");
  if (raw.KeyName !== undefined) out.keyName = str("KeyName");
  if (raw.UserData !== undefined) out.userData = str("UserData");
  if (raw.SecurityGroupId !== undefined) out.securityGroupIds = d.list<string>("SecurityGroupId");
  if (raw.SecurityGroup !== undefined) out.securityGroups = d.list<string>("SecurityGroup");
  const iam = d.obj("IamInstanceProfile");
  if (iam) out.iamInstanceProfile = { arn: iam.str("Arn"), name: iam.str("Name") };
  if (raw.TagSpecification !== undefined) {
    out.tagSpecifications = readTagSpecs(d, ["instance", "volume", "network-interface", "spot-instances-request"]).map((s) => {
      checkTags(s.tags, true);
      return { resourceType: s.resourceType, tags: s.tags };
    });
  }
  const md = d.obj("MetadataOptions");
  if (md) {
    out.metadataOptions = {
      httpTokens: md.str("HttpTokens"),
      httpPutResponseHopLimit: md.int("HttpPutResponseHopLimit"),
      httpEndpoint: md.str("HttpEndpoint"),
      instanceMetadataTags: md.str("InstanceMetadataTags"),
    };
  }
  const mon = d.obj("Monitoring");
  if (mon) out.monitoring = { enabled: mon.bool("Enabled", false)! };
  const pl = d.obj("Placement");
  if (pl) out.placement = { availabilityZone: pl.str("AvailabilityZone"), tenancy: pl.str("Tenancy") };
  if (raw.EbsOptimized !== undefined) out.ebsOptimized = d.bool("EbsOptimized");
  if (raw.DisableApiTermination !== undefined) out.disableApiTermination = d.bool("DisableApiTermination");
  if (raw.InstanceInitiatedShutdownBehavior !== undefined)
    out.instanceInitiatedShutdownBehavior = str("InstanceInitiatedShutdownBehavior");
  if (raw.NetworkInterface !== undefined) {
    out.networkInterfaces = d.list("NetworkInterface").map((n) => {
      const q = new P(n, "ec2");
      return {
        deviceIndex: q.int("DeviceIndex"),
        subnetId: q.str("SubnetId"),
        groups: q.has("SecurityGroupId") ? q.list<string>("SecurityGroupId") : undefined,
        associatePublicIpAddress: q.bool("AssociatePublicIpAddress"),
        deleteOnTermination: q.bool("DeleteOnTermination"),
      };
    });
  }
  if (raw.BlockDeviceMapping !== undefined) {
    out.blockDeviceMappings = d.list("BlockDeviceMapping").map((b) => {
      const q = new P(b, "ec2");
      const ebs = q.obj("Ebs");
      return {
        deviceName: q.str("DeviceName"),
        ebs: ebs
          ? {
              volumeSize: ebs.int("VolumeSize"),
              volumeType: ebs.str("VolumeType"),
              deleteOnTermination: ebs.bool("DeleteOnTermination"),
              encrypted: ebs.bool("Encrypted"),
            }
          : undefined,
      };
    });
  }
  return out;
}

/** The stored form as `ResponseLaunchTemplateData` (its own, different, element names). */
function renderData(d: TemplateData) {
  return {
    imageId: d.imageId,
    instanceType: d.instanceType,
    keyName: d.keyName,
    userData: d.userData,
    securityGroupIdSet: d.securityGroupIds,
    securityGroupSet: d.securityGroups,
    iamInstanceProfile: d.iamInstanceProfile,
    tagSpecificationSet: d.tagSpecifications?.map((s) => ({
      resourceType: s.resourceType,
      tagSet: s.tags.map((t) => ({ key: t.Key, value: t.Value })),
    })),
    metadataOptions: d.metadataOptions,
    monitoring: d.monitoring,
    placement: d.placement,
    ebsOptimized: d.ebsOptimized,
    disableApiTermination: d.disableApiTermination,
    instanceInitiatedShutdownBehavior: d.instanceInitiatedShutdownBehavior,
    networkInterfaceSet: d.networkInterfaces?.map((n) => ({
      deviceIndex: n.deviceIndex,
      subnetId: n.subnetId,
      // The one list in these shapes whose members are not `<item>`.
      groupSet: n.groups ? xmlList(n.groups, "groupId") : undefined,
      associatePublicIpAddress: n.associatePublicIpAddress,
      deleteOnTermination: n.deleteOnTermination,
    })),
    blockDeviceMappingSet: d.blockDeviceMappings,
  };
}
