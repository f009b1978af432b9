/**
 * A seed → a random but reproducible fault schedule for one simulated deployment story: which
 * faults are armed and when, which extra pushes arrive, and how the operator reacts to failures.
 * Pure: the same seed always gives the same schedule (see docs/simulation.md).
 */
import type { FaultRule } from "../../local/cloud/faults.ts";

/** Deterministic uniform [0,1) (mulberry32), independent of the cloud's own random source. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fault armed at `atMs` after the first push and removed `forMs` later (or left standing). */
export interface TimedFault {
  atMs: number;
  forMs?: number;
  rule: FaultRule;
  /** What it is, for the report. */
  label: string;
}

export type OperatorMove = "redrive" | "abort";

export interface Schedule {
  seed: number;
  instances: number;
  /** The service requires manual approval before the first canary step (a config variant). */
  approval: boolean;
  faults: TimedFault[];
  /** Extra pushes (new commits) `atMs` after the first. */
  pushes: number[];
  /** The operator's reaction to each failure in turn, and the delay before it. */
  operator: { move: OperatorMove; afterMs: number }[];
  /** Delay before approving, when the gate is on. */
  approveAfterMs: number;
  /** Operator/adversary stories (see STORIES), each asserting it reached its feature. */
  stories: Stories;
}

export interface Stories {
  /** Once settled, GitHub redelivers the first push byte for byte (same X-GitHub-Delivery, same body). */
  redelivery: boolean;
  /** A deploy execution started around kiln's queue `aroundQueueAtMs` after the first push; once settled, it and every failed deploy are redriven. */
  redrive: { aroundQueueAtMs: number } | undefined;
  /** A burst of this many pushes one simulated second apart, `atMs` after the first. */
  burst: { count: number; atMs: number } | undefined;
  /** The first push names the repository in another case (`EXAMPLE/WEB`). */
  caseVariant: boolean;
  /** A push to `stage` (staging, its own seeded fleet) `atMs` after the first, while production deploys. */
  staging: { atMs: number } | undefined;
}

export const STORIES = ["redelivery", "redrive", "burst", "caseVariant", "staging"] as const;

/** Functions whose Lambda runtime may crash or time out (the deploy machine's steps). */
export const STEP_FUNCTIONS = [
  "prepare",
  "findImage",
  "launchBuilder",
  "waitBuilderReady",
  "install",
  "imageTest",
  "createImage",
  "waitImage",
  "tagImage",
  "terminateBuilder",
  "planRoll",
  "createGreenFleet",
  "waitGreenReady",
  "serviceInGreen",
  "waitGreenHealthy",
  "shiftTraffic",
  "verifyCanary",
  "serviceOutBlue",
  "retireBlue",
  "recordDeployment",
] as const;

const API_TARGETS: { service: string; actions: string[] }[] = [
  {
    service: "ec2",
    actions: ["RunInstances", "DescribeInstances", "CreateImage", "DescribeImages", "CreateTags", "CreateLaunchTemplateVersion"],
  },
  { service: "autoscaling", actions: ["DescribeAutoScalingGroups", "CreateAutoScalingGroup", "UpdateAutoScalingGroup"] },
  { service: "elasticloadbalancing", actions: ["DescribeTargetHealth", "ModifyListener", "DescribeListeners"] },
  { service: "ssm", actions: ["SendCommand", "ListCommandInvocations", "DescribeInstanceInformation"] },
];
const THROTTLE_CODE: Record<string, string> = {
  ec2: "RequestLimitExceeded",
  autoscaling: "Throttling",
  elasticloadbalancing: "Throttling",
  ssm: "ThrottlingException",
};

const MIN = 60_000;

/**
 * Draws the schedule. `names.functionName(key)` gives the deployed Lambda name of a serverless.yml
 * function key; `commit` is the first pushed commit (a bad-commit fault targets it).
 */
