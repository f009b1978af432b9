import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { SFNClient } from "@aws-sdk/client-sfn";
import { SNSClient } from "@aws-sdk/client-sns";
import { SSMClient } from "@aws-sdk/client-ssm";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { awsConfig } from "./runtime.ts";

/** The AWS clients kiln's domain code uses; domain functions receive them in `deps`. */
export interface AwsClients {
  ec2: EC2Client;
  autoscaling: AutoScalingClient;
  elbv2: ElasticLoadBalancingV2Client;
  ssm: SSMClient;
  sfn: SFNClient;
  cloudwatch: CloudWatchClient;
  sns: SNSClient;
  events: EventBridgeClient;
  dynamodb: DynamoDBDocumentClient;
}

/**
 * Builds each client on first use with the runtime's config (SDK defaults in Lambda; the simulated
 * cloud's in-process transport in the local stack). Handlers call this once at module scope.
 */
export function awsClients(overrides: Partial<AwsClients> = {}): AwsClients {
  const cfg = () => awsConfig();
  const cache: Partial<AwsClients> = { ...overrides };
  const lazy = <K extends keyof AwsClients>(k: K, make: () => AwsClients[K]) => ({
    get: () => {
      cache[k] ??= make();
      return cache[k]!;
    },
    enumerable: true,
  });
  const out = {} as AwsClients;
  Object.defineProperties(out, {
    ec2: lazy("ec2", () => new EC2Client(cfg())),
    autoscaling: lazy("autoscaling", () => new AutoScalingClient(cfg())),
    elbv2: lazy("elbv2", () => new ElasticLoadBalancingV2Client(cfg())),
    ssm: lazy("ssm", () => new SSMClient(cfg())),
    sfn: lazy("sfn", () => new SFNClient(cfg())),
    cloudwatch: lazy("cloudwatch", () => new CloudWatchClient(cfg())),
    sns: lazy("sns", () => new SNSClient(cfg())),
    events: lazy("events", () => new EventBridgeClient(cfg())),
    dynamodb: lazy("dynamodb", () =>
      DynamoDBDocumentClient.from(new DynamoDBClient(cfg()), { marshallOptions: { removeUndefinedValues: true } }),
    ),
  });
  return out;
}
