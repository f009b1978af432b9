/**
 * The calls kiln makes most, as one stateful scenario that runs unchanged against any endpoint
 * speaking the AWS APIs (the simulated cloud, moto). Each step's outcome is kept by name so a test
 * can compare one implementation's answer with another's.
 */
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  PutLifecycleHookCommand,
} from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient, DescribeAlarmsCommand, PutMetricAlarmCommand } from "@aws-sdk/client-cloudwatch";
import {
  CreateImageCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  RunInstancesCommand,
} from "@aws-sdk/client-ec2";
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DescribeListenersCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
  RegisterTargetsCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { CreateStateMachineCommand, DescribeExecutionCommand, SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { CreateTopicCommand, PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import {
  DescribeInstanceInformationCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  ListCommandsCommand,
  PutParameterCommand,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";

/** What one call returned: its output without `$metadata`, or the error's name and HTTP status. */
export type Outcome =
  | { ok: Record<string, unknown> }
  | { error: { name: string; status: number | undefined; fault: string | undefined; message: string } };

/** SDK client config pointing at one endpoint (region, endpoint, credentials). */
export interface EndpointConfig {
  region: string;
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** Waits between polls of the scenario. */
export type Pause = (ms: number) => Promise<void>;

/** How the scenario waits, and what the endpoint is known not to do. */
export interface ScenarioOptions {
  /** Waits between polls (real time: both endpoints are separate processes or sockets). */
  pause: Pause;
  /** Bound of every wait. */
  deadlineMs?: number;
  /**
   * Whether instances register SSM agents (DescribeInstanceInformation lists them). moto does
   * not, and accepts SendCommand to any instance id, so the scenario does not wait for it there.
   */
  registersAgents: boolean;
}

/** Every step of the scenario, in order. Error steps are named `error:<Service>.<Action>`. */
export const STEPS = [
  "EC2.DescribeVpcs",
  "EC2.DescribeSubnets",
  "EC2.DescribeSecurityGroups",
  "EC2.DescribeAvailabilityZones",
  "EC2.DescribeImages(amazon)",
  "EC2.RunInstances",
  "EC2.CreateTags",
  "EC2.DescribeInstances",
  "EC2.CreateImage",
  "EC2.DescribeImages(own)",
  "EC2.CreateLaunchTemplate",
  "EC2.CreateLaunchTemplateVersion",
  "EC2.DescribeLaunchTemplateVersions",
  "ELBv2.CreateLoadBalancer",
  "ELBv2.CreateTargetGroup",
  "ELBv2.CreateListener",
  "ELBv2.DescribeListeners",
  "ELBv2.RegisterTargets",
  "ELBv2.DescribeTargetHealth",
  "ELBv2.ModifyTargetGroupAttributes",
  "AutoScaling.CreateAutoScalingGroup",
  "AutoScaling.DescribeAutoScalingGroups",
  "AutoScaling.DescribeAutoScalingInstances",
  "AutoScaling.PutLifecycleHook",
  "AutoScaling.DescribeLifecycleHooks",
  "SSM.PutParameter",
  "SSM.GetParameter",
  "SSM.GetParametersByPath",
  "SSM.SendCommand",
  "SSM.ListCommands",
  "CloudWatch.PutMetricAlarm",
  "CloudWatch.DescribeAlarms",
  "SNS.CreateTopic",
  "SNS.Publish",
  "SFN.CreateStateMachine",
  "SFN.StartExecution",
  "SFN.DescribeExecution",
  "error:EC2.DescribeInstances",
  "error:EC2.DescribeImages",
  "error:ELBv2.DescribeTargetGroups",
  "error:SSM.GetParameter",
  "error:SNS.Publish",
  "error:SFN.DescribeExecution",
] as const;
export type Step = (typeof STEPS)[number];

/** A state machine with a Pass state only: both implementations can run it to completion. */
const PASS_MACHINE = JSON.stringify({
  StartAt: "Echo",
  States: { Echo: { Type: "Pass", Result: { done: true }, ResultPath: "$.result", End: true } },
});

/**
 * Runs the scenario against `cfg` and returns every step's outcome. A failing step does not stop
 * the scenario: later steps that needed its result fail too, and the comparison shows both.
 * `pause` is how the scenario waits while polling (bounded by `deadlineMs` per wait).
 */
export async function runScenario(cfg: EndpointConfig, opts: ScenarioOptions): Promise<Map<Step, Outcome>> {
  const { pause, deadlineMs = 20_000 } = opts;
  const client = { ...cfg, maxAttempts: 1 };
  const ec2 = new EC2Client(client);
  const asg = new AutoScalingClient(client);
  const elb = new ElasticLoadBalancingV2Client(client);
  const ssm = new SSMClient(client);
  const cw = new CloudWatchClient(client);
  const sns = new SNSClient(client);
  const sfn = new SFNClient(client);
  const out = new Map<Step, Outcome>();
  const step = async (name: Step, call: () => Promise<any>): Promise<any> => {
    try {
      const { $metadata: _, ...rest } = await call();
      out.set(name, { ok: rest });
      return rest;
    } catch (err) {
      const e = err as { name: string; message: string; $fault?: string; $metadata?: { httpStatusCode?: number } };
      out.set(name, { error: { name: e.name, status: e.$metadata?.httpStatusCode, fault: e.$fault, message: e.message } });
      return undefined;
    }
  };
  const until = async <T>(what: string, poll: () => Promise<T | undefined>): Promise<T | undefined> => {
    const end = Date.now() + deadlineMs;
    for (;;) {
      const v = await poll().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > end) {
        console.warn(`differential scenario: gave up waiting for ${what} after ${deadlineMs} ms`);
        return undefined;
      }
      await pause(100);
    }
  };

  const vpcs = await step("EC2.DescribeVpcs", () =>
    ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "is-default", Values: ["true"] }] })),
  );
  const vpcId: string | undefined = vpcs?.Vpcs?.[0]?.VpcId;
  const subnets = await step("EC2.DescribeSubnets", () =>
    ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId ?? "vpc-none"] }] })),
  );
  // Two subnets in different zones: an ALB needs two.
  const byZone = new Map<string, string>();
  for (const s of (subnets?.Subnets ?? []) as { AvailabilityZone: string; SubnetId: string }[])
    if (!byZone.has(s.AvailabilityZone)) byZone.set(s.AvailabilityZone, s.SubnetId);
  const subnetIds = [...byZone.values()].slice(0, 2);
  const groups = await step("EC2.DescribeSecurityGroups", () =>
    ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId ?? "vpc-none"] }] })),
  );
  const groupId: string | undefined = groups?.SecurityGroups?.[0]?.GroupId;
  await step("EC2.DescribeAvailabilityZones", () => ec2.send(new DescribeAvailabilityZonesCommand({})));
  const amazon = await step("EC2.DescribeImages(amazon)", () =>
    ec2.send(new DescribeImagesCommand({ Owners: ["amazon"], Filters: [{ Name: "architecture", Values: ["x86_64"] }] })),
  );
  // moto's default list starts with Windows images; kiln bakes Linux, so pick a Linux one on both.
  const baseImage: string | undefined = (amazon?.Images as { ImageId: string; Platform?: string }[] | undefined)?.find(
    (i) => i.Platform !== "windows",
  )?.ImageId;

  const tags = [
    { Key: "kiln:service", Value: "web" },
    { Key: "kiln:execution", Value: "diff-1" },
    { Key: "kiln:role", Value: "builder" },
  ];
  const run = await step("EC2.RunInstances", () =>
    ec2.send(
      new RunInstancesCommand({
        ImageId: baseImage,
        InstanceType: "t3.micro",
        MinCount: 1,
        MaxCount: 1,
        SubnetId: subnetIds[0],
        SecurityGroupIds: groupId ? [groupId] : undefined,
        ClientToken: "diff-builder-1",
        TagSpecifications: [{ ResourceType: "instance", Tags: tags }],
      }),
    ),
  );
  const instanceId: string | undefined = run?.Instances?.[0]?.InstanceId;
  await step("EC2.CreateTags", () =>
    ec2.send(new CreateTagsCommand({ Resources: [instanceId ?? "i-none"], Tags: [{ Key: "kiln:commit", Value: "abc" }] })),
  );
  // Describe once the instance runs, so both sides show a running instance's members.
  await until("the builder to run", async () => {
    const d = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId ?? "i-none"] }));
    return d.Reservations?.[0]?.Instances?.[0]?.State?.Name === "running" ? true : undefined;
  });
  await step("EC2.DescribeInstances", () => ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId ?? "i-none"] })));
  const image = await step("EC2.CreateImage", () =>
    ec2.send(
      new CreateImageCommand({
        InstanceId: instanceId,
        Name: "web-abc-diff",
        NoReboot: true,
        TagSpecifications: [{ ResourceType: "image", Tags: tags }],
      }),
    ),
  );
  // As kiln's bake does: wait for the image to be available before using it in a template.
  await until("the image to be available", async () => {
    const d = await ec2.send(new DescribeImagesCommand({ ImageIds: [image?.ImageId ?? "ami-none"] }));
    return d.Images?.[0]?.State === "available" ? true : undefined;
  });
  await step("EC2.DescribeImages(own)", () => ec2.send(new DescribeImagesCommand({ ImageIds: [image?.ImageId ?? "ami-none"] })));
  const lt = await step("EC2.CreateLaunchTemplate", () =>
    ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "web-diff",
        VersionDescription: "diff-1",
        LaunchTemplateData: {
          ImageId: baseImage,
          InstanceType: "t3.micro",
          SecurityGroupIds: groupId ? [groupId] : undefined,
          TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "kiln:service", Value: "web" }] }],
        },
        TagSpecifications: [{ ResourceType: "launch-template", Tags: [{ Key: "kiln:service", Value: "web" }] }],
      }),
    ),
  );
  const ltId: string | undefined = lt?.LaunchTemplate?.LaunchTemplateId;
  await step("EC2.CreateLaunchTemplateVersion", () =>
    ec2.send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateId: ltId,
        SourceVersion: "1",
        VersionDescription: "diff-2",
        LaunchTemplateData: { ImageId: image?.ImageId ?? baseImage },
      }),
    ),
  );
  await step("EC2.DescribeLaunchTemplateVersions", () =>
    ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: ltId, Versions: ["$Latest", "1"] })),
  );

  const lb = await step("ELBv2.CreateLoadBalancer", () =>
    elb.send(
      new CreateLoadBalancerCommand({
        Name: "web-diff",
        Subnets: subnetIds,
        SecurityGroups: groupId ? [groupId] : undefined,
        Scheme: "internet-facing",
        Type: "application",
        Tags: [{ Key: "kiln:service", Value: "web" }],
      }),
    ),
  );
  const lbArn: string | undefined = lb?.LoadBalancers?.[0]?.LoadBalancerArn;
  const tgInput = (name: string) => ({
    Name: name,
    Protocol: "HTTP" as const,
    Port: 8080,
    VpcId: vpcId,
    TargetType: "instance" as const,
    HealthCheckPath: "/health",
    HealthCheckIntervalSeconds: 10,
    HealthyThresholdCount: 2,
    UnhealthyThresholdCount: 2,
  });
  const blue = await step("ELBv2.CreateTargetGroup", () => elb.send(new CreateTargetGroupCommand(tgInput("web-blue"))));
  const blueArn: string | undefined = blue?.TargetGroups?.[0]?.TargetGroupArn;
  const green = await elb.send(new CreateTargetGroupCommand(tgInput("web-green"))).catch(() => undefined);
  const greenArn = green?.TargetGroups?.[0]?.TargetGroupArn;
  await step("ELBv2.CreateListener", () =>
    elb.send(
      new CreateListenerCommand({
        LoadBalancerArn: lbArn,
        Protocol: "HTTP",
        Port: 80,
        DefaultActions: [
          {
            Type: "forward",
            ForwardConfig: {
              TargetGroups: [
                { TargetGroupArn: blueArn, Weight: 100 },
                { TargetGroupArn: greenArn, Weight: 0 },
              ],
            },
          },
        ],
      }),
    ),
  );
  await step("ELBv2.DescribeListeners", () => elb.send(new DescribeListenersCommand({ LoadBalancerArn: lbArn })));
  await step("ELBv2.RegisterTargets", () =>
    elb.send(new RegisterTargetsCommand({ TargetGroupArn: blueArn, Targets: [{ Id: instanceId ?? "i-none", Port: 8080 }] })),
  );
  await step("ELBv2.DescribeTargetHealth", () => elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: blueArn })));
  await step("ELBv2.ModifyTargetGroupAttributes", () =>
    elb.send(
      new ModifyTargetGroupAttributesCommand({
        TargetGroupArn: blueArn,
        Attributes: [{ Key: "deregistration_delay.timeout_seconds", Value: "30" }],
      }),
    ),
  );

  await step("AutoScaling.CreateAutoScalingGroup", () =>
    asg.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: "web-diff-green",
        LaunchTemplate: { LaunchTemplateId: ltId, Version: "$Latest" },
        MinSize: 0,
        MaxSize: 2,
        DesiredCapacity: 1,
        VPCZoneIdentifier: subnetIds.join(","),
        TargetGroupARNs: greenArn ? [greenArn] : undefined,
        HealthCheckType: "ELB",
        HealthCheckGracePeriod: 60,
        Tags: [{ Key: "kiln:role", Value: "green", PropagateAtLaunch: true }],
      }),
    ),
  );
  // Both implementations launch the first instance on their own schedule: describe once it is there.
  await until("the group's instance", async () => {
    const d = await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["web-diff-green"] }));
    return (d.AutoScalingGroups?.[0]?.Instances?.length ?? 0) > 0 ? true : undefined;
  });
  await step("AutoScaling.DescribeAutoScalingGroups", () =>
    asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["web-diff-green"] })),
  );
  await step("AutoScaling.DescribeAutoScalingInstances", () => asg.send(new DescribeAutoScalingInstancesCommand({})));
  await step("AutoScaling.PutLifecycleHook", () =>
    asg.send(
      new PutLifecycleHookCommand({
        AutoScalingGroupName: "web-diff-green",
        LifecycleHookName: "launching",
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout: 300,
        DefaultResult: "CONTINUE",
      }),
    ),
  );
  await step("AutoScaling.DescribeLifecycleHooks", () =>
    asg.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: "web-diff-green" })),
  );

  await step("SSM.PutParameter", () =>
    ssm.send(new PutParameterCommand({ Name: "/kiln/diff/web/commit", Value: "abc", Type: "String", Overwrite: true })),
  );
  await step("SSM.GetParameter", () => ssm.send(new GetParameterCommand({ Name: "/kiln/diff/web/commit" })));
  await step("SSM.GetParametersByPath", () => ssm.send(new GetParametersByPathCommand({ Path: "/kiln/diff", Recursive: true })));
  // AWS refuses commands to nodes whose agent has not registered: wait for it.
  if (opts.registersAgents)
    await until("the builder's SSM agent", async () => {
      const d = await ssm.send(new DescribeInstanceInformationCommand({}));
      return (d.InstanceInformationList ?? []).some((i) => i.InstanceId === instanceId) ? true : undefined;
    });
  const cmd = await step("SSM.SendCommand", () =>
    ssm.send(
      new SendCommandCommand({
        DocumentName: "AWS-RunShellScript",
        InstanceIds: [instanceId ?? "i-none"],
        Parameters: { commands: ["echo smoke"] },
        TimeoutSeconds: 60,
        Comment: "diff",
      }),
    ),
  );
  await step("SSM.ListCommands", () => ssm.send(new ListCommandsCommand({ CommandId: cmd?.Command?.CommandId })));

  await step("CloudWatch.PutMetricAlarm", () =>
    cw.send(
      new PutMetricAlarmCommand({
        AlarmName: "web-diff-5xx",
        Namespace: "AWS/ApplicationELB",
        MetricName: "HTTPCode_Target_5XX_Count",
        Dimensions: [{ Name: "LoadBalancer", Value: "app/web-diff/0123456789abcdef" }],
        Statistic: "Sum",
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 5,
        ComparisonOperator: "GreaterThanThreshold",
        TreatMissingData: "notBreaching",
      }),
    ),
  );
  await step("CloudWatch.DescribeAlarms", () => cw.send(new DescribeAlarmsCommand({ AlarmNames: ["web-diff-5xx"] })));

  const topic = await step("SNS.CreateTopic", () => sns.send(new CreateTopicCommand({ Name: "kiln-diff-pages" })));
  await step("SNS.Publish", () => sns.send(new PublishCommand({ TopicArn: topic?.TopicArn, Subject: "kiln", Message: "page" })));

  const sm = await step("SFN.CreateStateMachine", () =>
    sfn.send(
      new CreateStateMachineCommand({
        name: "kiln-diff",
        definition: PASS_MACHINE,
        roleArn: "arn:aws:iam::123456789012:role/kiln-diff",
      }),
    ),
  );
  const exec = await step("SFN.StartExecution", () =>
    sfn.send(
      new StartExecutionCommand({
        stateMachineArn: sm?.stateMachineArn,
        name: "diff-1",
        input: JSON.stringify({ commit: "abc" }),
      }),
    ),
  );
  await until("the execution to end", async () => {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn: exec?.executionArn }));
    return d.status !== "RUNNING" ? true : undefined;
  });
  await step("SFN.DescribeExecution", () => sfn.send(new DescribeExecutionCommand({ executionArn: exec?.executionArn })));

  await step("error:EC2.DescribeInstances", () =>
    ec2.send(new DescribeInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"] })),
  );
  await step("error:EC2.DescribeImages", () => ec2.send(new DescribeImagesCommand({ ImageIds: ["ami-0123456789abcdef0"] })));
  await step("error:ELBv2.DescribeTargetGroups", () => elb.send(new DescribeTargetGroupsCommand({ Names: ["no-such-group"] })));
  await step("error:SSM.GetParameter", () => ssm.send(new GetParameterCommand({ Name: "/kiln/diff/missing" })));
  await step("error:SNS.Publish", () =>
    sns.send(new PublishCommand({ TopicArn: "arn:aws:sns:us-east-1:123456789012:no-such-topic", Message: "x" })),
  );
  await step("error:SFN.DescribeExecution", () =>
    sfn.send(
      new DescribeExecutionCommand({
        executionArn: "arn:aws:states:us-east-1:123456789012:execution:kiln-diff:no-such-execution",
      }),
    ),
  );

  for (const c of [ec2, asg, elb, ssm, cw, sns, sfn]) c.destroy();
  return out;
}
