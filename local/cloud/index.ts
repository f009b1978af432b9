/**
 * The whole simulated cloud: every service registered on one endpoint, the local Step Functions
 * engine wired to the in-process Lambda and AWS-call integrations.
 */
import { Cloud, type CloudOptions } from "./cloud.ts";
import { createAwsCaller, createLambdaInvoker } from "./sdk-call.ts";
import { registerAutoScaling } from "./services/autoscaling/index.ts";
import { registerCloudWatch } from "./services/cloudwatch/index.ts";
import { registerDynamoDb } from "./services/dynamodb/index.ts";
import { registerEc2 } from "./services/ec2/index.ts";
import { registerElbv2 } from "./services/elbv2/index.ts";
import { registerEvents } from "./services/events/index.ts";
import { registerLambda } from "./services/lambda/index.ts";
import { registerScheduler } from "./services/scheduler/index.ts";
import { registerSns } from "./services/sns/index.ts";
import { registerSsm } from "./services/ssm/index.ts";
import { registerStepFunctions } from "../states/api.ts";

export { Cloud } from "./cloud.ts";
export type { CloudOptions } from "./cloud.ts";

/** A cloud with every simulated service registered (not started: call `start()`). */
export function createCloud(opts: CloudOptions = {}): Cloud {
  const cloud = new Cloud(opts);
  registerEc2(cloud);
  registerAutoScaling(cloud);
  registerElbv2(cloud);
  registerCloudWatch(cloud);
  registerSsm(cloud);
  registerSns(cloud);
  registerDynamoDb(cloud);
  registerLambda(cloud);
  registerEvents(cloud);
  registerScheduler(cloud);
  registerStepFunctions(cloud, {
    clock: cloud.clock,
    random: () => cloud.random(),
    region: cloud.region,
    accountId: cloud.accountId,
    invokeLambda: createLambdaInvoker(cloud),
    callAws: createAwsCaller(cloud),
  });
  return cloud;
}