export function drawSchedule(
  seed: number,
  names: { functionName(key: string): string; commit: string; blueGroup: string },
): Schedule {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const between = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const faults: TimedFault[] = [];
  const instances = between(2, 4);

  if (r() < 0.5) {
    const service = pick(API_TARGETS).service;
    faults.push({
      atMs: between(0, 15) * MIN,
      forMs: between(1, 5) * MIN,
      rule: { kind: "api", service, code: THROTTLE_CODE[service], status: 400, rate: 0.5 },
      label: `throttling burst on ${service}`,
    });
  }
  if (r() < 0.5) {
    const t = pick(API_TARGETS);
    const action = pick(t.actions);
    faults.push({
      atMs: between(0, 20) * MIN,
      rule: { kind: "api", service: t.service, action, code: "InternalError", status: 500, times: between(1, 3) },
      label: `${t.service}:${action} answers 500`,
    });
  }
  if (r() < 0.6) {
    const fn = pick(STEP_FUNCTIONS);
    const mode = pick(["crash-before", "crash-after", "timeout"] as const);
    faults.push({
      atMs: 0,
      rule: { kind: "lambda", function: names.functionName(fn), mode, times: between(1, 4) },
      label: `Lambda ${fn} ${mode}`,
    });
  }
  if (r() < 0.3) {
    const mode = pick(["fail", "slow"] as const);
    faults.push({
      atMs: between(0, 10) * MIN,
      rule: { kind: "boot", mode, delayMs: between(1, 5) * MIN, times: between(1, 2) },
      label: `boot ${mode}`,
    });
  }
  if (r() < 0.3) {
    // Armed on one green instance once green has instances (the runner picks it): flapping a
    // serving blue instance would lower capacity by itself, which no deployment tool can prevent.
    faults.push({
      atMs: 0,
      forMs: between(1, 3) * MIN,
      rule: { kind: "health-flap", periodMs: between(10, 40) * 1000, onGreen: true },
      label: "health-check flapping on a green instance",
    });
  }
  if (r() < 0.25) {
    faults.push({
      atMs: 0,
      rule: { kind: "bad-commit", commit: names.commit, mode: pick(["500", "slow"] as const) },
      label: "bad commit",
    });
  }
  if (r() < 0.25) {
    faults.push({
      atMs: 0,
      rule: { kind: "scale", group: names.blueGroup, desired: instances + pick([-1, 1]), atMs: between(5, 25) * MIN },
      label: "blue scaled mid-deploy",
    });
  }
  if (r() < 0.2) {
    faults.push({
      atMs: 0,
      rule: { kind: "command", match: "sample-app install", mode: "fail", exitCode: 3, times: 1 },
      label: "install fails once",
    });
  }
  const pushes = r() < 0.4 ? Array.from({ length: between(1, 2) }, () => between(1, 30) * MIN).sort((a, b) => a - b) : [];
  const operator = Array.from({ length: 4 }, () => ({
    move: (r() < 0.6 ? "redrive" : "abort") as OperatorMove,
    afterMs: between(1, 60) * MIN,
  }));
  const approval = r() < 0.2;
  const approveAfterMs = between(1, 30) * MIN;
  // Drawn after everything else, so the older draws (and the fixed seeds' stories) stay as they were.
  const stories: Stories = {
    redelivery: r() < 0.4,
    redrive: r() < 0.4 ? { aroundQueueAtMs: between(0, 40) * MIN } : undefined,
    burst: r() < 0.3 ? { count: between(3, 5), atMs: between(1, 30) * MIN } : undefined,
    caseVariant: r() < 0.3,
    staging: undefined,
  };
  // A redelivery of an old push needs a newer one.
  if (stories.redelivery && pushes.length === 0 && !stories.burst) pushes.push(between(1, 30) * MIN);
  // Drawn last, so every older draw stays as it was: staging pushed while production's first deployment bakes.
  if (r() < 0.3) stories.staging = { atMs: between(0, 4) * MIN };
  return { seed, instances, approval, faults, pushes, operator, approveAfterMs, stories };
}
