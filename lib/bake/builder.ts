import { DescribeInstancesCommand, type Instance, RunInstancesCommand, TerminateInstancesCommand } from "@aws-sdk/client-ec2";
import { DescribeInstanceInformationCommand } from "@aws-sdk/client-ssm";
import { StepFailedError } from "../errors.ts";
import { clientToken } from "../names.ts";
import { type Attempt, type BakeDeps, type BakePlan, type PollResult, Roles, Tags } from "./types.ts";
import { awsCode, guardedReconciler, reconciler, tagList, tagsOf } from "./util.ts";
import { checkDeadline, nextCheckSeconds, waitStart } from "./waits.ts";

export interface BuilderInput {
  plan: BakePlan;
  attempt?: Attempt;
}

export interface BuilderRef {
  builderId: string;
  state: string;
  /** True when an instance launched earlier for this execution was found and reused. */
  adopted: boolean;
}

const ALIVE = ["pending", "running", "stopping", "stopped"];

/** This execution's builders (all attempts), newest first. */
export async function findBuilders(plan: BakePlan, deps: Pick<BakeDeps, "ec2">, states = ALIVE): Promise<Instance[]> {
  const out: Instance[] = [];
  let NextToken: string | undefined;
  do {
    const r = await deps.ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${Tags.execution}`, Values: [plan.execution.name] },
          { Name: `tag:${Tags.service}`, Values: [plan.service] },
          { Name: `tag:${Tags.role}`, Values: [Roles.builder] },
          { Name: "instance-state-name", Values: states },
        ],
        NextToken,
      }),
    );
    for (const res of r.Reservations ?? []) out.push(...(res.Instances ?? []));
    NextToken = r.NextToken;
  } while (NextToken);
  return out.sort((a, b) => (b.LaunchTime?.getTime() ?? 0) - (a.LaunchTime?.getTime() ?? 0));
}

/** The RunInstances ClientToken of an attempt (a redrive that must replace a dead builder needs a fresh one). */
export function builderToken(plan: BakePlan, attempt: number): string {
  return attempt === 0 ? plan.builder.clientToken : clientToken(plan.execution.name, `LaunchBuilder#${attempt}`);
}

/**
 * LaunchBuilder: make sure this execution has one live builder. First looks for an instance
 * tagged `kiln:execution=<name>, kiln:role=builder` (a crash between RunInstances and our return
 * must not launch a second one on retry or redrive); otherwise RunInstances with the attempt's
 * ClientToken, which AWS also deduplicates for 24 h after termination.
 */
export const launchBuilder = guardedReconciler(
  "LaunchBuilder",
  async (input: BuilderInput, deps: Pick<BakeDeps, "ec2" | "lock">): Promise<BuilderRef> => {
    const { plan } = input;
    const attempt = input.attempt?.redriveCount ?? 0;
    const [existing] = await findBuilders(plan, deps);
    if (existing?.InstanceId) return { builderId: existing.InstanceId, state: existing.State?.Name ?? "pending", adopted: true };
    const tags = {
      ...plan.tags,
      Name: plan.builder.name,
      [Tags.role]: Roles.builder,
      [Tags.attempt]: String(attempt),
      [Tags.commit]: plan.commit,
    };
    const rd = plan.builder.rootDevice;
    let r;
    try {
      r = await deps.ec2.send(
        new RunInstancesCommand({
          ImageId: plan.baseAmi.imageId,
          InstanceType: plan.builder.instanceType as never,
          MinCount: 1,
          MaxCount: 1,
          ClientToken: builderToken(plan, attempt),
          ...(plan.builder.subnet ? { SubnetId: plan.builder.subnet } : {}),
          ...(plan.builder.securityGroups.length ? { SecurityGroupIds: plan.builder.securityGroups } : {}),
          IamInstanceProfile: { Name: plan.builder.instanceProfile },
          // Encryption is decided at launch: CreateImage snapshots the builder's volumes as they are.
          BlockDeviceMappings: [
            {
              DeviceName: rd.deviceName,
              Ebs: {
                DeleteOnTermination: true,
                Encrypted: rd.encrypted,
                ...(rd.kmsKeyId ? { KmsKeyId: rd.kmsKeyId } : {}),
                ...(rd.volumeSizeGiB ? { VolumeSize: rd.volumeSizeGiB } : {}),
              },
            },
          ],
          MetadataOptions: { HttpTokens: "required", HttpEndpoint: "enabled" },
          TagSpecifications: [
            { ResourceType: "instance", Tags: tagList(tags) },
            { ResourceType: "volume", Tags: tagList(tags) },
          ],
        }),
      );
    } catch (err) {
      if (awsCode(err) === "IdempotentParameterMismatch")
        throw new StepFailedError(
          `LaunchBuilder: RunInstances token ${builderToken(plan, attempt)} was already used with other parameters (was the plan changed?); start a new execution`,
          { cause: err },
        );
      throw err;
    }
    const inst = r.Instances?.[0];
    if (!inst?.InstanceId) throw new StepFailedError("LaunchBuilder: RunInstances returned no instance");
    return { builderId: inst.InstanceId, state: inst.State?.Name ?? "pending", adopted: false };
  },
);

export interface WaitBuilderInput extends BuilderInput {
  builderId: string;
}

export interface BuilderStatus extends PollResult {
  builderId: string;
}

async function describeInstance(deps: Pick<BakeDeps, "ec2">, id: string): Promise<Instance | undefined> {
  try {
    const r = await deps.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return r.Reservations?.[0]?.Instances?.[0];
  } catch (err) {
    // Right after RunInstances the id may not be visible yet (reference §1.7).
    if (awsCode(err) === "InvalidInstanceID.NotFound") return undefined;
    throw err;
  }
}

async function ssmOnline(deps: Pick<BakeDeps, "ssm">, id: string): Promise<string | undefined> {
  const r = await deps.ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: [id] }] }));
  return r.InstanceInformationList?.find((i) => i.InstanceId === id)?.PingStatus;
}

