import { loadConfig, serviceConfig } from "../../../lib/config/index.ts";
import type { DeployInput, ExecutionRef, ResolvedBaseAmi } from "../../../lib/bake/types.ts";

export const COMMIT = "0123456789abcdef0123456789abcdef01234567";
export const web = () => serviceConfig(loadConfig(), "web");
export const input = (over: Partial<DeployInput> = {}): DeployInput => ({
  service: "web",
  commit: COMMIT,
  trigger: "push",
  branch: "main",
  repository: "example/web",
  ...over,
});
export const execution = (over: Partial<ExecutionRef> = {}): ExecutionRef => ({
  name: "web-0123456789ab-push",
  arn: "arn:aws:states:us-east-1:123456789012:execution:kiln-deploy:web-0123456789ab-push",
  startedAt: "2026-01-05T09:00:00.000Z",
  ...over,
});
export const base: ResolvedBaseAmi = {
  imageId: "ami-0aaaaaaaaaaaaaaaa",
  source: "id",
  rootDeviceName: "/dev/xvda",
  architecture: "x86_64",
};
