import { z } from "zod";
import { BranchSchema, EnvironmentNameSchema, RepositorySchema, ServiceNameSchema } from "./identifiers.ts";

/**
 * The schema of `kiln.config.yaml`. Unknown keys are rejected (a typo such as `retian:` must not
 * silently fall back to a default). Field-by-field documentation: docs/configuration.md.
 */

const seconds = (min: number, max: number) => z.number().int().min(min).max(max);

const AmiId = z.string().regex(/^ami-[0-9a-f]{8,17}$/, "expected an AMI id such as ami-0123456789abcdef0");
const Arn = z.string().regex(/^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:.+$/, "expected an ARN");
/** A script run with bash through SSM AWS-RunShellScript. */
const Script = z.string().trim().min(1, "expected a non-empty shell script");
const TagMap = z.record(
  z
    .string()
    .min(1)
    .max(128)
    .refine((k) => !/^(aws|kiln):/i.test(k), "tag keys may not start with aws: or kiln: (reserved)"),
  z.string().max(256),
);

export const BaseAmiSchema = z.union(
  [
    z.strictObject({
      /** SSM parameter holding the AMI id, e.g. an AWS public parameter. */
      ssmParameter: z.string().regex(/^\/[A-Za-z0-9_.\-/]+$/, "expected an SSM parameter path starting with /"),
    }),
    z.strictObject({ imageId: AmiId }),
    z.strictObject({
      /** DescribeImages name filter (wildcards * and ?); the newest available match wins. */
      name: z.string().min(1),
      owners: z
        .array(
          z.string().regex(/^(self|amazon|aws-marketplace|\d{12})$/, "expected self, amazon, aws-marketplace or an account id"),
        )
        .min(1),
    }),
  ],
  { error: "expected one of {ssmParameter: /path}, {imageId: ami-…} or {name: pattern, owners: [..]}" },
);

export const CanaryStepSchema = z.strictObject({
  /** Percentage of traffic on green during this step. */
  weight: z.number().int().min(1).max(100),
  /** How long to hold (and verify) this weight before the next step. */
  bakeSeconds: seconds(0, 86_400),
});

/**
 * The canary judge (docs/canary.md): green is compared with blue on 5xx rate and latency during
 * every bake, with a minimum of evidence before a step may pass. Every default is documented there.
 */
export const JudgeSchema = z
  .strictObject({
    /** false: canary steps are judged by alarms and health alone. */
    enabled: z.boolean().default(true),
    /** How often alarms and the judge are evaluated during a bake. */
    intervalSeconds: seconds(10, 3_600).default(60),
    /** CloudWatch period of the metrics read (ALB metrics: 60 s resolution). */
    periodSeconds: z.union([z.literal(60), z.literal(120), z.literal(300)]).default(60),
    /** Requests green must serve within a step before the step may pass (Builders' Library practice: a minimum count, not only time). */
    minRequests: z.number().int().min(1).max(10_000_000).default(100),
    /** How much longer than its bake a step waits for minRequests before it fails. */
    maxExtensionSeconds: seconds(0, 86_400).default(600),
    /**
     * What a step does when the extension ran out and green still served too few requests:
     * "fail" (the default: "not enough traffic to judge") or "promote" — promote without judging,
     * only for an environment that is known to have no traffic. Spelled out on purpose.
     */
    whenNoTraffic: z.enum(["fail", "promote"]).default("fail"),
    /** Confidence of a Fail verdict (Kayenta's default 0.98), split over a step's evaluations and both metrics. */
    confidence: z.number().min(0.5).max(0.999_999).default(0.98),
    errorRate: z
      .strictObject({
        /** Green's 5xx rate may be up to (1 + tolerance) × blue's before it counts as worse. */
        tolerance: z.number().min(0).max(100).default(0.25),
        /** …and must exceed blue's by at least this much (absolute, 0.001 = 0.1 percentage point). */
        minIncrease: z.number().min(0).max(1).default(0.001),
      })
      .prefault({}),
    latency: z
      .strictObject({
        /** The TargetResponseTime percentile compared. */
        percentile: z.number().min(50).max(99.9).default(99),
        /** Green's percentile may be up to (1 + tolerance) × blue's… */
        tolerance: z.number().min(0).max(100).default(0.25),
        /** …or blue's + this many ms, whichever is larger. */
        minIncreaseMs: z.number().min(0).max(60_000).default(10),
      })
      .prefault({}),
    /** The 100 % step bakes at least this long, blue still InService and serviced in, before blue is touched. */
    fullTrafficBakeSeconds: seconds(0, 86_400).default(300),
    /** Blue's baseline when it carries no traffic (the 100 % step): this long before the step began. */
    baselineSeconds: seconds(60, 86_400).default(600),
  })
  .prefault({});

/** Keys an environment may not override: they say which pushes reach the service at all. */
export const NOT_OVERRIDABLE = ["repository", "branches", "environments"] as const;

