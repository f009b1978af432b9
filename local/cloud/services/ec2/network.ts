/**
 * The default VPC a new account has: one VPC (172.31.0.0/16), one default /20 subnet per AZ, and
 * the `default` security group. Private IPs come from the subnet's CIDR, unique while in use.
 */
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { RequestContext } from "../../protocol/types.ts";
import type { Ec2Context } from "./context.ts";
import { applyFilters, type FilterTable, paginate, readFilters, type Sequenced, tagSet } from "./util.ts";

export interface Vpc extends Sequenced {
  id: string;
  cidr: string;
  dhcpOptionsId: string;
  tags: Map<string, string>;
}

export interface Subnet extends Sequenced {
  id: string;
  az: string;
  azId: string;
  vpcId: string;
  cidr: string;
  arn: string;
  tags: Map<string, string>;
  /** Network address as an integer, and the block size. */
  base: number;
  size: number;
  used: Set<number>;
  cursor: number;
}

export interface SecurityGroup extends Sequenced {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  arn: string;
  tags: Map<string, string>;
}

const AZ_LETTERS = ["a", "b", "c"] as const;

const ipToInt = (ip: string): number => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");

/** `us-east-1` → `use1`, the prefix of zone ids (`use1-az1`). */
function zoneIdPrefix(region: string): string {
  const [geo = "", dir = "", n = ""] = region.split("-");
  return `${geo}${dir.charAt(0)}${n}`;
}

export class Network {
  readonly vpc: Vpc;
  readonly subnets: Subnet[];
  readonly groups: SecurityGroup[];

  constructor(private readonly ctx: Ec2Context) {
    this.vpc = { id: ctx.id("vpc"), cidr: "172.31.0.0/16", dhcpOptionsId: ctx.id("dopt"), tags: new Map(), seq: ctx.seq() };
    this.subnets = AZ_LETTERS.map((letter, i) => {
      const id = ctx.id("subnet");
      const cidr = `172.31.${i * 16}.0/20`;
      return {
        id,
        az: `${ctx.region}${letter}`,
        azId: `${zoneIdPrefix(ctx.region)}-az${i + 1}`,
        vpcId: this.vpc.id,
        cidr,
        arn: `arn:aws:ec2:${ctx.region}:${ctx.accountId}:subnet/${id}`,
        tags: new Map(),
        base: ipToInt(`172.31.${i * 16}.0`),
        size: 4096,
        used: new Set(),
        cursor: 4,
        seq: ctx.seq(),
      };
    });
    const sg = ctx.id("sg");
    this.groups = [
      {
        id: sg,
        name: "default",
        description: "default VPC security group",
        vpcId: this.vpc.id,
        arn: `arn:aws:ec2:${ctx.region}:${ctx.accountId}:security-group/${sg}`,
        tags: new Map(),
        seq: ctx.seq(),
      },
    ];
  }

  subnet(id: string): Subnet | undefined {
    return this.subnets.find((s) => s.id === id);
  }

  group(id: string): SecurityGroup | undefined {
    return this.groups.find((g) => g.id === id);
  }

  /**
   * Next free address of the subnet. AWS reserves the first four and the last address of every
   * subnet; addresses are handed out round-robin so a released one is not reused at once.
   */
  allocateIp(subnet: Subnet): string {
    const usable = subnet.size - 5;
    if (subnet.used.size >= usable) {
      throw new AwsError(
        "InsufficientFreeAddressesInSubnet",
        `There are not enough free addresses in subnet '${subnet.id}' to satisfy the requested number of instances.`,
      );
    }
    for (;;) {
      const off = subnet.cursor;
      subnet.cursor = off + 1 >= subnet.size - 1 ? 4 : off + 1;
      if (!subnet.used.has(off)) {
        subnet.used.add(off);
        return intToIp(subnet.base + off);
      }
    }
  }

  releaseIp(subnet: Subnet, ip: string): void {
    subnet.used.delete(ipToInt(ip) - subnet.base);
  }

  /** Every resource the network owns, for CreateTags/DeleteTags. */
  taggable(id: string): Map<string, string> | undefined {
    if (id === this.vpc.id) return this.vpc.tags;
    return this.subnet(id)?.tags ?? this.group(id)?.tags;
  }

  readonly actions = {
    DescribeAvailabilityZones: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const names = p.list<string>("ZoneName");
      const ids = p.list<string>("ZoneId");
      const zones = this.subnets.map((s) => ({ seq: s.seq, name: s.az, id: s.azId }));
      for (const n of names) {
        if (!zones.some((z) => z.name === n)) throw new AwsError("InvalidParameterValue", `Invalid availability zone: [${n}]`);
      }
      const table: FilterTable<(typeof zones)[number]> = {
        "zone-name": (z) => z.name,
        "zone-id": (z) => z.id,
        "region-name": () => this.ctx.region,
        state: () => "available",
        "zone-type": () => "availability-zone",
        "group-name": () => this.ctx.region,
        "opt-in-status": () => "opt-in-not-required",
      };
      const selected = applyFilters(
        zones.filter((z) => (names.length === 0 || names.includes(z.name)) && (ids.length === 0 || ids.includes(z.id))),
        readFilters(p),
        table,
      );
      return {
        availabilityZoneInfo: selected.map((z) => ({
          optInStatus: "opt-in-not-required",
          messageSet: [],
          regionName: this.ctx.region,
          zoneName: z.name,
          zoneId: z.id,
          groupName: this.ctx.region,
          networkBorderGroup: this.ctx.region,
          zoneType: "availability-zone",
          zoneState: "available",
        })),
      };
    },