/**
 * WaitBuilderReady: done when the builder is `running` and its SSM agent is Online. A builder that
 * died in an earlier attempt is replaced (redrive); one that died in this attempt fails the step.
 */
export const waitBuilderReady = reconciler(
  "WaitBuilderReady",
  async (input: WaitBuilderInput, deps: Pick<BakeDeps, "ec2" | "ssm" | "clock">): Promise<BuilderStatus> => {
    const { plan } = input;
    const attempt = input.attempt?.redriveCount ?? 0;
    const cfg = plan.config;
    const inst = await describeInstance(deps, input.builderId);
    const state = inst?.State?.Name;
    if (state === "terminated" || state === "shutting-down") {
      const madeIn = Number(tagsOf(inst?.Tags)[Tags.attempt] ?? "0");
      if (madeIn < attempt) {
        const next = await launchBuilder({ plan, attempt: input.attempt }, deps);
        return {
          status: "pending",
          builderId: next.builderId,
          waitSeconds: cfg.expected.builderReadySeconds,
          detail: `builder ${input.builderId} from attempt ${madeIn} is ${state}; launched ${next.builderId}`,
        };
      }
      const reason = inst?.StateReason
        ? `${inst.StateReason.Code}: ${inst.StateReason.Message}`
        : (inst?.StateTransitionReason ?? "no reason given");
      throw new StepFailedError(
        `WaitBuilderReady: builder ${input.builderId} is ${state} (${reason}); redrive to launch a new one`,
      );
    }
    const start = waitStart(inst?.LaunchTime?.getTime(), input.attempt);
    const ping = state === "running" ? await ssmOnline(deps, input.builderId) : undefined;
    if (ping === "Online")
      return {
        status: "done",
        builderId: input.builderId,
        waitSeconds: 0,
        detail: `builder ${input.builderId} running, SSM agent Online`,
      };
    const seen = `builder ${input.builderId} is ${state ?? "not visible yet"}${state === "running" ? `, SSM agent ${ping ?? "not registered"}` : ""}`;
    const elapsed = checkDeadline(
      deps.clock.now(),
      start,
      cfg.timeouts.builderReadySeconds,
      `WaitBuilderReady: ${seen}; check the instance profile (${plan.builder.instanceProfile}) allows SSM and the subnet reaches the SSM endpoints. The builder is kept for inspection`,
    );
    return {
      status: "pending",
      builderId: input.builderId,
      waitSeconds: nextCheckSeconds(elapsed, cfg.expected.builderReadySeconds, cfg.timeouts.builderReadySeconds),
      detail: seen,
    };
  },
);

/**
 * TerminateBuilder: terminate every builder of this execution (all attempts). Already terminated
 * or vanished instances are fine: the desired state is "no builder left".
 */
export const terminateBuilder = reconciler(
  "TerminateBuilder",
  async (input: BuilderInput, deps: Pick<BakeDeps, "ec2">): Promise<{ terminated: string[] }> => {
    const ids = (await findBuilders(input.plan, deps, ["pending", "running", "stopping", "stopped"]))
      .map((i) => i.InstanceId!)
      .filter(Boolean);
    if (ids.length === 0) return { terminated: [] };
    try {
      await deps.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    } catch (err) {
      if (awsCode(err) !== "InvalidInstanceID.NotFound") throw err;
      // One id vanished meanwhile: AWS then terminates none of them, so do them one by one.
      for (const id of ids) {
        try {
          await deps.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
        } catch (e) {
          if (awsCode(e) !== "InvalidInstanceID.NotFound") throw e;
        }
      }
    }
    return { terminated: ids };
  },
);
