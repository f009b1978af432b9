/**
 * What operators look at: per service, the live commit, traffic weights, fleets and recent
 * executions — read only through AWS APIs, so the CLI and the console work against the local
 * cloud and real AWS alike.
 */
import type { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { DescribeInstancesCommand, type EC2Client } from "@aws-sdk/client-ec2";
import {
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  DescribeTargetGroupsCommand,
  type ElasticLoadBalancingV2Client,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { ListExecutionsCommand, type SFNClient } from "@aws-sdk/client-sfn";
import type { KilnConfig, ServiceConfig } from "../config/index.ts";
import { type DocumentSender, readLock } from "../lock/index.ts";
import { RETIRED_TAGS } from "../roll/abort.ts";
import { KILN_TAGS, serviceGroups, tagValue } from "../roll/fleet.ts";
import { readWeights, targetGroupHealth } from "../roll/traffic.ts";
import { canaryOf, type CanaryPosition } from "./history.ts";
import { currentState, describeExecution, parseInput, unitOfInput } from "./target.ts";

/** Who holds a unit's lock and what waits behind it, as the lock table says (lib/lock). */
export interface LockStatus {
  holder?: { executionArn: string; name?: string; commit?: string; trigger?: string; state?: string; since?: string };
  queued?: { name: string; commit: string; trigger?: string; seq: number; queuedAt?: string };
  /** The last deployment that failed while holding the lock, while it is unresolved. */
  failed?: { executionArn: string; status: string };
}

export interface FleetStatus {
  group: string;
  role: string;
  /**
   * What the fleet is doing now: `live` (its target group holds the most weight), `canary` (some
   * weight), `retired` (kept at 0 for fast rollback, `kiln:delete-after`), else `standby` (a green
   * not yet taking traffic, or a fleet whose target group has no weight).
   */
  state: "live" | "canary" | "retired" | "standby";
  commit?: string;
  execution?: string;
  targetGroups: string[];
  capacity: { min: number; max: number; desired: number };
  instances: { id: string; lifecycle: string; health?: string; target?: string; commit?: string }[];
}

export interface ServiceStatus {
  service: string;
  /** The environment shown (executions are filtered to it). */
  environment?: string;
  liveCommit?: string;
  weights: { targetGroup: string; name: string; weight: number }[];
  loadBalancer?: { name: string; dns?: string; url?: string };
  fleets: FleetStatus[];
  executions: {
    name: string;
    arn: string;
    status: string;
    environment?: string;
    startDate?: string;
    stopDate?: string;
    redriveCount?: number;
    /** A running execution's current state (`RequestApproval` = waiting for approval). */
    currentStep?: string;
    /** While a running deployment is in its canary loop: which step and its green weight. */
    canary?: CanaryPosition;
  }[];
  /** Read from the lock table when the target knows it (`lockTable`). */
  lock?: LockStatus;
  error?: string;
}

export interface StatusDeps {
  ec2: EC2Client;
  autoscaling: AutoScalingClient;
  elbv2: ElasticLoadBalancingV2Client;
  sfn: SFNClient;
  /** The lock table's DocumentClient: needed for `lock`. */
  dynamodb?: DocumentSender;
}

/** Status of one service. Errors reading AWS are reported in `error` rather than thrown. */
export async function serviceStatus(
  service: string,
  cfg: ServiceConfig,
  deps: StatusDeps,
  opts: {
    deployStateMachineArn?: string;
    executions?: number;
    environment?: string;
    config?: KilnConfig;
    /** The lock table (`kiln-<stage>-lock`): with `deps.dynamodb`, status shows the holder and the queue. */
    lockTable?: string;
  } = {},
): Promise<ServiceStatus> {
  const out: ServiceStatus = {
    service,
    ...(opts.environment ? { environment: opts.environment } : {}),
    weights: [],
    fleets: [],
    executions: [],
  };
  try {
    const tgs = await deps.elbv2.send(new DescribeTargetGroupsCommand({ Names: [...cfg.targetGroups] }));
    const nameOf = new Map((tgs.TargetGroups ?? []).map((t) => [t.TargetGroupArn!, t.TargetGroupName!]));
    const lbArn = tgs.TargetGroups?.flatMap((t) => t.LoadBalancerArns ?? [])[0];
    if (lbArn) {
      const lb = (await deps.elbv2.send(new DescribeLoadBalancersCommand({ LoadBalancerArns: [lbArn] }))).LoadBalancers?.[0];
      if (lb)
        out.loadBalancer = {
          name: lb.LoadBalancerName!,
          dns: lb.DNSName,
          url: lb.DNSName ? (lb.DNSName.startsWith("http") ? lb.DNSName : `http://${lb.DNSName}`) : undefined,
        };
    }
    let listenerArn = "arn" in cfg.listener ? cfg.listener.arn : undefined;
    if (!listenerArn && lbArn) {
      const ls = await deps.elbv2.send(new DescribeListenersCommand({ LoadBalancerArn: lbArn }));
      const port = "port" in cfg.listener ? cfg.listener.port : undefined;
      listenerArn = ls.Listeners?.find((l) => port === undefined || l.Port === port)?.ListenerArn;
    }
    if (listenerArn) {
      const w = await readWeights(deps.elbv2, { listenerArn, ruleArn: cfg.ruleArn });
      out.weights = w.map((x) => ({ targetGroup: x.arn, name: nameOf.get(x.arn) ?? x.arn, weight: x.weight }));
    }
    const groups = await serviceGroups(deps.autoscaling, service, opts.environment);
    const health = new Map<string, string>();
    for (const arn of nameOf.keys()) {
      const h = await targetGroupHealth(deps.elbv2, arn);
      for (const id of h.healthy) health.set(id, "healthy");
      for (const id of h.unhealthy) health.set(id, "unhealthy");
      for (const o of h.other) health.set(o.id, o.state);
    }
    const ids = groups.flatMap((g) => (g.Instances ?? []).map((i) => i.InstanceId!));
    const commits = new Map<string, string>();
    for (let i = 0; i < ids.length; i += 200) {
      const r = await deps.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids.slice(i, i + 200) }));
      for (const res of r.Reservations ?? [])
        for (const inst of res.Instances ?? []) commits.set(inst.InstanceId!, tagValue(inst.Tags, KILN_TAGS.commit) ?? "");
    }
    const weightOf = new Map(out.weights.map((w) => [w.targetGroup, w.weight]));
    const top = Math.max(0, ...out.weights.map((w) => w.weight));
    for (const g of groups) {
      const weight = Math.max(0, ...(g.TargetGroupARNs ?? []).map((a) => weightOf.get(a) ?? 0));
      const desired = g.DesiredCapacity ?? 0;
      const state: FleetStatus["state"] =
        weight > 0 && weight === top && desired > 0
          ? "live"
          : weight > 0 && desired > 0
            ? "canary"
            : tagValue(g.Tags, RETIRED_TAGS.deleteAfter) !== undefined
              ? "retired"
              : "standby";
      out.fleets.push({
        group: g.AutoScalingGroupName!,
        role: tagValue(g.Tags, KILN_TAGS.role) ?? "fleet",
        state,
        commit: tagValue(g.Tags, KILN_TAGS.commit),
        execution: tagValue(g.Tags, KILN_TAGS.execution),
        targetGroups: (g.TargetGroupARNs ?? []).map((a) => nameOf.get(a) ?? a),
        capacity: { min: g.MinSize ?? 0, max: g.MaxSize ?? 0, desired: g.DesiredCapacity ?? 0 },
        instances: (g.Instances ?? []).map((i) => ({
          id: i.InstanceId!,
          lifecycle: i.LifecycleState ?? "?",
          health: health.get(i.InstanceId!),
          commit: commits.get(i.InstanceId!),
        })),
      });
    }
    // The live commit is the live fleet's (the one whose target group holds the most weight).
    out.liveCommit = out.fleets.find((f) => f.state === "live")?.commit;
    if (opts.deployStateMachineArn)
      out.executions = await unitExecutions(
        deps.sfn,
        opts.deployStateMachineArn,
        { service, ...(opts.environment ? { environment: opts.environment } : {}) },
        { limit: opts.executions ?? 10, ...(opts.config ? { config: opts.config } : {}) },
      );
    if (opts.lockTable && deps.dynamodb && opts.environment)
      out.lock = await lockStatus({ service, environment: opts.environment }, deps.dynamodb, opts.lockTable);
  } catch (err) {
    out.error = `${(err as Error).name}: ${(err as Error).message}`;
  }
  return out;
}

