/**
 * Simulated AWS Systems Manager: managed-node registration (agents), Run Command with
 * `AWS-RunShellScript` executed for real with bash in each instance's sandbox, and Parameter Store
 * including the public AL2023 AMI parameters. awsJson 1.1, `X-Amz-Target: AmazonSSM.<Op>`.
 *
 * Actions: DescribeInstanceInformation; SendCommand (AWS-RunShellScript only), GetCommandInvocation,
 * ListCommands, ListCommandInvocations, CancelCommand; PutParameter, GetParameter, GetParameters,
 * GetParametersByPath, DeleteParameter, DeleteParameters, DescribeParameters, GetParameterHistory,
 * AddTagsToResource / RemoveTagsFromResource / ListTagsForResource (parameters). Not simulated:
 * other documents, S3/CloudWatch output upload (accepted, ignored), SNS notifications of commands,
 * parameter labels and policies, the exponential ramp-up of MaxConcurrency (the limit applies
 * from the first dispatch).
 *
 * Settings (all through `cloud.setting`):
 * - `ssm.agentOnlineMs` (60000) and `ssm.agentOnlineJitter` (0.5): agent registration after `running`;
 * - `ssm.pingIntervalMs` (300000): agent ping interval behind LastPingDateTime;
 * - `ssm.invocationVisibleMs` (500): GetCommandInvocation answers InvocationDoesNotExist before;
 * - `ssm.deliveryMs` (2000 ± 50 %), `ssm.deliveryRetryMs` (30000): delivery and retries to an offline agent;
 * - `ssm.resultMs` (1000): results visible after the script exits;
 * - `ssm.cancelMs` (1000): Cancelling → Cancelled;
 * - `ssm.defaultTimeoutSeconds` (3600): TimeoutSeconds when omitted (UNSURE: 3600 vs 600);
 * - `ssm.timeoutResponseCode` (137): ResponseCode of an execution timeout (the Linux agent's kill code);
 * - `ssm.maxWallMs` (120000): wall-clock limit of one script under the virtual clock;
 * - `ssm.rejectOfflineAgents` (true): SendCommand by InstanceIds rejects ConnectionLost nodes with
 *   InvalidInstanceId (false: accept them and let delivery time out).
 */
import type { Backend, Cloud } from "../../cloud.ts";
import type { Ec2Api, SsmApi } from "../../contracts.ts";
import { AwsError } from "../../protocol/errors.ts";
import { Params } from "../../protocol/params.ts";
import type { RequestContext, ServiceDefinition } from "../../protocol/types.ts";
import { sandboxMode } from "./sandbox.ts";
import { AGENT_VERSION, Agents, type AgentView } from "./agents.ts";
import { INSTANCE_ID, paginate } from "./common.ts";
import { type BaseImage, ParameterStore } from "./parameters.ts";
import { computerName, RunCommand } from "./run-command.ts";

export { PUBLIC_AMI_PARAMETERS } from "./parameters.ts";

/** EC2's optional base-image listing (the EC2 backend provides it; not part of `Ec2Api`). */
interface Ec2WithBaseImages extends Ec2Api {
  baseImages?(): BaseImage[];
}

/** The SSM backend registered as "ssm". */
export class SsmBackend implements SsmApi {
  readonly definition: ServiceDefinition;
  readonly agents: Agents;
  readonly runCommand: RunCommand;
  readonly parameters: ParameterStore;
  private readonly onBaseImage = (img: BaseImage) => this.parameters.publishBaseImage(img);

  constructor(private readonly cloud: Cloud) {
    this.agents = new Agents(cloud, (id) => this.runCommand.instanceGone(id));
    this.runCommand = new RunCommand(cloud, this.agents);
    this.parameters = new ParameterStore(cloud);
    cloud.bus.on("base-image-published", this.onBaseImage);
    const rc = this.runCommand;
    const ps = this.parameters;
    this.definition = {
      signingName: "ssm",
      protocol: "json",
      jsonVersion: "1.1",
      targetPrefix: "AmazonSSM",
      actions: {
        DescribeInstanceInformation: (input, ctx) => this.describeInstanceInformation(input, ctx),
        SendCommand: (input, ctx) => rc.sendCommand(input, ctx),
        GetCommandInvocation: (input, ctx) => rc.getCommandInvocation(input, ctx),
        ListCommands: (input, ctx) => rc.listCommands(input, ctx),
        ListCommandInvocations: (input, ctx) => rc.listCommandInvocations(input, ctx),
        CancelCommand: (input, ctx) => rc.cancelCommand(input, ctx),
        PutParameter: (input, ctx) => ps.putParameter(input, ctx),
        GetParameter: (input, ctx) => ps.getParameter(input, ctx),
        GetParameters: (input, ctx) => ps.getParameters(input, ctx),
        GetParametersByPath: (input, ctx) => ps.getParametersByPath(input, ctx),
        DeleteParameter: (input, ctx) => ps.deleteParameter(input, ctx),
        DeleteParameters: (input, ctx) => ps.deleteParameters(input, ctx),
        DescribeParameters: (input, ctx) => ps.describeParameters(input, ctx),
        GetParameterHistory: (input, ctx) => ps.getParameterHistory(input, ctx),
        AddTagsToResource: (input, ctx) => ps.addTagsToResource(input, ctx),
        RemoveTagsFromResource: (input, ctx) => ps.removeTagsFromResource(input, ctx),
        ListTagsForResource: (input, ctx) => ps.listTagsForResource(input, ctx),
      },
    };
  }

