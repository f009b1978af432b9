/**
 * Runs one seed of the simulation: a local stack in virtual time, the example service seeded, a
 * push through the signed webhook, the seed's fault schedule (test/scenarios/schedule.ts), extra
 * pushes, and a simulated operator who approves, redrives or aborts after random delays — with the
 * invariant monitor (test/support/invariants.ts) sampling every simulated second. At the end the
 * service must be on the old commit or a pushed one, healthy, with nothing leaked, the lock
 * released and one page per failure.
 *
 * Stories (schedule.ts `stories`), each recording whether it reached the feature it is named after
 * (a `problems` entry when not): a byte-for-byte redelivery of the first push once newer ones were
 * handled (202, ignored, nothing started, traffic unchanged); a deploy execution started around the
 * queue (fails at AcquireLock) and, once settled, a redrive of it and of every failed or aborted
 * deploy (fails with kiln.Superseded, traffic unchanged); a burst of pushes one second apart
 * (queued, latest wins); the first push naming the repository in another case (`EXAMPLE/WEB`).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  RedriveExecutionCommand,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import YAML from "yaml";
import { readLock } from "../../lib/lock/index.ts";
import { sendPush, decide } from "../../local/cli/commands.ts";
import type { Backend } from "../../local/cloud/cloud.ts";
import type { InstanceStateEvent } from "../../local/cloud/contracts.ts";
import { stackTarget } from "../../local/cli/target.ts";
import { seedService } from "../../local/seed.ts";
import { PROJECT_ROOT } from "../../local/serverless.ts";
import { Stack } from "../../local/stack.ts";
import { statesBackend } from "../../local/states/api.ts";
import { InvariantMonitor, type Violation } from "../support/invariants.ts";
import { drawSchedule, type Schedule, type STORIES } from "./schedule.ts";

export interface SeedOutcome {
  seed: number;
  ok: boolean;
  schedule: Schedule;
  /** Each execution of the deploy machine: final status. */
  executions: { name: string; status: string; failures: number }[];
  /** Operator actions taken, in order. */
  actions: string[];
  violations: Violation[];
  /** End-state problems (commit, health, lock, pages, quiescence). */
  problems: string[];
  simulatedMs: number;
  wallMs: number;
  /** Each story the seed drew: whether it reached the feature it is named after. */
  stories: Partial<Record<StoryName, { reached: boolean; note: string }>>;
}

type StoryName = (typeof STORIES)[number];

const OLD_COMMIT = "a".repeat(40);
const OLD_STAGING_COMMIT = "b".repeat(40);
const SIM_WEBHOOK_SECRET = "kiln-sim-webhook-secret";
const commitOf = (n: number) => `${(0xc0ffee + n).toString(16).padStart(8, "0")}${"d".repeat(32)}`;
/** Every simulated wait of the runner is bounded by this (a stuck deployment is a finding). */
const DEADLINE_MS = 12 * 3_600_000;

function configWithApproval(): string {
  const doc = YAML.parse(readFileSync(path.join(PROJECT_ROOT, "kiln.config.yaml"), "utf8")) as {
    services: Record<string, { approval: { required: boolean } }>;
  };
  for (const svc of Object.values(doc.services)) svc.approval = { ...svc.approval, required: true };
  const file = path.join(mkdtempSync(path.join(tmpdir(), "kiln-sim-")), "kiln.config.yaml");
  writeFileSync(file, YAML.stringify(doc));
  return file;
}