/** One deployment of a unit, as the status and the CLI list it. */
export type UnitExecution = ServiceStatus["executions"][number];

/**
 * The newest executions of `stateMachineArn` that belong to (service, environment), newest first.
 * Membership is read from each candidate's input (DescribeExecution), never from its name; the
 * name's `<service>-` prefix only narrows which executions are described. `environment` undefined
 * = any environment of the service. At most `limit` are returned and `describeBudget` described.
 */
export async function unitExecutions(
  sfn: Pick<SFNClient, "send">,
  stateMachineArn: string,
  unit: { service: string; environment?: string },
  opts: { limit?: number; config?: KilnConfig; describeBudget?: number } = {},
): Promise<UnitExecution[]> {
  const limit = opts.limit ?? 10;
  let budget = opts.describeBudget ?? Math.max(50, limit * 5);
  const found: UnitExecution[] = [];
  let nextToken: string | undefined;
  do {
    const r = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 100, nextToken }));
    // ListExecutions is newest first.
    const page = [...(r.executions ?? [])].sort((a, b) => (b.startDate?.getTime() ?? 0) - (a.startDate?.getTime() ?? 0));
    for (const e of page) {
      if (found.length >= limit || budget <= 0) break;
      if (!e.name?.startsWith(`${unit.service}-`)) continue;
      budget--;
      const d = await describeExecution(sfn, e.executionArn!);
      const u = unitOfInput(parseInput(d?.input), opts.config);
      if (!u || u.service !== unit.service) continue;
      if (unit.environment !== undefined && u.environment !== unit.environment) continue;
      found.push({
        name: e.name!,
        arn: e.executionArn!,
        status: d?.status ?? e.status!,
        ...(u.environment ? { environment: u.environment } : {}),
        startDate: e.startDate?.toISOString(),
        stopDate: (d?.stopDate ?? e.stopDate)?.toISOString(),
        redriveCount: e.redriveCount,
        ...((d?.status ?? e.status) === "RUNNING" ? await currentStep(sfn, e.executionArn!) : {}),
      });
    }
    nextToken = r.nextToken;
  } while (nextToken && found.length < limit && budget > 0);
  return found;
}