const ServiceBaseSchema = z.strictObject({
  repository: RepositorySchema,
  /** Branch → environment. Pushes to other branches are ignored. */
  branches: z
    .record(BranchSchema, EnvironmentNameSchema)
    .refine((b) => Object.keys(b).length > 0, "expected at least one branch"),
  region: z.string().regex(/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/, "expected an AWS region such as us-east-1"),
  baseAmi: BaseAmiSchema,
  architecture: z.enum(["x86_64", "arm64"]).default("x86_64"),
  builder: z.strictObject({
    instanceType: z.string().regex(/^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$/, "expected an instance type such as t3.small"),
    /** Subnet for the builder; omitted = the default VPC's default subnet. */
    subnet: z
      .string()
      .regex(/^subnet-[0-9a-f]{8,17}$/, "expected a subnet id")
      .optional(),
    securityGroups: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, "expected a security group id")).default([]),
    /** Instance profile name; it must allow the SSM agent to register (AmazonSSMManagedInstanceCore). */
    instanceProfile: z.string().regex(/^[\w+=,.@-]{1,128}$/, "expected an instance profile name"),
    rootVolumeGiB: z.number().int().min(1).max(16_384).optional(),
  }),
  scripts: z.strictObject({
    install: Script,
    imageTest: Script,
    smokeTest: Script,
    serviceIn: Script,
    serviceOut: Script,
  }),
  /** Deadlines; a wait that exceeds one fails its step with kiln.Timeout. */
  timeouts: z
    .strictObject({
      builderReadySeconds: seconds(30, 7_200).default(900),
      installSeconds: seconds(30, 172_800).default(1_800),
      imageTestSeconds: seconds(30, 172_800).default(900),
      imageAvailableSeconds: seconds(60, 86_400).default(3_600),
      /** Green's instances InService with SSM online, from the green group's creation (or a redrive). */
      greenReadySeconds: seconds(60, 86_400).default(1_800),
      /** Then every green target healthy: green must get there within ready + healthy seconds. */
      greenHealthySeconds: seconds(30, 86_400).default(900),
    })
    .prefault({}),
  /** Typical durations: the first status check happens after these, later ones more often. */
  expected: z
    .strictObject({
      builderReadySeconds: seconds(1, 7_200).default(90),
      installSeconds: seconds(1, 172_800).default(60),
      imageTestSeconds: seconds(1, 172_800).default(30),
      imageAvailableSeconds: seconds(1, 86_400).default(300),
    })
    .prefault({}),
  image: z
    .strictObject({
      /** How many complete AMIs of this service to keep (besides any in use). */
      retain: z.number().int().min(1).max(1_000).default(5),
      encrypted: z.boolean().default(true),
      /** KMS key id, ARN or alias for EBS encryption; omitted = the account's default EBS key. */
      kmsKeyId: z.string().min(1).optional(),
    })
    .prefault({}),
  tags: TagMap.default({}),

  // --- settings the roll phase reads -------------------------------------------------------
  listener: z.union(
    [
      z.strictObject({ arn: Arn }),
      z.strictObject({ loadBalancer: z.string().min(1).max(32), port: z.number().int().min(1).max(65_535).default(80) }),
    ],
    { error: "expected {arn: <listener ARN>} or {loadBalancer: <name>, port: <number>}" },
  ),
  /** A listener rule to shift instead of the default action. */
  ruleArn: Arn.optional(),
  /** The two target groups blue and green alternate between. */
  targetGroups: z
    .tuple([
      z.string().regex(/^[A-Za-z0-9-]{1,32}$/, "expected a target group name"),
      z.string().regex(/^[A-Za-z0-9-]{1,32}$/, "expected a target group name"),
    ])
    .refine(([a, b]) => a !== b, "expected two different target group names"),
  minHealthyPercent: z.number().int().min(0).max(100).default(100),
  canary: z
    .array(CanaryStepSchema)
    .min(1)
    .superRefine((steps, ctx) => {
      steps.forEach((s, i) => {
        const prev = steps[i - 1];
        if (prev && s.weight <= prev.weight)
          ctx.addIssue({
            code: "custom",
            path: [i, "weight"],
            input: s.weight,
            message: `expected a weight above the previous step's ${prev.weight}`,
          });
      });
      const last = steps.at(-1);
      if (last && last.weight !== 100)
        ctx.addIssue({
          code: "custom",
          path: [steps.length - 1, "weight"],
          input: last.weight,
          message: "expected the last canary step to reach weight 100",
        });
    })
    .default([
      { weight: 10, bakeSeconds: 300 },
      { weight: 50, bakeSeconds: 300 },
      { weight: 100, bakeSeconds: 0 },
    ]),
  /** The canary judge's thresholds and evidence rules (docs/canary.md). */
  judge: JudgeSchema,
  /** CloudWatch alarm names that must be OK during every canary step. */
  alarms: z.array(z.string().min(1).max(255)).default([]),
  /** How long blue is kept (scaled to 0) after a successful shift. */
  fastRollbackMinutes: z.number().int().min(0).max(10_080).default(60),
  approval: z
    .strictObject({
      /** Pause before the first traffic shift until an operator approves. */
      required: z.boolean().default(false),
      timeoutMinutes: z.number().int().min(1).max(525_600).default(1_440),
    })
    .prefault({}),
  /** Scheduled rotation rebakes on the newest base AMI so no instance is older than this. */
  maxInstanceAgeDays: z.number().int().min(1).max(365).default(14),
  pager: z
    .strictObject({
      /** SNS topic ARN or name that receives pages. */
      topic: z.string().min(1).optional(),
      severity: z.enum(["critical", "error", "warning"]).default("critical"),
    })
    .prefault({}),
  /**
   * Per-environment settings: each key replaces the service's value of that key for the
   * environment (a shallow override). Environments that share a listener rule or target group
   * would roll each other's fleet, so every environment of a service must have its own.
   */
  environments: z.record(EnvironmentNameSchema, z.record(z.string(), z.unknown())).default({}),
});

