/**
 * Differential contract test: the same AWS SDK v3 calls against moto (getmoto/moto's server, an
 * independent implementation of the AWS APIs) and against kiln's simulated cloud over HTTP, and
 * their response *shapes* compared — key names, nesting and value types, not values.
 *
 * moto is an oracle for shapes only: it ignores ClientToken, has no time (instances run, images are
 * available and targets healthy at once), no traffic and no faults, and it decorates some responses
 * with members AWS leaves out. So:
 * - values are never compared, only the shape (`shape.ts`); array elements are merged, and below an
 *   array that is empty on one side nothing is compared;
 * - both sides are polled to the same state before a describe (instance running, image available,
 *   execution finished), so state-dependent members line up;
 * - every remaining difference is listed below with the side that is right and why. A difference
 *   not in the list fails the test: either kiln drifted from the wire shape (fix the service) or
 *   moto changed (update the list).
 * Errors compare exactly: the SDK's error `name`, `$fault` and HTTP status.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealClock } from "../../lib/clock.ts";
import type { Cloud } from "../../local/cloud/cloud.ts";
import { createCloud } from "../../local/cloud/index.ts";
import { freePort, pythonHas, type Running, startProcess } from "./processes.ts";
import { type Outcome, runScenario, STEPS, type Step } from "./scenario.ts";
import { diffShapes, type Exclusion, shapeOf, unexplained } from "./shape.ts";

const MOTO = pythonHas("import moto.server, flask");
if (!MOTO)
  console.warn(
    "moto differential tests skipped: moto's server is not importable by python3. Install it with `python3 -m pip install 'moto[server]'`.",
  );

/** A member real AWS returns that moto leaves out: kiln is right to return it. */
const awsField = (path: string, note = ""): Exclusion => ({
  path,
  kind: "extra",
  why: `AWS returns it, moto does not${note ? ` (${note})` : ""}`,
});

/** A member moto adds where AWS returns none: kiln is right to leave it out. */
const motoOnly = (path: string, why: string): Exclusion => ({ path, kind: "missing", why: `moto only: ${why}` });

/** A member AWS returns and kiln does not model: a documented gap of the simulation. */
const kilnGap = (path: string, why: string): Exclusion => ({ path, kind: "missing", why: `not simulated: ${why}` });

const INSTANCE_DIFFS = (prefix: string): Exclusion[] => [
  awsField(`${prefix}.BootMode`),
  awsField(`${prefix}.CurrentInstanceBootMode`),
  awsField(`${prefix}.EnaSupport`),
  awsField(`${prefix}.PlatformDetails`),
  awsField(`${prefix}.UsageOperation`),
  awsField(`${prefix}.Placement.AvailabilityZoneId`),
  awsField(`${prefix}.HibernationOptions.Configured`, "moto returns an empty HibernationOptions"),
  motoOnly(
    `${prefix}.SriovNetSupport`,
    `"simple" on every instance; AWS reports it only for Intel VF enhanced networking, not ENA types such as t3`,
  ),
  kilnGap(
    `${prefix}.NetworkInterfaces`,
    "kiln models no ENIs; the instance's subnet, private IP and groups are on the instance itself",
  ),
  kilnGap(`${prefix}.PublicIpAddress`, "kiln assigns no public addresses; nothing outside loopback could reach them"),
];

const IMAGE_DIFFS: Exclusion[] = [
  awsField("Images[].BlockDeviceMappings[].Ebs.Encrypted"),
  awsField("Images[].EnaSupport"),
  awsField("Images[].ImdsSupport"),
  awsField("Images[].PlatformDetails"),
  awsField("Images[].UsageOperation"),
  awsField("Images[].SriovNetSupport"),
  awsField("Images[].Hypervisor"),
  awsField("Images[].ImageLocation"),
  motoOnly(
    "Images[].Platform",
    `"Linux/UNIX" on Linux images; AWS sets Platform only to "windows" (PlatformDetails carries Linux/UNIX)`,
  ),
  motoOnly("Images[].ProductCodes", "an empty list; AWS omits productCodes on images without any"),
  motoOnly("Images[].Description", `"" when CreateImage had no Description; AWS omits it`),
];

