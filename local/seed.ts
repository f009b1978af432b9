/**
 * Seeds a service in the simulated cloud as an SRE team would have it before adopting kiln: an ALB
 * with two target groups (one live), a launch template, and a blue Auto Scaling group serving the
 * previous commit — built through the same AWS APIs (a real bake of the previous commit on a
 * builder instance, then the fleet).
 */
import { AutoScalingClient, CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import {
  CreateImageCommand,
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type _InstanceType,
} from "@aws-sdk/client-ec2";
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { CloudWatchClient, PutMetricAlarmCommand } from "@aws-sdk/client-cloudwatch";
import { CreateTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import type { Clock } from "../lib/clock.ts";
import { branchFor, defaultEnvironment, loadConfig, type ServiceConfig, serviceConfig } from "../lib/config/index.ts";
import { fleetReadiness, onlineInstances } from "../lib/roll/fleet.ts";
import { runScriptStep } from "../lib/roll/run.ts";
import { targetGroupHealth } from "../lib/roll/traffic.ts";
import type { Backend, Cloud } from "./cloud/cloud.ts";

export interface SeedResult {
  service: string;
  /** The environment seeded (the service's default unless asked). */
  environment: string;
  commit: string;
  imageId: string;
  loadBalancerArn: string;
  loadBalancerUrl?: string;
  listenerArn: string;
  targetGroupArns: [string, string];
  blueGroup: string;
  launchTemplateId: string;
}

/** Polls `check` on the clock every `everyMs` until it returns a value, or fails after `deadlineMs`. */
export async function until<T>(
  clock: Clock,
  what: string,
  check: () => Promise<T | undefined | false>,
  everyMs = 5_000,
  deadlineMs = 3_600_000,
): Promise<T> {
  const end = clock.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (clock.now() > end) throw new Error(`timed out waiting for ${what}`);
    await clock.sleep(everyMs);
  }
}

export async function seedService(
  cloud: Cloud,
  opts: {
    service?: string;
    environment?: string;
    commit: string;
    instances?: number;
    configFile?: string;
    /** Background users' requests per second through the ALB (default `seed.usersRps`, 10). */
    usersRps?: number;
  },
): Promise<SeedResult> {
  const service = opts.service ?? "web";
  const config = loadConfig(opts.configFile);
  const defaultEnv = defaultEnvironment(serviceConfig(config, service), service);
  const environment = opts.environment ?? defaultEnv;
  const cfg: ServiceConfig = serviceConfig(config, service, environment);
  // The default environment keeps the plain names; others carry their name.
  const isDefault = environment === defaultEnv;
  const named = (base: string) => (isDefault ? base : `${base}-${environment}`);
  const c = cloud.clientConfig();
  const ec2 = new EC2Client(c);
  const ssm = new SSMClient(c);
  const elbv2 = new ElasticLoadBalancingV2Client(c);
  const autoscaling = new AutoScalingClient(c);
  const clock = cloud.clock;
  const env = {
    KILN_COMMIT: opts.commit,
    KILN_SERVICE: service,
    KILN_REPO: cfg.repository,
    KILN_BRANCH: branchFor(cfg, environment) ?? "main",
  };

  // 1. Bake the previous commit the way an earlier pipeline would have.
  const baseAmi =
    "ssmParameter" in cfg.baseAmi
      ? (await ssm.send(new GetParameterCommand({ Name: cfg.baseAmi.ssmParameter }))).Parameter!.Value!
      : "imageId" in cfg.baseAmi
        ? cfg.baseAmi.imageId
        : (() => {
            throw new Error("seeding needs a base AMI given by SSM parameter or id");
          })();
  const subnets = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? [];
  const tags = (role: string) => [
    { Key: "kiln:service", Value: service },
    { Key: "kiln:environment", Value: environment },
    { Key: "kiln:execution", Value: "seed" },
    { Key: "kiln:role", Value: role },
    { Key: "kiln:commit", Value: opts.commit },
  ];
  const run = await ec2.send(
    new RunInstancesCommand({
      ImageId: baseAmi,
      InstanceType: cfg.builder.instanceType as _InstanceType,
      MinCount: 1,
      MaxCount: 1,
      SubnetId: subnets[0]?.SubnetId,
      ClientToken: named(`seed-${service}-${opts.commit.slice(0, 12)}`),
      TagSpecifications: [{ ResourceType: "instance", Tags: tags("builder") }],
    }),
  );
  const builder = run.Instances![0]!.InstanceId!;
  await until(clock, "seed builder online", async () => (await onlineInstances(ssm, [builder])).length === 1, 5_000);
  let step = await runScriptStep({ instanceIds: [builder], script: cfg.scripts.install, env, comment: "seed install" }, { ssm });
  while (step.status === "pending") {
    await clock.sleep(2_000);
    step = await runScriptStep(
      { instanceIds: [builder], script: cfg.scripts.install, env, comment: "seed install", commandId: step.commandId },
      { ssm },
    );
  }
  const image = await ec2.send(
    new CreateImageCommand({
      InstanceId: builder,
      Name: named(`kiln-${service}-${opts.commit.slice(0, 12)}-seed`),
      TagSpecifications: [{ ResourceType: "image", Tags: [...tags("image"), { Key: "kiln:base-ami", Value: baseAmi }] }],
    }),
  );
  const imageId = image.ImageId!;
  await until(
    clock,
    "seed image available",
    async () => {
      const r = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
      const state = r.Images?.[0]?.State;
      if (state === "failed") throw new Error("seed image failed");
      return state === "available";
    },
    15_000,
  );
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [builder] }));

  // 2. Load balancer, two target groups, a listener forwarding 100 % to the first.
  const lbName = "loadBalancer" in cfg.listener ? cfg.listener.loadBalancer : `kiln-${service}`;
  const port = "port" in cfg.listener ? cfg.listener.port : 80;
  const lb = await elbv2.send(
    new CreateLoadBalancerCommand({
      Name: lbName,
      Subnets: subnets.map((s) => s.SubnetId!),
      Type: "application",
      Scheme: "internet-facing",
    }),
  );
  const loadBalancerArn = lb.LoadBalancers![0]!.LoadBalancerArn!;
  const vpcId = subnets[0]?.VpcId;
  const tgArns: string[] = [];
  for (const name of cfg.targetGroups) {
    const tg = await elbv2.send(
      new CreateTargetGroupCommand({
        Name: name,
        Protocol: "HTTP",
        Port: 8080,
        VpcId: vpcId,
        TargetType: "instance",
        HealthCheckPath: "/health",
        HealthCheckIntervalSeconds: 10,
        HealthCheckTimeoutSeconds: 5,
        HealthyThresholdCount: 2,
        UnhealthyThresholdCount: 2,
      }),
    );
    const arn = tg.TargetGroups![0]!.TargetGroupArn!;
    await elbv2.send(
      new ModifyTargetGroupAttributesCommand({
        TargetGroupArn: arn,
        Attributes: [{ Key: "deregistration_delay.timeout_seconds", Value: "30" }],
      }),
    );
    tgArns.push(arn);
  }
  const [blueTg, idleTg] = tgArns as [string, string];
  const listener = await elbv2.send(
    new CreateListenerCommand({
      LoadBalancerArn: loadBalancerArn,
      Protocol: "HTTP",
      Port: port,
      DefaultActions: [
        {
          Type: "forward",
          ForwardConfig: {
            TargetGroups: [
              { TargetGroupArn: blueTg, Weight: 100 },
              { TargetGroupArn: idleTg, Weight: 0 },
            ],
          },
        },
      ],
      // kiln's roles shift traffic only on listeners tagged kiln:service (aws:ResourceTag condition).
      Tags: [{ Key: "kiln:service", Value: service }],
    }),
  );

  // The topic the service's pages go to (`pager.topic`), as the team would have made it: without it
  // every page of the example would fail to publish there. CreateTopic is idempotent.
  if (cfg.pager.topic && !cfg.pager.topic.startsWith("arn:"))
    await new SNSClient(c).send(
      new CreateTopicCommand({ Name: cfg.pager.topic, Tags: [{ Key: "kiln:service", Value: service }] }),
    );

  // The service's 5xx alarm, if kiln.config.yaml lists it: any target 5xx through the load balancer in a
  // minute, whichever target group answered — what the canary verification checks before each step.
  const alarmName = named(`kiln-${service}`) + "-5xx";
  if (cfg.alarms.includes(alarmName)) {
    await new CloudWatchClient(c).send(
      new PutMetricAlarmCommand({
        AlarmName: alarmName,
        AlarmDescription: `5xx answered by ${service}'s targets behind ${lbName}`,
        Namespace: "AWS/ApplicationELB",
        MetricName: "HTTPCode_Target_5XX_Count",
        // The CloudWatch dimension of an ALB is the tail of its ARN: app/<name>/<id>.
        Dimensions: [{ Name: "LoadBalancer", Value: loadBalancerArn.split(":loadbalancer/")[1]! }],
        Statistic: "Sum",
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        TreatMissingData: "notBreaching",
      }),
    );
  }

  // 3. Launch template and the blue fleet.
  const lt = await ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: named(`kiln-${service}`),
      VersionDescription: "seed",
      LaunchTemplateData: { ImageId: imageId, InstanceType: cfg.builder.instanceType as _InstanceType },
      TagSpecifications: [
        {
          ResourceType: "launch-template",
          Tags: [
            { Key: "kiln:service", Value: service },
            { Key: "kiln:environment", Value: environment },
            { Key: "kiln:execution", Value: "seed" },
            { Key: "kiln:role", Value: "launch-template" },
          ],
        },
      ],
    }),
  );
  const launchTemplateId = lt.LaunchTemplate!.LaunchTemplateId!;
  const blueGroup = named(`kiln-${service}-blue-seed`);
  const desired = opts.instances ?? 4;
  await autoscaling.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: blueGroup,
      LaunchTemplate: { LaunchTemplateId: launchTemplateId, Version: "1" },
      MinSize: desired,
      MaxSize: desired * 2,
      DesiredCapacity: desired,
      VPCZoneIdentifier: subnets.map((s) => s.SubnetId!).join(","),
      HealthCheckType: "ELB",
      HealthCheckGracePeriod: 300,
      TargetGroupARNs: [blueTg],
      Tags: tags("fleet").map((t) => ({ ...t, PropagateAtLaunch: true })),
    }),
  );
  await until(clock, "seed fleet ready", async () => (await fleetReadiness(blueGroup, { autoscaling, ssm })).ready, 5_000);
  const ids = (
    await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [blueGroup] }))
  ).AutoScalingGroups![0]!.Instances!.map((i) => i.InstanceId!);
  const script = `${cfg.scripts.smokeTest}\n${cfg.scripts.serviceIn}`;
  step = await runScriptStep({ instanceIds: ids, script, env, comment: "seed service-in" }, { ssm });
  while (step.status === "pending") {
    await clock.sleep(2_000);
    step = await runScriptStep({ instanceIds: ids, script, env, comment: "seed service-in", commandId: step.commandId }, { ssm });
  }
  await until(clock, "seed fleet healthy", async () => (await targetGroupHealth(elbv2, blueTg)).healthy.length >= desired, 5_000);
  // The ALB's real loopback listener (its DNSName keeps the AWS form and does not resolve here).
  const elb = cloud.backend<Backend & { listenerUrl(lb: string, port?: number): string | undefined }>("elasticloadbalancing");
  const url = await until(clock, "ALB listener", async () => elb.listenerUrl(loadBalancerArn, port), 1_000, 120_000);
  // The example's users: a steady trickle through the ALB so the canary judge has evidence
  // (kiln fails a step it cannot judge). `seed.usersRps` = 0 turns them off.
  const rps = opts.usersRps ?? cloud.setting("seed.usersRps", 10);
  if (rps > 0)
    cloud
      .backend<Backend & { startUsers(lb: string, rps: number): () => void }>("elasticloadbalancing")
      .startUsers(loadBalancerArn, rps);
  return {
    service,
    environment,
    commit: opts.commit,
    imageId,
    loadBalancerArn,
    loadBalancerUrl: url,
    listenerArn: listener.Listeners![0]!.ListenerArn!,
    targetGroupArns: [blueTg, idleTg],
    blueGroup,
    launchTemplateId,
  };
}