function checkKms(
  s: { image: { kmsKeyId?: string | undefined; encrypted: boolean } },
  ctx: z.RefinementCtx,
  path: PropertyKey[] = [],
) {
  if (s.image.kmsKeyId && !s.image.encrypted)
    ctx.addIssue({
      code: "custom",
      path: [...path, "image", "kmsKeyId"],
      input: s.image.kmsKeyId,
      message: "expected no kmsKeyId when encrypted is false",
    });
}

/** The settings of one environment: the service's, with the environment's overrides applied. */
export function environmentSettings(s: z.output<typeof ServiceBaseSchema>, environment: string) {
  const { environments, ...base } = s;
  const override = Object.hasOwn(environments, environment) ? environments[environment] : {};
  return ServiceBaseSchema.safeParse({ ...base, ...override, environments: {} });
}

/** Where an environment's traffic lives: two environments must never share any of it. */
function trafficKeys(s: z.output<typeof ServiceBaseSchema>): string[] {
  const lb = "arn" in s.listener ? s.listener.arn : `${s.listener.loadBalancer}:${s.listener.port}`;
  return [
    ...s.targetGroups.map((tg) => `target group ${tg}`),
    ...(s.ruleArn ? [`listener rule ${s.ruleArn}`] : [`listener ${lb}`]),
  ];
}

export const ServiceSchema = ServiceBaseSchema.superRefine((s, ctx) => {
  checkKms(s, ctx);
  const envs = [...new Set(Object.values(s.branches))];
  for (const [env, override] of Object.entries(s.environments)) {
    if (!envs.includes(env)) {
      ctx.addIssue({
        code: "custom",
        path: ["environments", env],
        input: override,
        message: `expected an environment that a branch maps to (${envs.join(", ")})`,
      });
      continue;
    }
    for (const k of NOT_OVERRIDABLE)
      if (Object.hasOwn(override, k))
        ctx.addIssue({
          code: "custom",
          path: ["environments", env, k],
          input: override[k],
          message: `expected no ${k} here: it is set once for the service`,
        });
  }
  const owner = new Map<string, string>();
  for (const env of envs) {
    const r = environmentSettings(s, env);
    if (!r.success) {
      for (const i of r.error.issues) ctx.addIssue({ ...i, path: ["environments", env, ...i.path] } as never);
      continue;
    }
    checkKms(r.data, ctx, ["environments", env]);
    for (const key of trafficKeys(r.data)) {
      const other = owner.get(key);
      // A listener's default action is shared only if neither environment uses a rule.
      if (other && other !== env)
        ctx.addIssue({
          code: "custom",
          path: ["environments", env],
          input: s.environments[env],
          message: `expected environment ${env} to have its own traffic: it shares the ${key} with ${other}; give it its own targetGroups and listener (or ruleArn) under environments.${env}`,
        });
      else owner.set(key, env);
    }
  }
});

export const KilnConfigSchema = z.strictObject({
  version: z.literal(1, { error: "expected version: 1" }),
  janitor: z
    .strictObject({
      /** Leftovers of executions that ended more than this long ago are removed. */
      afterHours: z
        .number()
        .min(0)
        .max(24 * 14)
        .default(24),
    })
    .prefault({}),
  services: z.record(ServiceNameSchema, ServiceSchema).refine((s) => Object.keys(s).length > 0, "expected at least one service"),
});

export type BaseAmi = z.infer<typeof BaseAmiSchema>;
export type CanaryStep = z.infer<typeof CanaryStepSchema>;
export type JudgeConfig = z.infer<typeof JudgeSchema>;
/** One service's validated configuration, with defaults filled in (for one environment once resolved). */
export type ServiceConfig = z.infer<typeof ServiceSchema>;
export type KilnConfig = z.infer<typeof KilnConfigSchema>;