/** Per step: the accepted differences, and arrays that must be non-empty on both sides so the comparison is not vacuous. */
const CONTRACT: Record<Step, { exclusions?: Exclusion[]; nonEmpty?: string[] }> = {
  "EC2.DescribeVpcs": {
    nonEmpty: ["Vpcs"],
    exclusions: [
      motoOnly("Vpcs[].Ipv6CidrBlockAssociationSet", "an empty set on every VPC; AWS omits it for a VPC without IPv6 CIDRs"),
    ],
  },
  "EC2.DescribeSubnets": { nonEmpty: ["Subnets"] },
  "EC2.DescribeSecurityGroups": { nonEmpty: ["SecurityGroups"] },
  "EC2.DescribeAvailabilityZones": {
    nonEmpty: ["AvailabilityZones"],
    exclusions: [
      awsField("AvailabilityZones[].GroupName"),
      awsField("AvailabilityZones[].NetworkBorderGroup"),
      awsField("AvailabilityZones[].OptInStatus"),
    ],
  },
  "EC2.DescribeImages(amazon)": { nonEmpty: ["Images"], exclusions: IMAGE_DIFFS },
  "EC2.RunInstances": { nonEmpty: ["Instances"], exclusions: INSTANCE_DIFFS("Instances[]") },
  "EC2.CreateTags": {},
  "EC2.DescribeInstances": {
    nonEmpty: ["Reservations", "Reservations.0.Instances"],
    exclusions: [
      ...INSTANCE_DIFFS("Reservations[].Instances[]"),
      motoOnly(
        "Reservations[].Instances[].StateReason",
        "an empty code and message on running instances; AWS reports a reason only while pending or after a stop, termination or failure",
      ),
    ],
  },
  "EC2.CreateImage": {},
  "EC2.DescribeImages(own)": { nonEmpty: ["Images"], exclusions: IMAGE_DIFFS },
  "EC2.CreateLaunchTemplate": {},
  "EC2.CreateLaunchTemplateVersion": {
    // AWS builds the new version from SourceVersion's data with the given data on top; moto ignores
    // SourceVersion, so its version only has what the call passed.
    exclusions: [
      {
        path: "LaunchTemplateVersion.LaunchTemplateData.*",
        kind: "extra",
        why: "moto ignores SourceVersion: members inherited from version 1",
      },
    ],
  },
  "EC2.DescribeLaunchTemplateVersions": { nonEmpty: ["LaunchTemplateVersions"] },
  "ELBv2.CreateLoadBalancer": {
    nonEmpty: ["LoadBalancers"],
    exclusions: [
      awsField("LoadBalancers[].AvailabilityZones[].LoadBalancerAddresses", "an empty list for application load balancers"),
    ],
  },
  "ELBv2.CreateTargetGroup": { nonEmpty: ["TargetGroups"], exclusions: [awsField("TargetGroups[].LoadBalancerArns")] },
  "ELBv2.CreateListener": {
    nonEmpty: ["Listeners"],
    exclusions: [
      motoOnly("Listeners[].AlpnPolicy", "on HTTP listeners; AWS returns it for TLS listeners only"),
      motoOnly("Listeners[].SslPolicy", "on HTTP listeners; AWS returns it for HTTPS listeners only"),
    ],
  },
  "ELBv2.DescribeListeners": {
    nonEmpty: ["Listeners", "Listeners.0.DefaultActions.0.ForwardConfig.TargetGroups"],
    exclusions: [
      motoOnly("Listeners[].AlpnPolicy", "on HTTP listeners; AWS returns it for TLS listeners only"),
      motoOnly("Listeners[].SslPolicy", "on HTTP listeners; AWS returns it for HTTPS listeners only"),
    ],
  },
  "ELBv2.RegisterTargets": {},
  "ELBv2.DescribeTargetHealth": {
    nonEmpty: ["TargetHealthDescriptions"],
    exclusions: [
      // Value-dependent: a new target is `initial` with reason Elb.RegistrationInProgress on AWS and
      // kiln; moto has no health checks and reports `healthy` (no reason) at once.
      awsField("TargetHealthDescriptions[].TargetHealth.Reason", "while the state is not healthy"),
      awsField("TargetHealthDescriptions[].TargetHealth.Description", "while the state is not healthy"),
    ],
  },
  "ELBv2.ModifyTargetGroupAttributes": { nonEmpty: ["Attributes"] },
  "AutoScaling.CreateAutoScalingGroup": {},
  "AutoScaling.DescribeAutoScalingGroups": {
    nonEmpty: ["AutoScalingGroups", "AutoScalingGroups.0.Instances"],
    exclusions: [awsField("AutoScalingGroups[].TrafficSources", "since 2023")],
  },
  "AutoScaling.DescribeAutoScalingInstances": { nonEmpty: ["AutoScalingInstances"] },
  "AutoScaling.PutLifecycleHook": {},
  "AutoScaling.DescribeLifecycleHooks": {
    nonEmpty: ["LifecycleHooks"],
    exclusions: [
      motoOnly("LifecycleHooks[].NotificationTargetARN", "a placeholder queue ARN when none was given"),
      motoOnly("LifecycleHooks[].RoleARN", "a placeholder role ARN when none was given"),
    ],
  },
  "SSM.PutParameter": {},
  "SSM.GetParameter": {},
  "SSM.GetParametersByPath": { nonEmpty: ["Parameters"] },
  "SSM.SendCommand": {
    exclusions: [awsField("Command.CloudWatchOutputConfig"), awsField("Command.DocumentVersion")],
  },
  "SSM.ListCommands": {
    nonEmpty: ["Commands"],
    exclusions: [awsField("Commands[].CloudWatchOutputConfig"), awsField("Commands[].DocumentVersion")],
  },
  "CloudWatch.PutMetricAlarm": {},
  "CloudWatch.DescribeAlarms": {
    nonEmpty: ["MetricAlarms"],
    exclusions: [
      awsField("MetricAlarms[].StateTransitionedTimestamp"),
      motoOnly(
        "MetricAlarms[].Metrics",
        "an empty list on single-metric alarms; AWS returns Metrics for metric-math alarms only",
      ),
      motoOnly(
        "MetricAlarms[].StateReasonData",
        `"{}" before any evaluation; AWS has no data for "Unchecked: Initial alarm creation"`,
      ),
    ],
  },
  "SNS.CreateTopic": {},
  "SNS.Publish": {},
  "SFN.CreateStateMachine": {},
  "SFN.StartExecution": {},
  "SFN.DescribeExecution": {
    exclusions: [
      awsField("inputDetails"),
      awsField("outputDetails"),
      awsField("redriveCount", "since redrive, 2023"),
      awsField("redriveStatus", "since redrive, 2023"),
      awsField("redriveStatusReason", "since redrive, 2023"),
    ],
  },
  "error:EC2.DescribeInstances": {},
  "error:EC2.DescribeImages": {},
  "error:ELBv2.DescribeTargetGroups": {},
  "error:SSM.GetParameter": {},
  "error:SNS.Publish": {},
  "error:SFN.DescribeExecution": {},
};

