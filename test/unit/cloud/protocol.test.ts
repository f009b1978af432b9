import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { DescribeAvailabilityZonesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterEach, describe, expect, it } from "vitest";
import { Cloud } from "../../../local/cloud/cloud.ts";
import { decodeForm } from "../../../local/cloud/protocol/codec.ts";
import { AwsError } from "../../../local/cloud/protocol/errors.ts";

function testCloud(): Cloud {
  const cloud = new Cloud();
  cloud.register("ec2", {
    definition: {
      signingName: "ec2",
      protocol: "ec2",
      version: "2016-11-15",
      xmlns: "http://ec2.amazonaws.com/doc/2016-11-15/",
      actions: {
        DescribeAvailabilityZones: () => ({
          availabilityZoneInfo: [{ zoneName: "us-east-1a", zoneState: "available", regionName: "us-east-1" }],
        }),
      },
    },
  });
  cloud.register("autoscaling", {
    definition: {
      signingName: "autoscaling",
      protocol: "query",
      version: "2011-01-01",
      xmlns: "http://autoscaling.amazonaws.com/doc/2011-01-01/",
      actions: {
        DescribeAutoScalingGroups: (input) => {
          if (input.AutoScalingGroupNames?.[0] === "boom") throw new AwsError("ResourceInUse", "in use");
          return {
            AutoScalingGroups: (input.AutoScalingGroupNames ?? []).map((n: string) => ({
              AutoScalingGroupName: n,
              MinSize: 1,
              CreatedTime: new Date(0),
            })),
          };
        },
      },
    },
  });
  cloud.register("ssm", {
    definition: {
      signingName: "ssm",
      protocol: "json",
      jsonVersion: "1.1",
      targetPrefix: "AmazonSSM",
      actions: {
        GetParameter: (input) => {
          if (input.Name === "missing") throw new AwsError("ParameterNotFound", "");
          return { Parameter: { Name: input.Name, Value: "v", Version: 1, LastModifiedDate: new Date(1000) } };
        },
      },
    },
  });
  return cloud;
}

describe("protocol layer", () => {
  let cloud: Cloud;
  afterEach(async () => cloud?.stop());

  it("decodes awsQuery and EC2 lists into arrays", () => {
    const d = decodeForm(new URLSearchParams("Action=X&A.member.1.B=x&A.member.2.B=y&Filter.1.Name=n&Filter.1.Value.1=v&Empty="));
    expect(d).toEqual({ A: [{ B: "x" }, { B: "y" }], Filter: [{ Name: "n", Value: ["v"] }], Empty: "" });
  });

  it.each([false, true])("serves the real SDK clients (http=%s)", async (overHttp) => {
    cloud = testCloud();
    await cloud.start({ port: overHttp ? 0 : false });
    const cfg = cloud.clientConfig({ http: overHttp });
    const ec2 = new EC2Client(cfg);
    const az = await ec2.send(new DescribeAvailabilityZonesCommand({}));
    expect(az.AvailabilityZones?.[0]?.ZoneName).toBe("us-east-1a");
    const asg = new AutoScalingClient(cfg);
    const g = await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["a", "b"] }));
    expect(g.AutoScalingGroups?.map((x) => x.AutoScalingGroupName)).toEqual(["a", "b"]);
    expect(g.AutoScalingGroups?.[0]?.CreatedTime).toEqual(new Date(0));
    await expect(asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["boom"] }))).rejects.toMatchObject({
      name: "ResourceInUseFault",
    });
    const ssm = new SSMClient(cfg);
    const p = await ssm.send(new GetParameterCommand({ Name: "x" }));
    expect(p.Parameter?.LastModifiedDate).toEqual(new Date(1000));
    await expect(ssm.send(new GetParameterCommand({ Name: "missing" }))).rejects.toMatchObject({ name: "ParameterNotFound" });
    await expect(
      ec2
        .send(new DescribeAvailabilityZonesCommand({}))
        .then(() =>
          cloud.faults.add({
            kind: "api",
            service: "ec2",
            action: "DescribeAvailabilityZones",
            code: "UnauthorizedOperation",
            status: 403,
          }),
        )
        .then(() => ec2.send(new DescribeAvailabilityZonesCommand({}))),
    ).rejects.toMatchObject({ name: "UnauthorizedOperation" });
  });
});