export async function runSeed(seed: number, opts: { log?: (s: string) => void } = {}): Promise<SeedOutcome> {
  const log = opts.log ?? (() => {});
  const wall0 = Date.now();
  const first = commitOf(0);
  // The schedule's shape does not depend on the stack, so it can be drawn before deciding the config.
  const probe = drawSchedule(seed, { functionName: (k) => k, commit: first, blueGroup: "kiln-web-blue-seed" });
  const config = probe.approval ? configWithApproval() : undefined;
  const stack = await Stack.start({
    clock: "virtual",
    port: 0,
    seed,
    console: false,
    ...(config ? { config } : {}),
  } as Parameters<typeof Stack.start>[0]);
  const cloud = stack.cloud;
  const clock = cloud.clock;
  // The webhook handler caches its secret at module scope, and a Lambda module outlives one stack
  // in this process: every seed's stack gets the same secret (on AWS it is one SSM parameter).
  await new SSMClient(cloud.clientConfig()).send(
    new PutParameterCommand({
      Name: stack.info().webhookSecretParameter!,
      Type: "SecureString",
      Value: SIM_WEBHOOK_SECRET,
      Overwrite: true,
    }),
  );
  stack.webhookSecret = SIM_WEBHOOK_SECRET;
  const actions: string[] = [];
  const problems: string[] = [];
  const stories: SeedOutcome["stories"] = {};
  const story = (name: StoryName, reached: boolean, note: string) => {
    stories[name] = { reached, note };
    if (!reached) problems.push(`story ${name} did not reach its feature: ${note}`);
  };
  let monitor: InvariantMonitor | undefined;
  let stagingMonitor: InvariantMonitor | undefined;
  try {
    const seeded = await seedService(cloud, {
      commit: OLD_COMMIT,
      instances: probe.instances,
      ...(config ? { configFile: config } : {}),
    });
    // The staging story: staging is its own unit (fleet, listener, lock, queue), seeded beside production.
    const staging = probe.stories.staging
      ? await seedService(cloud, {
          environment: "staging",
          commit: OLD_STAGING_COMMIT,
          instances: 2,
          ...(config ? { configFile: config } : {}),
        })
      : undefined;
    const schedule = drawSchedule(seed, {
      functionName: (k) => stack.info().functions[k]?.split(":").pop() ?? k,
      commit: first,
      blueGroup: seeded.blueGroup,
    });
    const sfn = new SFNClient(cloud.clientConfig());
    const target = stackTarget(stack);
    const deployArn = stack.info().stateMachines.DeployStateMachine!;
    const machines = Object.values(stack.info().stateMachines);
    monitor = InvariantMonitor.start(cloud, { service: "web", ...(config ? { configFile: config } : {}) });
    if (staging)
      stagingMonitor = InvariantMonitor.start(cloud, {
        service: "web",
        environment: "staging",
        ...(config ? { configFile: config } : {}),
      });
    const t0 = clock.now();

    // Faults, armed on the cloud clock relative to the first push.
    const armed: number[] = [];
    const greenFlaps = schedule.faults.filter((f) => f.rule.onGreen);
    for (const f of schedule.faults.filter((x) => !x.rule.onGreen)) {
      clock.setTimeout(() => {
        const id = cloud.faults.add(f.rule);
        // A bad commit stays bad: no operator action fixes it (only a new commit or an abort).
        if (f.rule.kind !== "bad-commit") armed.push(id);
        log(`  +${min(clock.now() - t0)} fault: ${f.label}`);
        if (f.forMs) clock.setTimeout(() => cloud.faults.remove(id), f.forMs);
      }, f.atMs);
    }
    const onState = (ev: InstanceStateEvent) => {
      if (ev.to !== "running" || greenFlaps.length === 0) return;
      if (ev.instance.tags.get("kiln:role") !== "fleet" || ev.instance.tags.get("kiln:execution") === "seed") return;
      const f = greenFlaps.shift()!;
      const { onGreen: _g, ...rule } = f.rule;
      const id = cloud.faults.add({ ...rule, instanceId: ev.instance.id });
      armed.push(id);
      log(`  +${min(clock.now() - t0)} fault: ${f.label} (${ev.instance.id})`);
      clock.setTimeout(() => cloud.faults.remove(id), f.forMs ?? 60_000);
    };
    cloud.bus.on("instance-state", onState);

    // Users: steady requests through the ALB in process, so the canary's 5xx and latency alarms
    // see a bad commit the way they would in production (5 requests every 2 simulated seconds).
    const elb = cloud.backend<ElbView>("elasticloadbalancing");
    let loadOn = true;
    const answers = new Map<number, number>();
    const tick = () => {
      if (!loadOn) return;
      for (let i = 0; i < 5; i++)
        void elb.request(seeded.loadBalancerArn, "/").then(
          (r) => answers.set(r.status, (answers.get(r.status) ?? 0) + 1),
          () => answers.set(0, (answers.get(0) ?? 0) + 1),
        );
      clock.setTimeout(tick, 2_000);
    };
    tick();

    // Pushes through the signed webhook (real HTTP to the cloud endpoint, held on the clock).
    const pushed = [first];
    const deliveries: { commit: string; deliveryId: string; raw: string }[] = [];
    // Each push names the one before it (GitHub's `before`), in the order they are sent.
    let head = OLD_COMMIT;
    const push = async (commit: string, repository = "example/web") => {
      const before = head;
      head = commit;
      const r = await clock.hold(sendPush(stack.webhookUrl, stack.webhookSecret, { repository, branch: "main", commit, before }));
      deliveries.push({ commit, deliveryId: r.deliveryId, raw: r.raw });
      log(
        `  +${min(clock.now() - t0)} push ${commit.slice(0, 8)} → ${r.status} ${String(r.body.action ?? r.body.error ?? (r.body.queued ? "queued" : ""))}`,
      );
      if (r.status >= 300)
        problems.push(`push of ${commit.slice(0, 8)} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
      return r;
    };
    const firstAnswer = await push(first, schedule.stories.caseVariant ? "EXAMPLE/WEB" : "example/web");
    if (schedule.stories.caseVariant) {
      const started =
        firstAnswer.status === 202 && typeof firstAnswer.body.executionArn === "string" && !firstAnswer.body.ignored;
      story(
        "caseVariant",
        started,
        started
          ? "EXAMPLE/WEB mapped to web and started"
          : `EXAMPLE/WEB answered ${firstAnswer.status} ${JSON.stringify(firstAnswer.body).slice(0, 160)}`,
      );
    }
    schedule.pushes.forEach((at, i) => {
      const commit = commitOf(i + 1);
      pushed.push(commit);
      clock.setTimeout(() => void push(commit), at);
    });
    const stagingCommit = commitOf(200);
    let stagingArn: string | undefined;
    if (schedule.stories.staging) {
      clock.setTimeout(() => {
        void clock
          .hold(
            sendPush(stack.webhookUrl, stack.webhookSecret, {
              repository: "example/web",
              branch: "stage",
              commit: stagingCommit,
              before: OLD_STAGING_COMMIT,
            }),
          )
          .then((r) => {
            log(`  +${min(clock.now() - t0)} push stage ${stagingCommit.slice(0, 8)} → ${r.status}`);
            if (r.status >= 300 || typeof r.body.executionArn !== "string")
              problems.push(`push to stage answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
            else stagingArn = r.body.executionArn;
          });
      }, schedule.stories.staging.atMs);
    }
    const burstAnswers: Record<string, unknown>[] = [];
    if (schedule.stories.burst) {
      const { count, atMs } = schedule.stories.burst;
      for (let k = 0; k < count; k++) {
        const commit = commitOf(100 + k);
        pushed.push(commit);
        clock.setTimeout(() => void push(commit).then((r) => burstAnswers.push(r.body)), atMs + k * 1_000);
      }
    }
    // An execution started around kiln's queue (e.g. from the Step Functions console): it must fail at
    // AcquireLock (kiln.LockHeld while another holds the lock, kiln.Superseded when it is free).
    const aroundQueue = `web-production-console-${seed}`;
    const handled = new Set<string>();
    const aroundArn = `${deployArn.replace(":stateMachine:", ":execution:")}:${aroundQueue}`;
    if (schedule.stories.redrive) {
      handled.add(`${aroundArn}#1`);
      clock.setTimeout(() => {
        void clock
          .hold(
            sfn.send(
              new StartExecutionCommand({
                stateMachineArn: deployArn,
                name: aroundQueue,
                input: JSON.stringify({
                  service: "web",
                  environment: "production",
                  commit: commitOf(99),
                  trigger: "operator",
                  requestedBy: "console",
                }),
              }),
            ),
          )
          .then(
            () => actions.push(`start ${aroundQueue} around the queue`),
            (err: Error) => problems.push(`start around the queue refused: ${err.message}`),
          );
      }, schedule.stories.redrive.aroundQueueAtMs);
    }

    const liveWeights = () => {
      const out: Record<string, number> = {};
      for (const l of elb.listeners.values())
        for (const a of l.defaultRule.actions) for (const t of a.TargetGroups ?? []) out[t.TargetGroupArn] = t.Weight;
      return JSON.stringify(out);
    };
    const settleAll = async () => {
      for (let i = 0; i < 240; i++) {
        await clock.sleep(30_000);
        if ((await listAll(sfn, machines)).every((e) => e.status !== "RUNNING")) return true;
      }
      return false;
    };
    const redeliveryStory = async () => {
      const old = deliveries[0];
      if (!old || deliveries.length < 2) return story("redelivery", false, "no newer push was delivered after the first");
      const before = (await listAll(sfn, machines)).length;
      const weights = liveWeights();
      const r = await clock.hold(
        sendPush(
          stack.webhookUrl,
          stack.webhookSecret,
          { repository: "", branch: "", commit: old.commit },
          { deliveryId: old.deliveryId, raw: old.raw },
        ),
      );
      await clock.sleep(60_000);
      const after = (await listAll(sfn, machines)).length;
      const reason = String(r.body.reason ?? "");
      const reached = r.status === 202 && r.body.ignored === true && after === before && liveWeights() === weights;
      actions.push(`redeliver ${old.commit.slice(0, 8)} → ${r.status} ${reason.slice(0, 80)}`);
      story(
        "redelivery",
        reached,
        `answered ${r.status} ${JSON.stringify(r.body).slice(0, 200)}; executions ${before} → ${after}`,
      );
    };
    const redriveStory = async () => {
      const deploys = (await listAll(sfn, machines)).filter(
        (e) => e.stateMachineArn === deployArn && (e.status === "FAILED" || e.status === "ABORTED" || e.status === "TIMED_OUT"),
      );
      const notes: string[] = [];
      let superseded = 0;
      for (const d of deploys) {
        const weights = liveWeights();
        try {
          await sfn.send(new RedriveExecutionCommand({ executionArn: d.executionArn }));
        } catch (err) {
          notes.push(`${d.name}: redrive refused (${(err as Error).name})`);
          continue;
        }
        await settleAll();
        const x = await sfn.send(new DescribeExecutionCommand({ executionArn: d.executionArn }));
        const changed = liveWeights() !== weights;
        actions.push(`redrive ${d.name} (story) → ${x.status} ${x.error ?? ""}`);
        if (x.status === "FAILED" && x.error === "kiln.Superseded" && !changed) superseded++;
        // Resumed inside the bake (before RenewLock), it may fail on what its abort removed (the builder): nothing changed either.
        else if (x.status === "FAILED" && !changed)
          notes.push(`${d.name}: failed with ${x.error} before reaching a lock check, nothing changed`);
        else
          problems.push(
            `redrive of ${d.name} ended ${x.status} ${x.error ?? ""}${changed ? ", and moved traffic" : ""}: expected kiln.Superseded, nothing changed`,
          );
        notes.push(`${d.name}: ${x.status} ${x.error ?? ""}`);
      }
      story("redrive", superseded > 0, notes.join("; ") || "no failed deploy execution to redrive");
    };

    // The operator: watches deployments, approves, redrives or aborts failures.
    const failures = new Map<string, number>();
    const approved = new Set<string>();
    let moves = 0;
    const deadline = clock.now() + DEADLINE_MS;
    const burstEnd = schedule.stories.burst ? schedule.stories.burst.atMs + schedule.stories.burst.count * 1_000 : 0;
    // The last thing the schedule starts: a push, the burst's last, or the execution started around the queue.
    const aroundAt = schedule.stories.redrive?.aroundQueueAtMs ?? 0;
    const lastPushAt = t0 + Math.max(0, burstEnd, aroundAt, ...schedule.pushes);
    for (;;) {
      if (clock.now() > deadline) {
        problems.push(`not settled after ${DEADLINE_MS / 3_600_000} simulated hours`);
        break;
      }
      await clock.sleep(30_000);
      const all = await listAll(sfn, machines);
      const running = all.filter((e) => e.status === "RUNNING");
      const deploys = all.filter((e) => e.stateMachineArn === deployArn);
      if (schedule.approval) {
        for (const e of running.filter((x) => x.stateMachineArn === deployArn && !approved.has(x.executionArn!))) {
          const waiting = statesBackend(cloud)
            .history(e.executionArn!)
            .some((h) => h.type === "TaskStateEntered" && JSON.stringify(h).includes("RequestApproval"));
          if (!waiting) continue;
          approved.add(e.executionArn!);
          const arn = e.executionArn!;
          clock.setTimeout(() => {
            void clock.hold(decide(target, arn, true, undefined, () => {})).then(
              () => actions.push(`approve ${arn.split(":").pop()}`),
              (err: Error) => actions.push(`approve ${arn.split(":").pop()} refused: ${err.message.slice(0, 80)}`),
            );
          }, schedule.approveAfterMs);
        }
      }
      // A failure the operator has not handled yet: the newest failed deploy not superseded.
      const failed = deploys.filter((e) => e.status === "FAILED" || e.status === "TIMED_OUT");
      for (const f of failed) {
        const n = statesBackend(cloud)
          .history(f.executionArn!)
          .filter((h) => h.type === "ExecutionFailed" || h.type === "ExecutionTimedOut").length;
        failures.set(f.executionArn!, n);
      }
      const unhandled = failed.filter(
        (f) => f.executionArn !== aroundArn && !handled.has(`${f.executionArn}#${failures.get(f.executionArn!)}`),
      );
      if (unhandled.length > 0 && running.length === 0) {
        const f = unhandled.at(-1)!;
        handled.add(`${f.executionArn}#${failures.get(f.executionArn!)}`);
        const plan = schedule.operator[moves] ?? { move: "abort" as const, afterMs: 60_000 };
        moves++;
        await clock.sleep(plan.afterMs);
        // An operator fixes what made it fail before a redrive (a bad commit cannot be fixed: abort).
        const bad = schedule.faults.some((x) => x.rule.kind === "bad-commit");
        const move = moves > schedule.operator.length || (bad && plan.move === "redrive" && moves > 1) ? "abort" : plan.move;
        for (const id of armed.splice(0)) cloud.faults.remove(id);
        if (move === "redrive") {
          try {
            await sfn.send(new RedriveExecutionCommand({ executionArn: f.executionArn }));
            actions.push(`redrive ${f.name}`);
          } catch (err) {
            actions.push(`redrive ${f.name} refused (${(err as Error).name}); abort`);
            await startAbort(sfn, target.stateMachines.abort!, f.executionArn!, moves);
          }
        } else {
          actions.push(`abort ${f.name}`);
          await startAbort(sfn, target.stateMachines.abort!, f.executionArn!, moves);
        }
        continue;
      }
      const openFailures = unhandled.length > 0;
      if (running.length === 0 && !openFailures && clock.now() >= lastPushAt + 60_000) {
        // Queued pushes start when the running deployment ends: give the queue a moment to drain.
        await clock.sleep(120_000);
        const again = await listAll(sfn, machines);
        if (again.every((e) => e.status !== "RUNNING") && again.length === all.length) break;
      }
    }
    for (const id of armed.splice(0)) cloud.faults.remove(id);
    // Stories played once the deployments settled ("much later").
    if (schedule.stories.redelivery) await redeliveryStory();
    if (schedule.stories.redrive) await redriveStory();
    if (schedule.stories.burst) {
      const queued = burstAnswers.filter((b) => b.queued === true);
      story(
        "burst",
        queued.length > 0,
        `${burstAnswers.length} pushes answered, ${queued.length} queued, ${burstAnswers.filter((b) => b.replaced).length} replaced an older queued one`,
      );
    }
    if (schedule.stories.staging) {
      const all = await listAll(sfn, machines);
      const stg = all.find((x) => x.executionArn === stagingArn);
      const span = (x: { startDate?: Date; stopDate?: Date }): [number, number] => [
        x.startDate?.getTime() ?? 0,
        x.stopDate?.getTime() ?? Infinity,
      ];
      const prodDeploys = [];
      for (const x of all.filter((d) => d.stateMachineArn === deployArn && d.executionArn !== stagingArn)) {
        const input = (await sfn.send(new DescribeExecutionCommand({ executionArn: x.executionArn }))).input;
        if (JSON.parse(input ?? "{}").environment === "production") prodDeploys.push(x);
      }
      const overlapped =
        stg !== undefined &&
        prodDeploys.some((d) => {
          const [a0, a1] = span(stg);
          const [b0, b1] = span(d);
          return a0 < b1 && b0 < a1;
        });
      story(
        "staging",
        overlapped,
        stg
          ? `staging ${stg.name} ${stg.status}${overlapped ? " while production deployed" : ", but no production deployment ran at the same time"}`
          : "no staging deployment started",
      );
    }
    cloud.bus.off("instance-state", onState);
    loadOn = false;
    log(`  load: ${[...answers].map(([k, v]) => `${k}×${v}`).join(" ")}`);
    const simulatedMs = clock.now() - t0;
    for (const id of armed.splice(0)) cloud.faults.remove(id);

    // End state.
    const violations = [...(await monitor.finish()), ...((await stagingMonitor?.finish()) ?? [])];
    const deploys = (await listAll(sfn, machines)).filter((e) => e.stateMachineArn === deployArn);
    const executions = [];
    for (const e of deploys) {
      // Redrives the stories made fail again count too.
      failures.set(
        e.executionArn!,
        statesBackend(cloud)
          .history(e.executionArn!)
          .filter((h) => h.type === "ExecutionFailed" || h.type === "ExecutionTimedOut").length,
      );
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
      // A kiln.Superseded failure changed nothing and is notified at info, never paged (lib/pager/pager.ts noticeFor).
      const superseded = statesBackend(cloud)
        .history(e.executionArn!)
        .filter(
          (h) =>
            h.type === "ExecutionFailed" &&
            (h.executionFailedEventDetails as { error?: string } | undefined)?.error === "kiln.Superseded",
        ).length;
      executions.push({
        name: e.name!,
        status: d.status!,
        failures: failures.get(e.executionArn!) ?? 0,
        pageable: (failures.get(e.executionArn!) ?? 0) - superseded,
      });
    }
    await checkEndState(stack, "production", seeded.targetGroupArns, [OLD_COMMIT, ...pushed], problems);
    if (staging) await checkEndState(stack, "staging", staging.targetGroupArns, [OLD_STAGING_COMMIT, stagingCommit], problems);
    if (opts.log) {
      // The story, for a failing seed: every execution's states with their simulated times.
      for (const e of await listAll(sfn, machines)) {
        const steps = statesBackend(cloud)
          .history(e.executionArn!)
          .filter((h) => h.type.endsWith("StateEntered") || h.type.startsWith("Execution"))
          .map(
            (h) =>
              `${new Date(h.timestamp).toISOString().slice(11, 19)} ${String((h.stateEnteredEventDetails as { name?: string } | undefined)?.name ?? h.type)}`,
          );
        log(`  ${e.name} ${e.status}: ${steps.filter((x, i) => x.split(" ")[1] !== steps[i - 1]?.split(" ")[1]).join(", ")}`);
        const failed = statesBackend(cloud)
          .history(e.executionArn!)
          .filter((h) => h.type === "ExecutionFailed")
          .map((h) => h.executionFailedEventDetails as { error?: string; cause?: string } | undefined);
        for (const f of failed) log(`    failed: ${f?.error ?? "?"}: ${(f?.cause ?? "").slice(0, 300)}`);
      }
    }
    checkPages(stack, executions, deploys, problems);
    const ok = violations.length === 0 && problems.length === 0;
    return { seed, ok, schedule, executions, actions, violations, problems, simulatedMs, wallMs: Date.now() - wall0, stories };
  } finally {
    monitor?.stop();
    stagingMonitor?.stop();
    await stack.stop();
  }
}