/**
 * The state a running execution is in (see `currentState`), and its canary step while it is in the
 * canary loop; nothing when its history cannot be read.
 */
async function currentStep(
  sfn: Pick<SFNClient, "send">,
  executionArn: string,
): Promise<{ currentStep?: string; canary?: CanaryPosition }> {
  const state = await currentState(sfn, executionArn).catch(() => undefined);
  if (!state) return {};
  const canary = await canaryOf(sfn, executionArn, state).catch(() => undefined);
  return { currentStep: state, ...(canary ? { canary } : {}) };
}

/** The lock item of a unit, as an operator reads it: holder, queued request, unresolved failure. */
export async function lockStatus(
  unit: { service: string; environment: string },
  ddb: DocumentSender,
  table: string,
): Promise<LockStatus> {
  const item = await readLock(unit, { ddb, table, clock: { now: () => 0 } });
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const out: LockStatus = {};
  if (item?.holder)
    out.holder = {
      executionArn: item.holder,
      ...(item.holderName ? { name: item.holderName } : {}),
      ...(item.holderCommit ? { commit: item.holderCommit } : {}),
      ...(item.holderTrigger ? { trigger: item.holderTrigger } : {}),
      ...(item.holderState ? { state: item.holderState } : {}),
      ...(item.acquiredAt !== undefined ? { since: iso(item.acquiredAt) } : {}),
    };
  if (item?.queued)
    out.queued = {
      name: item.queued.name,
      commit: item.queued.commit,
      trigger: item.queued.input?.trigger,
      seq: item.queued.seq,
      ...(item.queued.queuedAt !== undefined ? { queuedAt: iso(item.queued.queuedAt) } : {}),
    };
  if (item?.lastFailed?.unresolved) out.failed = { executionArn: item.lastFailed.executionArn, status: item.lastFailed.status };
  return out;
}
