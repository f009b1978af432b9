/**
 * Property: service and environment names of every allowed shape (hyphens, digits, the maximum
 * lengths) give valid, unique execution names, and the CLI, the console's action API and the pager
 * all read the right (service, environment) of such an execution — from its input, never its name.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../lib/clock.ts";
import { SERVICE_PATTERN } from "../../lib/config/index.ts";
import { executionName, type Trigger } from "../../lib/names.ts";
import { handleStatusChange, type PagerDeps } from "../../lib/pager/index.ts";
import { main } from "../../bin/kiln.ts";
import { runAction } from "../../local/console/server.ts";
import { FakeStates, FakeTable, fakeTarget, MACHINES, useConfig } from "../cli/fake-target.ts";
import { type Dynamo, startDynamo } from "../unit/lock/fakes.ts";

const ENVIRONMENT_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
const lower = "abcdefghijklmnopqrstuvwxyz";
const tail = `${lower}0123456789-`;
/** `^[a-z][a-z0-9-]{0,max}$`, biased towards hyphens and the longest length. */
const ident = (max: number) =>
  fc
    .tuple(
      fc.constantFrom(...lower),
      fc.oneof(
        fc.string({ unit: fc.constantFrom(...tail), maxLength: max }),
        fc.string({ unit: fc.constantFrom("-", "a", "1"), minLength: max, maxLength: max }),
      ),
    )
    .map(([h, t]) => h + t);
const service = ident(23);
const environment = ident(31);
const commit = fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 40, maxLength: 40 });
const trigger = fc.constantFrom<Trigger>("push", "rotation", "operator", "rollback");
const seq = fc.nat({ max: 2 ** 40 });

describe("execution names over generated service and environment names", () => {
  it("the generators produce what the configuration accepts", () => {
    fc.assert(fc.property(service, environment, (s, e) => SERVICE_PATTERN.test(s) && ENVIRONMENT_PATTERN.test(e)));
  });

  it("stay within 80 characters of [A-Za-z0-9-]", () => {
    fc.assert(
      fc.property(service, environment, commit, trigger, seq, (s, e, c, t, q) => {
        const n = executionName(s, e, c, t, q);
        expect(n.length).toBeLessThanOrEqual(80);
        expect(n).toMatch(/^[A-Za-z0-9-]+$/);
      }),
      { numRuns: 2_000 },
    );
  });

  it("are unique across (service, environment, commit, trigger, seq)", () => {
    // Few distinct parts, so that units share prefixes (`a-b`/`c` and `a`/`b-c`) and names would collide.
    const small = (max: number) =>
      fc.string({ unit: fc.constantFrom("a", "b", "-"), minLength: 0, maxLength: max }).map((t) => `a${t}`);
    const tuple = fc.tuple(
      fc.oneof(small(4), service),
      fc.oneof(small(4), environment),
      fc.constantFrom("a".repeat(40), "b".repeat(40)),
      trigger,
      fc.nat({ max: 3 }),
    );
    fc.assert(
      fc.property(fc.uniqueArray(tuple, { minLength: 2, maxLength: 60, selector: (x) => JSON.stringify(x) }), (tuples) => {
        const names = tuples.map(([s, e, c, t, q]) => executionName(s, e, c, t, q));
        expect(new Set(names).size).toBe(names.length);
      }),
      { numRuns: 500 },
    );
    expect(executionName("a-b", "c", "a".repeat(40), "push", 1)).not.toBe(executionName("a", "b-c", "a".repeat(40), "push", 1));
  });
});

describe("the CLI, the console API and the pager read service and environment from the input", () => {
  let dyn: Dynamo;
  const previousConfig = process.env.KILN_CONFIG;
  beforeAll(async () => {
    dyn = await startDynamo();
  });
  afterAll(async () => {
    await dyn?.stop();
    if (previousConfig === undefined) delete process.env.KILN_CONFIG;
    else process.env.KILN_CONFIG = previousConfig;
  });

  it("for any service/environment pair (and a look-alike service sharing the name's prefix)", async () => {
    const quiet = { out: (_: string) => {}, error: console.error };
    await fc.assert(
      fc.asyncProperty(
        service.filter((s) => s !== "web"),
        environment,
        environment,
        commit,
        seq,
        async (svc, env, other, c, q) => {
          fc.pre(env !== other);
          // The look-alike: the same prefix up to the first hyphen (`web` for `web-api`), configured too.
          const prefix = svc.split("-")[0]!;
          useConfig({
            [svc]: { main: other, [`env-${env}`]: env },
            ...(prefix !== svc && prefix !== "web" ? { [prefix]: { main: other } } : {}),
          });
          const states = new FakeStates();
          const table = new FakeTable();
          const target = fakeTarget(states, table);
          const a = states.waitingDeployment(table, svc, env, c, q);
          const b = states.waitingDeployment(table, svc, env, c, q + 1);

          console.error = () => {};
          try {
            // CLI: approve by name; abort by service + environment (the newest: b).
            expect(await main(["approve", a.name], quiet.out, { target })).toBe(0);
            expect(await main(["abort", svc, "--env", env], quiet.out, { target })).toBe(0);
            // Neither the other environment nor the look-alike has anything to abort.
            expect(await main(["abort", svc, "--env", other], quiet.out, { target })).toBe(3);
            if (prefix !== svc) expect(await main(["abort", prefix], quiet.out, { target })).toBe(3);
          } finally {
            console.error = quiet.error;
          }
          // Console API: reject b.
          await runAction(target, { action: "reject", execution: b.executionArn });
          expect(states.decisions.map((d) => [d.token, d.approved])).toEqual([
            [`token-${a.name}`, true],
            [`token-${b.name}`, false],
          ]);
          const aborts = [...states.executions.values()].filter((e) => e.stateMachineArn === MACHINES.abort);
          expect(aborts).toHaveLength(1);
          expect(JSON.parse(aborts[0]!.input)).toMatchObject({ service: svc, environment: env, executionArn: b.executionArn });
          expect(aborts[0]!.name).toMatch(/^[A-Za-z0-9-]{1,80}$/);

          // Pager: b's rejection is a notice for (svc, env).
          b.status = "FAILED";
          b.history.push({ type: "TaskFailed", taskFailedEventDetails: { error: "kiln.Rejected", cause: "rejected by x" } });
          const deps: PagerDeps = {
            sfn: states,
            machines: MACHINES,
            ddb: dyn.ddb,
            table: await dyn.newTable(),
            clock: new VirtualClock(),
            fetch: async () => ({ status: 200, headers: { get: () => null }, text: async () => "ok" }),
            secret: async () => "x",
            routeFor: () => ({ severity: "critical", slackWebhookParam: "/slack" }),
            updateLock: false,
          };
          const r = await handleStatusChange(
            {
              "detail-type": "Step Functions Execution Status Change",
              source: "aws.states",
              detail: {
                executionArn: b.executionArn,
                stateMachineArn: MACHINES.deploy,
                status: "FAILED",
                input: b.input,
                error: "kiln.Rejected",
                cause: "rejected by x",
              },
            },
            deps,
          );
          expect(r).toMatchObject({ action: "notified", service: svc, environment: env, notice: "rejected" });
        },
      ),
      { numRuns: 40, examples: [["web-api", "pre-prod", "production", "0".repeat(40), 1]] },
    );
  }, 120_000);
});