async function startAbort(sfn: SFNClient, machine: string, executionArn: string, n: number): Promise<void> {
  await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: machine,
      name: `web-abort-sim-${n}`,
      input: JSON.stringify({ service: "web", executionArn, requestedBy: "sim" }),
    }),
  );
}

async function listAll(sfn: SFNClient, machines: string[]) {
  const out = [];
  for (const m of machines) {
    let nextToken: string | undefined;
    do {
      const r = await sfn.send(new ListExecutionsCommand({ stateMachineArn: m, nextToken, maxResults: 100 }));
      out.push(...(r.executions ?? []));
      nextToken = r.nextToken;
    } while (nextToken);
  }
  return out.sort((a, b) => (a.startDate?.getTime() ?? 0) - (b.startDate?.getTime() ?? 0));
}

// Structural views of the backends' in-process state read at the end (no API calls).
interface ElbView extends Backend {
  tgs: Map<string, { targets: Map<string, { id: string; state: string }> }>;
  listeners: Map<string, { defaultRule: { actions: { TargetGroups?: { TargetGroupArn: string; Weight: number }[] }[] } }>;
  request(lb: string, path: string): Promise<{ status: number }>;
}
interface Ec2View extends Backend {
  instances(): { id: string; tags: Map<string, string>; state: string }[];
}