/** The value at a dotted path (`Reservations.0.Instances`). */
function at(value: unknown, path: string): unknown {
  let v: unknown = value;
  for (const k of path.split(".")) v = v === null || typeof v !== "object" ? undefined : (v as Record<string, unknown>)[k];
  return v;
}

function describeOutcome(o: Outcome | undefined): string {
  if (!o) return "no outcome";
  return "error" in o ? `error ${o.error.name} (${o.error.status}): ${o.error.message}` : "ok";
}

describe.skipIf(!MOTO)("moto differential: response shapes of the calls kiln makes", () => {
  let moto: Running | undefined;
  let cloud: Cloud | undefined;
  let kiln: Map<Step, Outcome>;
  let oracle: Map<Step, Outcome>;

  beforeAll(async () => {
    const port = await freePort();
    moto = await startProcess("python3", ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], {
      ready: /Running on http/,
      timeoutMs: 30_000,
      env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: "false" },
    });
    const motoEndpoint = `http://127.0.0.1:${port}`;
    // moto only records executions unless told to run them; kiln runs them, so both should.
    const cfg = await fetch(`${motoEndpoint}/moto-api/config`, {
      method: "POST",
      body: JSON.stringify({ stepfunctions: { execute_state_machine: true } }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(cfg.ok).toBe(true);

    // Real time and real sockets: the SDK reaches kiln over HTTP, as it reaches moto. Durations are
    // shortened so the scenario's waits (boot, agent, image) take milliseconds; no app servers or
    // ALB listeners are opened because nothing sends traffic here.
    cloud = createCloud({
      clock: new RealClock(),
      seed: 11,
      settings: {
        "app.realServers": false,
        "elbv2.listen": false,
        "elbv2.realHealthChecks": false,
        "ec2.bootMs": 0,
        "ec2.imageMs": 300,
        "ssm.agentOnlineMs": 0,
      },
    });
    await cloud.start({ port: 0 });
    const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
    // The two endpoints share nothing: run both scenarios at once (moto's first EC2 call alone
    // takes seconds while it loads its default images).
    [kiln, oracle] = await Promise.all([
      runScenario(cloud.clientConfig({ http: true }), { pause, registersAgents: true }),
      runScenario(
        { region: "us-east-1", endpoint: motoEndpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } },
        { pause, registersAgents: false },
      ),
    ]);
  }, 120_000);

  afterAll(async () => {
    await cloud?.stop();
    await moto?.stop();
  });

  const okSteps = STEPS.filter((s) => !s.startsWith("error:"));
  const errorSteps = STEPS.filter((s) => s.startsWith("error:"));

  it.each(okSteps)("%s has moto's shape", (step) => {
    const k = kiln.get(step);
    const m = oracle.get(step);
    expect(describeOutcome(k), "kiln").toBe("ok");
    expect(describeOutcome(m), "moto").toBe("ok");
    if (!k || !m || !("ok" in k) || !("ok" in m)) return;
    const contract = CONTRACT[step];
    for (const path of contract.nonEmpty ?? []) {
      expect((at(k.ok, path) as unknown[] | undefined)?.length ?? 0, `kiln ${path}`).toBeGreaterThan(0);
      expect((at(m.ok, path) as unknown[] | undefined)?.length ?? 0, `moto ${path}`).toBeGreaterThan(0);
    }
    const diffs = unexplained(diffShapes(shapeOf(k.ok), shapeOf(m.ok)), contract.exclusions ?? []);
    expect(diffs.map((d) => `${d.kind} ${d.path}: ${d.detail}`)).toEqual([]);
  });

  it.each(errorSteps)("%s fails as moto does (name, fault, HTTP status)", (step) => {
    const k = kiln.get(step);
    const m = oracle.get(step);
    expect(k && "error" in k, `kiln: ${describeOutcome(k)}`).toBe(true);
    expect(m && "error" in m, `moto: ${describeOutcome(m)}`).toBe(true);
    if (!k || !m || !("error" in k) || !("error" in m)) return;
    const { message: _k, ...kErr } = k.error;
    const { message: _m, ...mErr } = m.error;
    // Messages are values (moto words some differently, e.g. SNS "Endpoint does not exist").
    expect(kErr).toEqual(mErr);
  });

  it("every documented exclusion says why", () => {
    for (const [step, c] of Object.entries(CONTRACT))
      for (const e of c.exclusions ?? []) expect(e.why.length, `${step} ${e.path}`).toBeGreaterThan(10);
  });
});

describe.skipIf(MOTO)("moto differential (skipped)", () => {
  it.skip("moto is absent: python3 -m pip install 'moto[server]' to run the differential tests", () => {});
});