    DescribeVpcs: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("VpcId");
      for (const id of ids)
        if (id !== this.vpc.id) throw new AwsError("InvalidVpcID.NotFound", `The vpc ID '${id}' does not exist`);
      const table: FilterTable<Vpc> = {
        "vpc-id": (v) => v.id,
        "is-default": () => true,
        "cidr-block": (v) => v.cidr,
        cidr: (v) => v.cidr,
        state: () => "available",
        "owner-id": () => this.ctx.accountId,
        "dhcp-options-id": (v) => v.dhcpOptionsId,
      };
      const { page, nextToken } = paginate(
        applyFilters([this.vpc], readFilters(p), table, (v) => v.tags),
        p,
        { min: 5, max: 1000 },
      );
      return {
        vpcSet: page.map((v) => ({
          vpcId: v.id,
          ownerId: this.ctx.accountId,
          state: "available",
          cidrBlock: v.cidr,
          cidrBlockAssociationSet: [
            { associationId: `vpc-cidr-assoc-${v.id.slice(4)}`, cidrBlock: v.cidr, cidrBlockState: { state: "associated" } },
          ],
          dhcpOptionsId: v.dhcpOptionsId,
          instanceTenancy: "default",
          isDefault: true,
          tagSet: tagSet(v.tags),
        })),
        nextToken,
      };
    },

    DescribeSubnets: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("SubnetId");
      for (const id of ids)
        if (!this.subnet(id)) throw new AwsError("InvalidSubnetID.NotFound", `The subnet ID '${id}' does not exist`);
      const table: FilterTable<Subnet> = {
        "subnet-id": (s) => s.id,
        "vpc-id": (s) => s.vpcId,
        "availability-zone": (s) => s.az,
        "availability-zone-id": (s) => s.azId,
        "default-for-az": () => true,
        defaultForAz: () => true,
        "cidr-block": (s) => s.cidr,
        state: () => "available",
        "owner-id": () => this.ctx.accountId,
        "subnet-arn": (s) => s.arn,
        "map-public-ip-on-launch": () => true,
      };
      const listed = this.subnets.filter((s) => ids.length === 0 || ids.includes(s.id));
      const { page, nextToken } = paginate(
        applyFilters(listed, readFilters(p), table, (s) => s.tags),
        p,
        { min: 5, max: 1000 },
      );
      return {
        subnetSet: page.map((s) => ({
          subnetId: s.id,
          subnetArn: s.arn,
          state: "available",
          vpcId: s.vpcId,
          cidrBlock: s.cidr,
          availableIpAddressCount: s.size - 5 - s.used.size,
          availabilityZone: s.az,
          availabilityZoneId: s.azId,
          defaultForAz: true,
          mapPublicIpOnLaunch: true,
          assignIpv6AddressOnCreation: false,
          ipv6CidrBlockAssociationSet: [],
          ipv6Native: false,
          privateDnsNameOptionsOnLaunch: {
            hostnameType: "ip-name",
            enableResourceNameDnsARecord: false,
            enableResourceNameDnsAAAARecord: false,
          },
          ownerId: this.ctx.accountId,
          tagSet: tagSet(s.tags),
        })),
        nextToken,
      };
    },

    DescribeSecurityGroups: (input: unknown, rc: RequestContext) => {
      const p = new Params(input, rc);
      const ids = p.list<string>("GroupId");
      const names = p.list<string>("GroupName");
      for (const id of ids)
        if (!this.group(id)) throw new AwsError("InvalidGroup.NotFound", `The security group '${id}' does not exist`);
      for (const n of names) {
        if (!this.groups.some((g) => g.name === n))
          throw new AwsError("InvalidGroup.NotFound", `The security group '${n}' does not exist in default VPC '${this.vpc.id}'`);
      }
      const table: FilterTable<SecurityGroup> = {
        "group-id": (g) => g.id,
        "group-name": (g) => g.name,
        "vpc-id": (g) => g.vpcId,
        description: (g) => g.description,
        "owner-id": () => this.ctx.accountId,
      };
      const listed = this.groups.filter(
        (g) => (ids.length === 0 || ids.includes(g.id)) && (names.length === 0 || names.includes(g.name)),
      );
      const { page, nextToken } = paginate(
        applyFilters(listed, readFilters(p), table, (g) => g.tags),
        p,
        { min: 5, max: 1000 },
      );
      return {
        securityGroupInfo: page.map((g) => ({
          ownerId: this.ctx.accountId,
          groupId: g.id,
          groupName: g.name,
          groupDescription: g.description,
          vpcId: g.vpcId,
          securityGroupArn: g.arn,
          // The default group lets members talk to each other and everything out.
          ipPermissions: [
            {
              ipProtocol: "-1",
              groups: [{ groupId: g.id, userId: this.ctx.accountId }],
              ipRanges: [],
              ipv6Ranges: [],
              prefixListIds: [],
            },
          ],
          ipPermissionsEgress: [
            { ipProtocol: "-1", groups: [], ipRanges: [{ cidrIp: "0.0.0.0/0" }], ipv6Ranges: [], prefixListIds: [] },
          ],
          tagSet: tagSet(g.tags),
        })),
        nextToken,
      };
    },
  };
}