/** The live target group serves one of the allowed commits on healthy targets; the lock is free. */
async function checkEndState(
  stack: Stack,
  environment: string,
  tgs: [string, string],
  commits: string[],
  problems: string[],
): Promise<void> {
  const say = (p: string) => problems.push(`${environment}: ${p}`);
  const cloud = stack.cloud;
  const elb = cloud.backend<ElbView>("elasticloadbalancing");
  const weights = new Map<string, number>();
  for (const l of elb.listeners.values())
    for (const a of l.defaultRule.actions)
      for (const t of a.TargetGroups ?? []) weights.set(t.TargetGroupArn, (weights.get(t.TargetGroupArn) ?? 0) + t.Weight);
  const live = tgs.filter((t) => (weights.get(t) ?? 0) > 0);
  if (live.length !== 1)
    say(`expected one target group taking all traffic, found weights ${JSON.stringify(Object.fromEntries(weights))}`);
  const ec2 = cloud.backend<Ec2View>("ec2");
  const byId = new Map(ec2.instances().map((i) => [i.id, i]));
  const served = new Set<string>();
  let healthy = 0;
  for (const arn of live) {
    for (const t of elb.tgs.get(arn)?.targets.values() ?? []) {
      if (t.state !== "healthy") continue;
      healthy++;
      served.add(byId.get(t.id)?.tags.get("kiln:commit") ?? "?");
    }
  }
  if (healthy === 0) say("no healthy target takes traffic at the end");
  if (served.size !== 1 || !commits.includes([...served][0]!))
    say(`serving commits ${[...served].map((c) => c.slice(0, 8)).join(", ")}: expected exactly one of the old or pushed commits`);
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(cloud.clientConfig()));
  const lock = await readLock(
    { service: "web", environment },
    { ddb, table: stack.info().tables.LockTable!, clock: cloud.clock },
  );
  if (lock?.holder) say(`lock still held by ${lock.holder}`);
}