  start(): void {
    const ec2 = this.cloud.maybeBackend<Ec2WithBaseImages>("ec2");
    const images = [...(ec2?.baseImages?.() ?? [])].sort(
      (a, b) => Date.parse(a.publishedAt ?? "") - Date.parse(b.publishedAt ?? "") || 0,
    );
    for (const img of images) this.parameters.publishBaseImage(img);
    this.agents.start();
  }

  stop(): void {
    this.cloud.bus.off("base-image-published", this.onBaseImage);
    this.agents.stop();
    this.runCommand.stop();
  }

  isOnline(instanceId: string): boolean {
    return this.agents.isOnline(instanceId);
  }

  snapshot(): unknown {
    return {
      agents: this.agents.list().map((a) => ({
        instanceId: a.instanceId,
        pingStatus: a.pingStatus,
        lastPing: new Date(a.lastPing).toISOString(),
        registeredAt: new Date(a.registeredAt).toISOString(),
      })),
      commands: this.runCommand.all().map((c) => ({
        commandId: c.id,
        comment: c.comment,
        status: c.status,
        statusDetails: c.details,
        requestedAt: new Date(c.requestedAt).toISOString(),
        script: c.script.slice(0, 500),
        invocations: c.invocations.map((i) => ({
          instanceId: i.instanceId,
          status: i.status,
          statusDetails: i.details,
          responseCode: i.responseCode,
          stdout: i.stdout.slice(0, 2000),
          stderr: i.stderr.slice(0, 2000),
        })),
      })),
      parameters: this.parameters.snapshot(),
    };
  }

  private describeInstanceInformation(input: unknown, ctx: RequestContext): unknown {
    const p = new Params(input, ctx);
    const filters = p.list<{ Key?: string; Values?: string[] }>("Filters");
    const legacy = p.list<{ key?: string; valueSet?: string[] }>("InstanceInformationFilterList");
    if (filters.length > 0 && legacy.length > 0) {
      throw new AwsError(
        "InvalidInstanceInformationFilterValue",
        "InstanceInformationFilterList and Filters cannot be used in the same request.",
      );
    }
    const maxResults = p.int("MaxResults", { min: 5, max: 50 }) ?? 10;
    const preds: ((a: AgentView) => boolean)[] = [];
    for (const f of [
      ...filters.map((x) => ({ key: x?.Key, values: x?.Values ?? [] })),
      ...legacy.map((x) => ({ key: x?.key, values: x?.valueSet ?? [] })),
    ]) {
      const key = String(f.key ?? "");
      const values = f.values;
      if (key === "InstanceIds") {
        const bad = values.filter((v) => !INSTANCE_ID.test(v));
        if (bad.length > 0) throw new AwsError("InvalidInstanceId", `Instance ids [${bad.join(", ")}] are not valid.`);
        // A well-formed id that is not managed just matches nothing (reference §5.1, UNSURE).
        preds.push((a) => values.includes(a.instanceId));
      } else if (key === "PingStatus") preds.push((a) => values.includes(a.pingStatus));
      else if (key === "PlatformTypes") preds.push(() => values.includes("Linux"));
      else if (key === "ResourceType") preds.push(() => values.includes("EC2Instance"));
      else if (key === "AgentVersion") preds.push(() => values.includes(AGENT_VERSION));
      else if (key === "tag-key") preds.push((a) => values.some((k) => a.instance?.tags.has(k) ?? false));
      else if (key.startsWith("tag:")) {
        const tag = key.slice(4);
        preds.push((a) => {
          const v = a.instance?.tags.get(tag);
          return v !== undefined && values.includes(v);
        });
      } else if (["AssociationStatus", "IamRole", "ActivationIds", "SourceIds", "SourceTypes"].includes(key)) {
        preds.push(() => false);
      } else throw new AwsError("InvalidFilterKey", `The filter key ${key} is not valid.`);
    }
    const all = this.agents.list().filter((a) => preds.every((pr) => pr(a)));
    const { page, next } = paginate(all, maxResults, p.str("NextToken"));
    return {
      InstanceInformationList: page.map((a) => ({
        InstanceId: a.instanceId,
        PingStatus: a.pingStatus,
        LastPingDateTime: new Date(a.lastPing),
        AgentVersion: AGENT_VERSION,
        IsLatestVersion: true,
        PlatformType: "Linux",
        PlatformName: "Amazon Linux",
        PlatformVersion: "2023",
        ResourceType: "EC2Instance",
        IPAddress: a.instance?.privateIp,
        ComputerName: a.instance ? computerName(a.instance.privateIp) : undefined,
        SourceId: a.instanceId,
        SourceType: "AWS::EC2::Instance",
      })),
      NextToken: next,
    };
  }
}

/** Registers the simulated SSM as "ssm" and returns its backend. */
export function registerSsm(cloud: Cloud): SsmBackend {
  sandboxMode(cloud.setting("ssm.sandbox", "auto")); // a bad value fails here, not at the first command
  const backend = new SsmBackend(cloud);
  cloud.register("ssm", backend as Backend);
  return backend;
}