/**
 * One PagerDuty trigger per failure of an execution (a redriven execution that fails again pages
 * again, under the same dedup key), none for executions that never failed.
 */
function checkPages(
  stack: Stack,
  executions: { name: string; failures: number; pageable?: number }[],
  deploys: { executionArn?: string; name?: string }[],
  problems: string[],
): void {
  const triggers = stack.cloud.captured.filter(
    (c) => c.name === "pagerduty" && (c.body as { event_action?: string }).event_action === "trigger",
  );
  const byKey = new Map<string, number>();
  for (const t of triggers) {
    const k = String((t.body as { dedup_key?: string }).dedup_key);
    byKey.set(k, (byKey.get(k) ?? 0) + 1);
  }
  for (const e of executions) {
    const arn = deploys.find((d) => d.name === e.name)?.executionArn ?? "";
    const pages = byKey.get(arn) ?? 0;
    const pageable = e.pageable ?? e.failures;
    const said = `${e.name} failed ${e.failures}× (${e.failures - pageable} of them kiln.Superseded, notified not paged) and paged ${pages}×`;
    if (pageable > 0 && pages === 0) problems.push(said);
    if (pages > pageable) problems.push(said);
  }
}

function min(ms: number): string {
  return `${(ms / 60_000).toFixed(1)}m`;
}
