import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2";
import {
  AddTagsToResourceCommand,
  CancelCommandCommand,
  DeleteParameterCommand,
  DeleteParametersCommand,
  DescribeInstanceInformationCommand,
  DescribeParametersCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  ListTagsForResourceCommand,
  PutParameterCommand,
  SendCommandCommand,
  type SendCommandCommandInput,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Clock, ScaledClock } from "../../../lib/clock.ts";
import { Cloud, type CloudEvent } from "../../../local/cloud/cloud.ts";
import type { Ec2Api, InstanceStateName, SimInstance } from "../../../local/cloud/contracts.ts";
import { registerEc2 } from "../../../local/cloud/services/ec2/index.ts";
import { PUBLIC_AMI_PARAMETERS, registerSsm, type SsmBackend } from "../../../local/cloud/services/ssm/index.ts";
import { sandboxAvailable } from "../../../local/cloud/services/ssm/sandbox.ts";

/**
 * A minimal EC2 stand-in: instances with sandboxes, state changes announced on the bus, and base
 * images. Enough for SSM, which only reads instances and listens to "instance-state".
 */
class FakeEc2 implements Ec2Api {
  private readonly byId = new Map<string, SimInstance>();
  private seq = 0;
  readonly images = [
    { imageId: "ami-0000000000000a001", name: "al2023-ami-1-x86_64", arch: "x86_64", publishedAt: "2025-12-01T00:00:00.000Z" },
    { imageId: "ami-0000000000000b001", name: "al2023-ami-1-arm64", arch: "arm64", publishedAt: "2025-12-01T00:00:00.000Z" },
  ];
  constructor(
    private readonly cloud: Cloud,
    private readonly dir: string,
  ) {}
  instance(id: string) {
    return this.byId.get(id);
  }
  instances() {
    return [...this.byId.values()];
  }
  baseImages() {
    return this.images;
  }
  launch(req: { tags: Record<string, string>; count: number }): SimInstance[] {
    const out: SimInstance[] = [];
    for (let n = 0; n < req.count; n++) {
      const id = `i-${(++this.seq).toString(16).padStart(17, "0")}`;
      const inst: SimInstance = {
        id,
        state: "pending",
        imageId: "ami-0000000000000a001",
        instanceType: "t3.micro",
        privateIp: `10.0.1.${this.seq}`,
        subnetId: "subnet-1",
        az: "us-east-1a",
        tags: new Map(Object.entries(req.tags)),
        launchTime: this.cloud.clock.date(),
        rootDir: path.join(this.dir, id),
      };
      this.byId.set(id, inst);
      out.push(inst);
    }
    return out;
  }
  setState(id: string, to: InstanceStateName): void {
    const inst = this.byId.get(id)!;
    const from = inst.state;
    inst.state = to;
    this.cloud.bus.emit("instance-state", { instance: inst, from, to });
  }
  terminate(ids: string[]): void {
    for (const id of ids) this.setState(id, "terminated");
  }
  resolveLaunchTemplate(): never {
    throw new Error("not simulated");
  }
  subnets() {
    return [];
  }
  snapshot() {
    return { instances: this.byId.size };
  }
}

/** Waits on the cloud clock (virtual: instant) until `fn` returns a value, or fails at the deadline. */
async function until<T>(clock: Clock, fn: () => Promise<T | undefined>, deadlineMs = 3_600_000, everyMs = 5000): Promise<T> {
  const end = clock.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (clock.now() >= end) throw new Error(`condition not met within ${deadlineMs} ms of cloud time`);
    await clock.sleep(everyMs);
  }
}

const TERMINAL = ["Success", "Failed", "TimedOut", "Cancelled"];

/** POSIX single-quoting: the only safe way to put an arbitrary string into a script. */
function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

describe("simulated SSM", () => {
  let cloud: Cloud;
  let ec2: FakeEc2;
  let ssmBackend: SsmBackend;
  let ssm: SSMClient;
  let dir: string;
  let events: CloudEvent[];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kiln-ssm-"));
    cloud = new Cloud({ seed: 7, settings: { "ssm.agentOnlineJitter": 0 } });
    ec2 = new FakeEc2(cloud, dir);
    cloud.register("ec2", ec2);
    ssmBackend = registerSsm(cloud);
    await cloud.start({ port: false });
    ssm = new SSMClient(cloud.clientConfig());
    events = [];
    cloud.bus.on("event", (e: CloudEvent) => events.push(e));
  });

  afterEach(async () => {
    await cloud.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Launches `n` instances, boots them and waits until their agents are online. */
  async function onlineInstances(n: number, tags: Record<string, string> = {}): Promise<SimInstance[]> {
    const list = ec2.launch({ tags, count: n });
    for (const i of list) {
      await mkdir(path.join(i.rootDir, "usr/local/bin"), { recursive: true });
      ec2.setState(i.id, "running");
    }
    await cloud.clock.sleep(60_000);
    for (const i of list) expect(ssmBackend.isOnline(i.id)).toBe(true);
    return list;
  }

  async function send(input: Partial<SendCommandInput>): Promise<string> {
    const out = await ssm.send(
      new SendCommandCommand({ DocumentName: "AWS-RunShellScript", ...input } as SendCommandCommandInput),
    );
    return out.Command!.CommandId!;
  }
  type SendCommandInput = SendCommandCommandInput;

  async function finished(commandId: string, instanceId: string): Promise<GetCommandInvocationCommandOutput> {
    return until(cloud.clock, async () => {
      const r = await ssm
        .send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }))
        .catch((e: Error) => {
          if (e.name === "InvocationDoesNotExist") return undefined;
          throw e;
        });
      return r && TERMINAL.includes(r.Status!) ? r : undefined;
    });
  }

  async function commandDone(commandId: string) {
    return until(cloud.clock, async () => {
      const c = (await ssm.send(new ListCommandsCommand({ CommandId: commandId }))).Commands?.[0];
      return c && TERMINAL.includes(c.Status!) ? c : undefined;
    });
  }

  describe("agents", () => {
    it("registers an agent ssm.agentOnlineMs after the instance runs and drops it when it terminates", async () => {
      const [inst] = ec2.launch({ tags: { Name: "web" }, count: 1 });
      ec2.setState(inst!.id, "running");
      await cloud.clock.sleep(59_000);
      // Checked in process, at once: an SDK round trip is real I/O, and the virtual clock may reach
      // the agent's registration at 60 s before the request arrives.
      expect(ssmBackend.isOnline(inst!.id)).toBe(false);
      await cloud.clock.sleep(1_000);
      const info = (await ssm.send(new DescribeInstanceInformationCommand({}))).InstanceInformationList!;
      expect(info).toHaveLength(1);
      expect(info[0]).toMatchObject({
        InstanceId: inst!.id,
        PingStatus: "Online",
        PlatformType: "Linux",
        ResourceType: "EC2Instance",
      });
      expect(info[0]!.LastPingDateTime).toBeInstanceOf(Date);
      expect(info[0]!.AgentVersion).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      ec2.setState(inst!.id, "terminated");
      expect((await ssm.send(new DescribeInstanceInformationCommand({}))).InstanceInformationList).toEqual([]);
    });

    it("reports ConnectionLost while an ssm-agent fault is active, then Online again", async () => {
      const [a, b] = await onlineInstances(2, { role: "green" });
      const id = cloud.faults.add({ kind: "ssm-agent", instanceId: a!.id });
      const list = async (filter: string) =>
        (
          await ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: "PingStatus", Values: [filter] }] }))
        ).InstanceInformationList!.map((x) => x.InstanceId);
      expect(await list("ConnectionLost")).toEqual([a!.id]);
      expect(await list("Online")).toEqual([b!.id]);
      expect(ssmBackend.isOnline(a!.id)).toBe(false);
      cloud.faults.remove(id);
      expect(ssmBackend.isOnline(a!.id)).toBe(true);
    });

    it("selects an agent fault by tag", async () => {
      const [blue] = await onlineInstances(1, { "kiln:role": "blue" });
      const [green] = await onlineInstances(1, { "kiln:role": "green" });
      cloud.faults.add({ kind: "ssm-agent", "tag:kiln:role": "green" });
      expect(ssmBackend.isOnline(blue!.id)).toBe(true);
      expect(ssmBackend.isOnline(green!.id)).toBe(false);
    });

    it("filters by tag and instance id and paginates", async () => {
      const web = await onlineInstances(7, { app: "web" });
      await onlineInstances(2, { app: "db" });
      const seen: string[] = [];
      let token: string | undefined;
      do {
        const r = await ssm.send(
          new DescribeInstanceInformationCommand({
            Filters: [{ Key: "tag:app", Values: ["web"] }],
            MaxResults: 5,
            NextToken: token,
          }),
        );
        expect(r.InstanceInformationList!.length).toBeLessThanOrEqual(5);
        seen.push(...r.InstanceInformationList!.map((x) => x.InstanceId!));
        token = r.NextToken;
      } while (token);
      expect(seen).toEqual(web.map((i) => i.id));
      const legacy = await ssm.send(
        new DescribeInstanceInformationCommand({
          InstanceInformationFilterList: [{ key: "InstanceIds", valueSet: [web[2]!.id] }],
        }),
      );
      expect(legacy.InstanceInformationList!.map((x) => x.InstanceId)).toEqual([web[2]!.id]);
      await expect(
        ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: ["not-an-id"] }] })),
      ).rejects.toMatchObject({ name: "InvalidInstanceId" });
      await expect(
        ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: "Bogus", Values: ["x"] }] })),
      ).rejects.toMatchObject({ name: "InvalidFilterKey" });
    });
  });

  describe("SendCommand validation", () => {
    it.each([
      ["an instance whose agent has not registered", "pending-agent"],
      ["a terminated instance", "terminated"],
      ["a malformed id", "malformed"],
      ["an unknown id", "unknown"],
    ])("rejects the whole call for %s with InvalidInstanceId", async (_label, kind) => {
      const [ok] = await onlineInstances(1);
      let bad: string;
      if (kind === "pending-agent") {
        const [i] = ec2.launch({ tags: {}, count: 1 });
        ec2.setState(i!.id, "running");
        bad = i!.id;
      } else if (kind === "terminated") {
        const [i] = await onlineInstances(1);
        ec2.setState(i!.id, "terminated");
        bad = i!.id;
      } else bad = kind === "malformed" ? "i-xyz" : "i-0123456789abcdef0";
      const err = await send({ InstanceIds: [ok!.id, bad], Parameters: { commands: ["true"] } }).catch(
        (e: Error & { message: string }) => e,
      );
      expect(err).toMatchObject({ name: "InvalidInstanceId" });
      expect((err as Error).message).toContain(bad);
      expect((await ssm.send(new ListCommandsCommand({}))).Commands).toEqual([]);
    });

    it.each([
      [{ DocumentName: "AWS-RunPowerShellScript", Parameters: { commands: ["x"] } }, "InvalidDocument"],
      [{ Parameters: {} }, "InvalidParameters"],
      [{ Parameters: { commands: [] } }, "InvalidParameters"],
      [{ Parameters: { commands: ["true"], executionTimeout: ["0"] } }, "InvalidParameters"],
      [{ Parameters: { commands: ["true"], executionTimeout: ["172801"] } }, "InvalidParameters"],
      [{ Parameters: { commands: ["true"], bogus: ["1"] } }, "InvalidParameters"],
      [{ Parameters: { commands: ["true"] }, MaxConcurrency: "0" }, "ValidationException"],
      [{ Parameters: { commands: ["true"] }, MaxErrors: "-1" }, "ValidationException"],
      [{ Parameters: { commands: ["true"] }, TimeoutSeconds: 10 }, "ValidationException"],
    ])("rejects %j with %s", async (input, code) => {
      const [i] = await onlineInstances(1);
      await expect(send({ InstanceIds: [i!.id], ...(input as object) })).rejects.toMatchObject({ name: code });
    });

    it("rejects duplicate instance ids", async () => {
      const [i] = await onlineInstances(1);
      await expect(send({ InstanceIds: [i!.id, i!.id], Parameters: { commands: ["true"] } })).rejects.toMatchObject({
        name: "DuplicateInstanceId",
      });
    });
  });

  describe("running commands with bash", () => {
    it("runs the script in the instance sandbox and reports exit code, output and timestamps", async () => {
      const [inst] = await onlineInstances(1);
      await writeFile(path.join(inst!.rootDir, "usr/local/bin/kiln-hello"), "#!/bin/sh\necho hello from $1\n");
      await chmod(path.join(inst!.rootDir, "usr/local/bin/kiln-hello"), 0o755);
      await mkdir(path.join(inst!.rootDir, "opt/app"), { recursive: true });
      const id = await send({
        InstanceIds: [inst!.id],
        Comment: "bake step",
        Parameters: {
          commands: [
            "kiln-hello sandbox",
            'echo "id=$KILN_INSTANCE_ID ssm=$AWS_SSM_INSTANCE_ID"',
            "pwd",
            "echo oops >&2",
            "exit 3",
          ],
          workingDirectory: ["/opt/app"],
        },
      });
      // Right after SendCommand the invocation does not exist yet (the official waiter retries on it).
      await expect(ssm.send(new GetCommandInvocationCommand({ CommandId: id, InstanceId: inst!.id }))).rejects.toMatchObject({
        name: "InvocationDoesNotExist",
      });
      const r = await finished(id, inst!.id);
      expect(r).toMatchObject({
        Status: "Failed",
        StatusDetails: "Failed",
        ResponseCode: 3,
        Comment: "bake step",
        PluginName: "aws:runShellScript",
        StandardErrorContent: "oops\n",
      });
      expect(r.StandardOutputContent).toBe(
        `hello from sandbox\nid=${inst!.id} ssm=${inst!.id}\n${path.join(inst!.rootDir, "opt/app")}\n`,
      );
      expect(typeof r.ExecutionStartDateTime).toBe("string");
      expect(r.ExecutionElapsedTime).toMatch(/^PT[\d.]+S$/);
      expect(Date.parse(r.ExecutionEndDateTime!)).toBeGreaterThanOrEqual(Date.parse(r.ExecutionStartDateTime!));
      const cmd = await commandDone(id);
      expect(cmd).toMatchObject({ Status: "Failed", TargetCount: 1, CompletedCount: 1, ErrorCount: 1, DeliveryTimedOutCount: 0 });
    });

    it("reports Success with exit code 0 and truncates stdout to 24,000 and stderr to 8,000 characters", async () => {
      const [inst] = await onlineInstances(1);
      const id = await send({
        InstanceIds: [inst!.id],
        Parameters: { commands: ["head -c 30000 /dev/zero | tr '\\0' a", "head -c 9000 /dev/zero | tr '\\0' b >&2"] },
      });
      const r = await finished(id, inst!.id);
      expect(r).toMatchObject({ Status: "Success", ResponseCode: 0 });
      expect(r.StandardOutputContent).toHaveLength(24_000);
      expect(r.StandardErrorContent).toHaveLength(8_000);
    });

    it("never executes a hostile string passed to the script as an environment variable", async () => {
      const [inst] = await onlineInstances(1);
      const hostile = `$(touch pwned-1)\`touch pwned-2\`'; touch pwned-3; echo '"; touch pwned-4 #`;
      const id = await send({
        InstanceIds: [inst!.id],
        Parameters: {
          commands: [`export KILN_COMMIT=${shellQuote(hostile)}`, 'printf %s "$KILN_COMMIT"', "ls -A"],
          workingDirectory: ["/"],
        },
      });
      const r = await finished(id, inst!.id);
      expect(r.Status).toBe("Success");
      expect(r.StandardOutputContent!.startsWith(hostile)).toBe(true);
      expect(r.StandardOutputContent!.slice(hostile.length)).not.toMatch(/pwned/);
      for (const n of [1, 2, 3, 4]) expect(existsSync(path.join(inst!.rootDir, `pwned-${n}`))).toBe(false);
    });

    it("starts scripts at the sandbox root with a clean environment", async () => {
      const [inst] = await onlineInstances(1);
      process.env.KILN_TEST_HOST_SECRET = "host-only";
      try {
        const r = await finished(
          await send({
            InstanceIds: [inst!.id],
            Parameters: {
              // Not a template literal: bash parameter expansions, not templates
              commands: ["pwd", 'echo "root=$KILN_ROOT secret=${KILN_TEST_HOST_SECRET:-unset}"', 'echo "${PATH%%:*}"'],
            },
          }),
          inst!.id,
        );
        expect(r.StandardOutputContent).toBe(
          `${inst!.rootDir}\nroot=${inst!.rootDir} secret=unset\n${path.join(inst!.rootDir, "usr/local/bin")}\n`,
        );
      } finally {
        delete process.env.KILN_TEST_HOST_SECRET;
      }
    });

    it.runIf(sandboxAvailable().ok)(
      "a script writes only inside its own instance (needs unprivileged user namespaces): not the host, not another instance, and it cannot remount",
      async () => {
        const [inst, other] = await onlineInstances(2);
        const host = path.join(dir, "host-file");
        const theirs = path.join(other!.rootDir, "planted");
        const r = await finished(
          await send({
            InstanceIds: [inst!.id],
            Parameters: {
              commands: [
                "echo mine > opt-file && cat opt-file",
                `echo x > ${shellQuote(host)} || echo host-refused`,
                `echo x > ${shellQuote(theirs)} || echo other-refused`,
                "mount -o remount,rw / 2>/dev/null || echo remount-refused",
                "echo y > /dev/null && echo devnull-ok",
              ],
            },
          }),
          inst!.id,
        );
        expect(r.Status, r.StandardErrorContent).toBe("Success");
        expect(r.StandardOutputContent).toBe("mine\nhost-refused\nother-refused\nremount-refused\ndevnull-ok\n");
        expect(r.StandardErrorContent).toMatch(/Read-only file system/);
        expect(existsSync(path.join(inst!.rootDir, "opt-file"))).toBe(true);
        expect(existsSync(host)).toBe(false);
        expect(existsSync(theirs)).toBe(false);
      },
    );

    it("ssm.sandbox off runs the script unconfined (the setting is what turns the sandbox on)", async () => {
      await cloud.stop();
      cloud = new Cloud({ seed: 7, settings: { "ssm.agentOnlineJitter": 0, "ssm.sandbox": "off" } });
      ec2 = new FakeEc2(cloud, dir);
      cloud.register("ec2", ec2);
      ssmBackend = registerSsm(cloud);
      await cloud.start({ port: false });
      ssm = new SSMClient(cloud.clientConfig());
      const [inst] = await onlineInstances(1);
      const host = path.join(dir, "host-file-unconfined");
      const r = await finished(
        await send({ InstanceIds: [inst!.id], Parameters: { commands: [`echo x > ${shellQuote(host)}`] } }),
        inst!.id,
      );
      expect(r.Status).toBe("Success");
      expect(existsSync(host)).toBe(true);
    });

    it("refuses a misspelt ssm.sandbox setting when the cloud is built", () => {
      expect(() => registerSsm(new Cloud({ settings: { "ssm.sandbox": "requred" } }))).toThrow(
        /ssm.sandbox must be one of auto, required, off, not "requred"/,
      );
    });

    it("fails an invocation whose working directory does not exist", async () => {
      const [inst] = await onlineInstances(1);
      const r = await finished(
        await send({ InstanceIds: [inst!.id], Parameters: { commands: ["true"], workingDirectory: ["/nope"] } }),
        inst!.id,
      );
      expect(r).toMatchObject({ Status: "Failed", ResponseCode: 1 });
      expect(r.StandardErrorContent).toContain("/nope");
    });

    it("targets instances by tag (values ORed, targets ANDed)", async () => {
      const web = await onlineInstances(2, { app: "web", env: "prod" });
      await onlineInstances(1, { app: "web", env: "dev" });
      const id = await send({
        Targets: [
          { Key: "tag:app", Values: ["web", "api"] },
          { Key: "tag:env", Values: ["prod"] },
        ],
        Parameters: { commands: ["echo $KILN_INSTANCE_ID"] },
      });
      const cmd = await commandDone(id);
      expect(cmd).toMatchObject({ Status: "Success", TargetCount: 2, CompletedCount: 2 });
      const invs = (await ssm.send(new ListCommandInvocationsCommand({ CommandId: id, Details: true }))).CommandInvocations!;
      expect(invs.map((i) => i.InstanceId).sort()).toEqual(web.map((i) => i.id).sort());
      for (const inv of invs)
        expect(inv.CommandPlugins![0]).toMatchObject({
          Name: "aws:runShellScript",
          Status: "Success",
          ResponseCode: 0,
          Output: `${inv.InstanceId}\n`,
        });
    });
  });

  describe("timeouts, faults and cancellation", () => {
    it.each([
      [true, "rejects"],
      [false, "accepts"],
    ])("with ssm.rejectOfflineAgents=%s SendCommand %s a ConnectionLost node", async (reject) => {
      cloud.setSettings({ "ssm.rejectOfflineAgents": reject });
      const [inst] = await onlineInstances(1);
      cloud.faults.add({ kind: "ssm-agent", instanceId: inst!.id });
      const sent = send({ InstanceIds: [inst!.id], TimeoutSeconds: 30, Parameters: { commands: ["true"] } });
      if (reject) await expect(sent).rejects.toMatchObject({ name: "InvalidInstanceId" });
      else expect(await finished(await sent, inst!.id)).toMatchObject({ Status: "TimedOut", StatusDetails: "DeliveryTimedOut" });
    });

    it("ends TimedOut/ExecutionTimedOut after executionTimeout of cloud time under a command timeout fault", async () => {
      const [inst] = await onlineInstances(1);
      cloud.faults.add({ kind: "command", match: "install\\.sh", mode: "timeout" });
      const t0 = cloud.clock.now();
      const id = await send({ InstanceIds: [inst!.id], Parameters: { commands: ["./install.sh"], executionTimeout: ["600"] } });
      const r = await finished(id, inst!.id);
      expect(r).toMatchObject({ Status: "TimedOut", StatusDetails: "ExecutionTimedOut", ResponseCode: 137 });
      const elapsed = Date.parse(r.ExecutionEndDateTime!) - Date.parse(r.ExecutionStartDateTime!);
      expect(elapsed).toBe(600_000);
      expect(Date.parse(r.ExecutionStartDateTime!) - t0).toBeLessThanOrEqual(3_000);
      expect(await commandDone(id)).toMatchObject({ Status: "TimedOut", StatusDetails: "ExecutionTimedOut", ErrorCount: 1 });
    });

    it.each([
      [{ mode: "fail" }, 1],
      [{ mode: "fail", exitCode: 42 }, 42],
    ])("fails the invocation under a command fault %j", async (fault, code) => {
      const [inst] = await onlineInstances(1);
      cloud.faults.add({ kind: "command", match: "smoke", ...fault });
      const r = await finished(await send({ InstanceIds: [inst!.id], Parameters: { commands: ["kiln smoke-test"] } }), inst!.id);
      expect(r).toMatchObject({ Status: "Failed", StatusDetails: "Failed", ResponseCode: code });
    });

    it("kills a real script at executionTimeout under a real-time-like clock safeguard", async () => {
      cloud.setSettings({ "ssm.maxWallMs": 200 });
      const [inst] = await onlineInstances(1);
      const r = await finished(
        await send({ InstanceIds: [inst!.id], Parameters: { commands: ["echo started", "sleep 30", "echo never"] } }),
        inst!.id,
      );
      expect(r).toMatchObject({
        Status: "TimedOut",
        StatusDetails: "ExecutionTimedOut",
        ResponseCode: 137,
        StandardOutputContent: "started\n",
      });
    });

    it("times out delivery to an offline agent after TimeoutSeconds (Delayed → DeliveryTimedOut)", async () => {
      const [inst] = await onlineInstances(1);
      const t0 = cloud.clock.now();
      const id = await send({ InstanceIds: [inst!.id], TimeoutSeconds: 120, Parameters: { commands: ["true"] } });
      cloud.faults.add({ kind: "ssm-agent", instanceId: inst!.id }); // the agent drops before delivery
      await cloud.clock.sleep(10_000);
      expect((await ssm.send(new GetCommandInvocationCommand({ CommandId: id, InstanceId: inst!.id }))).Status).toBe("Delayed");
      const r = await finished(id, inst!.id);
      expect(r).toMatchObject({
        Status: "TimedOut",
        StatusDetails: "DeliveryTimedOut",
        ResponseCode: -1,
        ExecutionStartDateTime: "",
      });
      expect(cloud.clock.now() - t0).toBeLessThanOrEqual(121_000);
      expect(await commandDone(id)).toMatchObject({
        Status: "TimedOut",
        StatusDetails: "DeliveryTimedOut",
        DeliveryTimedOutCount: 1,
        ErrorCount: 0,
      });
    });

    it("delivers once an offline agent comes back before the delivery timeout", async () => {
      const [inst] = await onlineInstances(1);
      const id = await send({ InstanceIds: [inst!.id], Parameters: { commands: ["echo late"] } });
      const f = cloud.faults.add({ kind: "ssm-agent", instanceId: inst!.id });
      await cloud.clock.sleep(45_000);
      cloud.faults.remove(f);
      expect(await finished(id, inst!.id)).toMatchObject({ Status: "Success", StandardOutputContent: "late\n" });
    });

    it("marks an invocation Undeliverable when its instance terminates before delivery", async () => {
      const [inst] = await onlineInstances(1);
      const id = await send({ InstanceIds: [inst!.id], Parameters: { commands: ["true"] } });
      cloud.faults.add({ kind: "ssm-agent", instanceId: inst!.id });
      await cloud.clock.sleep(5_000);
      ec2.setState(inst!.id, "terminated");
      expect(await finished(id, inst!.id)).toMatchObject({ Status: "Failed", StatusDetails: "Undeliverable" });
    });

    it("cancels a command: Cancelling then Cancelled", async () => {
      const [inst] = await onlineInstances(1);
      cloud.faults.add({ kind: "command", match: "long", mode: "slow", delayMs: 300_000 });
      const id = await send({ InstanceIds: [inst!.id], Parameters: { commands: ["long-job"] } });
      await cloud.clock.sleep(5_000);
      expect((await ssm.send(new GetCommandInvocationCommand({ CommandId: id, InstanceId: inst!.id }))).Status).toBe(
        "InProgress",
      );
      await ssm.send(new CancelCommandCommand({ CommandId: id }));
      expect((await ssm.send(new GetCommandInvocationCommand({ CommandId: id, InstanceId: inst!.id }))).Status).toBe(
        "Cancelling",
      );
      expect((await ssm.send(new ListCommandsCommand({ CommandId: id }))).Commands![0]!.Status).toBe("Cancelling");
      expect(await finished(id, inst!.id)).toMatchObject({ Status: "Cancelled", StatusDetails: "Cancelled" });
      expect(await commandDone(id)).toMatchObject({ Status: "Cancelled" });
      await expect(
        ssm.send(new CancelCommandCommand({ CommandId: "00000000-0000-4000-8000-000000000000" })),
      ).rejects.toMatchObject({ name: "InvalidCommandId" });
    });
  });

  describe("rate control", () => {
    it.each([
      ["2", 6, 2],
      ["50%", 6, 3],
      ["1", 3, 1],
    ])("honours MaxConcurrency %s over %i instances (at most %i in flight)", async (maxConcurrency, n, limit) => {
      const list = await onlineInstances(n);
      cloud.faults.add({ kind: "command", match: "work", mode: "slow", delayMs: 30_000 });
      const id = await send({
        InstanceIds: list.map((i) => i.id),
        MaxConcurrency: maxConcurrency,
        Parameters: { commands: ["true # work"] },
      });
      const live = new Set<string>();
      let peak = 0;
      cloud.bus.on("event", (e: CloudEvent) => {
        if (e.detailType !== "EC2 Command Invocation Status-change Notification" || e.detail["command-id"] !== id) return;
        const iid = String(e.detail["instance-id"]);
        if (e.detail.status === "InProgress") live.add(iid);
        else live.delete(iid);
        peak = Math.max(peak, live.size);
      });
      expect(await commandDone(id)).toMatchObject({ Status: "Success", TargetCount: n, CompletedCount: n });
      expect(peak).toBe(limit);
    });

    it("stops dispatching once MaxErrors is exceeded (remaining invocations Terminated)", async () => {
      const list = await onlineInstances(4);
      cloud.faults.add({ kind: "command", match: "deploy", mode: "fail" });
      const id = await send({
        InstanceIds: list.map((i) => i.id),
        MaxConcurrency: "1",
        MaxErrors: "1",
        Parameters: { commands: ["deploy"] },
      });
      const cmd = await commandDone(id);
      expect(cmd).toMatchObject({ Status: "Failed", StatusDetails: "Failed", ErrorCount: 2, CompletedCount: 4 });
      const invs = (await ssm.send(new ListCommandInvocationsCommand({ CommandId: id }))).CommandInvocations!;
      expect(invs.map((i) => [i.Status, i.StatusDetails])).toEqual([
        ["Failed", "Failed"],
        ["Failed", "Failed"],
        ["Cancelled", "Terminated"],
        ["Cancelled", "Terminated"],
      ]);
    });
  });

  describe("listing and events", () => {
    it("lists commands and invocations with filters, details and pagination", async () => {
      const list = await onlineInstances(3);
      const ids: string[] = [];
      for (let n = 0; n < 3; n++) {
        ids.push(await send({ InstanceIds: list.map((i) => i.id), Parameters: { commands: [`echo run-${n}`] } }));
        await cloud.clock.sleep(1000);
      }
      for (const id of ids) await commandDone(id);
      const page1 = await ssm.send(new ListCommandsCommand({ MaxResults: 2 }));
      expect(page1.Commands!.map((c) => c.CommandId)).toEqual([ids[2], ids[1]]);
      const page2 = await ssm.send(new ListCommandsCommand({ MaxResults: 2, NextToken: page1.NextToken }));
      expect(page2.Commands!.map((c) => c.CommandId)).toEqual([ids[0]]);
      expect(page2.NextToken).toBeUndefined();
      expect((await ssm.send(new ListCommandsCommand({ Filters: [{ key: "Status", value: "Success" }] }))).Commands).toHaveLength(
        3,
      );
      expect(
        (await ssm.send(new ListCommandsCommand({ Filters: [{ key: "ExecutionStage", value: "Executing" }] }))).Commands,
      ).toHaveLength(0);
      expect((await ssm.send(new ListCommandsCommand({ InstanceId: list[0]!.id }))).Commands).toHaveLength(3);
      const all = await ssm.send(new ListCommandInvocationsCommand({ InstanceId: list[1]!.id, Details: true, MaxResults: 50 }));
      expect(all.CommandInvocations!.map((i) => i.CommandPlugins![0]!.Output)).toEqual(["run-2\n", "run-1\n", "run-0\n"]);
      const noDetails = await ssm.send(new ListCommandInvocationsCommand({ CommandId: ids[0] }));
      expect(noDetails.CommandInvocations!.every((i) => i.CommandPlugins!.length === 0)).toBe(true);
      expect(noDetails.CommandInvocations![0]!.RequestedDateTime).toBeInstanceOf(Date);
      await expect(ssm.send(new ListCommandsCommand({ NextToken: "bogus" }))).rejects.toMatchObject({ name: "InvalidNextToken" });
    });

    it("emits command and invocation status-change events", async () => {
      const [inst] = await onlineInstances(1);
      const id = await send({ InstanceIds: [inst!.id], Parameters: { commands: ["true"] } });
      await commandDone(id);
      const inv = events
        .filter((e) => e.detailType === "EC2 Command Invocation Status-change Notification")
        .map((e) => e.detail.status);
      const cmd = events.filter((e) => e.detailType === "EC2 Command Status-change Notification").map((e) => e.detail.status);
      expect(inv).toEqual(["Pending", "InProgress", "Success"]);
      expect(cmd).toEqual(["Pending", "InProgress", "Success"]);
      const last = events.at(-1)!;
      expect(last.source).toBe("aws.ssm");
      expect(last.resources).toEqual([`arn:aws:ec2:us-east-1:123456789012:instance/${inst!.id}`]);
      expect(last.detail).toMatchObject({ "command-id": id, "document-name": "AWS-RunShellScript" });
    });

    it("shows agents, commands and masked parameters in the world snapshot", async () => {
      const [inst] = await onlineInstances(1);
      await ssm.send(new PutParameterCommand({ Name: "/kiln/secret", Value: "hunter2", Type: "SecureString" }));
      await commandDone(await send({ InstanceIds: [inst!.id], Parameters: { commands: ["echo hi"] } }));
      const world = cloud.world().ssm as {
        agents: unknown[];
        commands: { invocations: { stdout: string }[] }[];
        parameters: { name: string; value: string }[];
      };
      expect(world.agents).toEqual([expect.objectContaining({ instanceId: inst!.id, pingStatus: "Online" })]);
      expect(world.commands[0]!.invocations[0]!.stdout).toBe("hi\n");
      expect(world.parameters.find((p) => p.name === "/kiln/secret")!.value).toBe("****");
    });
  });

  describe("Parameter Store", () => {
    it("puts, overwrites and reads parameters with versions", async () => {
      expect(await ssm.send(new PutParameterCommand({ Name: "/kiln/web/commit", Value: "abc", Type: "String" }))).toMatchObject({
        Version: 1,
        Tier: "Standard",
      });
      await expect(
        ssm.send(new PutParameterCommand({ Name: "/kiln/web/commit", Value: "def", Type: "String" })),
      ).rejects.toMatchObject({ name: "ParameterAlreadyExists" });
      expect(await ssm.send(new PutParameterCommand({ Name: "/kiln/web/commit", Value: "def", Overwrite: true }))).toMatchObject({
        Version: 2,
      });
      const p = (await ssm.send(new GetParameterCommand({ Name: "/kiln/web/commit" }))).Parameter!;
      expect(p).toMatchObject({
        Name: "/kiln/web/commit",
        Type: "String",
        Value: "def",
        Version: 2,
        DataType: "text",
        ARN: "arn:aws:ssm:us-east-1:123456789012:parameter/kiln/web/commit",
      });
      expect(p.LastModifiedDate).toBeInstanceOf(Date);
      expect((await ssm.send(new GetParameterCommand({ Name: "/kiln/web/commit:1" }))).Parameter).toMatchObject({
        Value: "abc",
        Version: 1,
        Selector: ":1",
      });
      expect((await ssm.send(new GetParameterCommand({ Name: p.ARN! }))).Parameter!.Value).toBe("def");
      const hist = await ssm.send(new GetParameterHistoryCommand({ Name: "/kiln/web/commit" }));
      expect(hist.Parameters!.map((h) => [h.Version, h.Value])).toEqual([
        [1, "abc"],
        [2, "def"],
      ]);
      await expect(ssm.send(new GetParameterCommand({ Name: "/kiln/web/commit:9" }))).rejects.toMatchObject({
        name: "ParameterVersionNotFound",
      });
    });

    it.each([
      ["/nope", "ParameterNotFound"],
      ["has space/x", "ValidationException"],
    ])("GetParameter %s → %s", async (name, code) => {
      await expect(ssm.send(new GetParameterCommand({ Name: name }))).rejects.toMatchObject({ name: code });
    });

    it.each([
      ["a/b", "ValidationException"],
      ["/aws/mine", "ValidationException"],
      ["ssm-thing", "ValidationException"],
      ["/bad*char", "ValidationException"],
      [`/${Array.from({ length: 16 }, (_, i) => `l${i}`).join("/")}`, "HierarchyLevelLimitExceededException"],
    ])("PutParameter rejects name %s with %s", async (name, code) => {
      await expect(ssm.send(new PutParameterCommand({ Name: name, Value: "v", Type: "String" }))).rejects.toMatchObject({
        name: code,
      });
    });

    it("rejects a create without Type and values too large for the Standard tier", async () => {
      await expect(ssm.send(new PutParameterCommand({ Name: "/x", Value: "v" }))).rejects.toMatchObject({
        name: "ValidationException",
      });
      await expect(
        ssm.send(new PutParameterCommand({ Name: "/x", Value: "v".repeat(4097), Type: "String" })),
      ).rejects.toMatchObject({ name: "ValidationException" });
      expect(
        await ssm.send(new PutParameterCommand({ Name: "/x", Value: "v".repeat(4097), Type: "String", Tier: "Advanced" })),
      ).toMatchObject({ Tier: "Advanced" });
      await expect(
        ssm.send(new PutParameterCommand({ Name: "/y", Value: "abc", Type: "String", AllowedPattern: "^\\d+$" })),
      ).rejects.toMatchObject({ name: "ParameterPatternMismatchException" });
    });

    it("returns SecureString values encrypted unless WithDecryption", async () => {
      await ssm.send(new PutParameterCommand({ Name: "/kiln/db/password", Value: "s3cret", Type: "SecureString" }));
      const enc = (await ssm.send(new GetParameterCommand({ Name: "/kiln/db/password" }))).Parameter!;
      expect(enc.Type).toBe("SecureString");
      expect(enc.Value).not.toContain("s3cret");
      expect(enc.Value).toMatch(/^AQICAH[A-Za-z0-9+/=]+$/);
      expect(
        (await ssm.send(new GetParameterCommand({ Name: "/kiln/db/password", WithDecryption: true }))).Parameter!.Value,
      ).toBe("s3cret");
      const meta = (await ssm.send(new DescribeParametersCommand({}))).Parameters!.find((m) => m.Name === "/kiln/db/password")!;
      expect(meta.KeyId).toBe("alias/aws/ssm");
    });

    it("GetParameters splits found and invalid names", async () => {
      await ssm.send(new PutParameterCommand({ Name: "/a", Value: "1", Type: "String" }));
      await ssm.send(new PutParameterCommand({ Name: "b", Value: "x,y", Type: "StringList" }));
      const r = await ssm.send(new GetParametersCommand({ Names: ["/a", "b", "/missing"] }));
      expect(r.Parameters!.map((p) => [p.Name, p.Value, p.Type])).toEqual([
        ["/a", "1", "String"],
        ["b", "x,y", "StringList"],
      ]);
      expect(r.InvalidParameters).toEqual(["/missing"]);
    });

    it("GetParametersByPath: one level or recursive, filters, pages of at most 10", async () => {
      for (let n = 0; n < 12; n++)
        await ssm.send(
          new PutParameterCommand({ Name: `/svc/web/p${String(n).padStart(2, "0")}`, Value: `${n}`, Type: "String" }),
        );
      await ssm.send(new PutParameterCommand({ Name: "/svc/web/deep/q", Value: "q", Type: "SecureString" }));
      await ssm.send(new PutParameterCommand({ Name: "/svc/other", Value: "o", Type: "String" }));
      const first = await ssm.send(new GetParametersByPathCommand({ Path: "/svc/web" }));
      expect(first.Parameters).toHaveLength(10);
      const second = await ssm.send(new GetParametersByPathCommand({ Path: "/svc/web", NextToken: first.NextToken }));
      expect(second.Parameters!.map((p) => p.Name)).toEqual(["/svc/web/p10", "/svc/web/p11"]);
      expect(second.NextToken).toBeUndefined();
      const names: string[] = [];
      let token: string | undefined;
      do {
        const r = await ssm.send(
          new GetParametersByPathCommand({ Path: "/svc", Recursive: true, MaxResults: 4, NextToken: token }),
        );
        names.push(...r.Parameters!.map((p) => p.Name!));
        token = r.NextToken;
      } while (token);
      expect(names).toHaveLength(14);
      const secure = await ssm.send(
        new GetParametersByPathCommand({
          Path: "/svc",
          Recursive: true,
          ParameterFilters: [{ Key: "Type", Values: ["SecureString"] }],
          WithDecryption: true,
        }),
      );
      expect(secure.Parameters!.map((p) => [p.Name, p.Value])).toEqual([["/svc/web/deep/q", "q"]]);
      await expect(ssm.send(new GetParametersByPathCommand({ Path: "/svc", MaxResults: 11 }))).rejects.toMatchObject({
        name: "ValidationException",
      });
      await expect(
        ssm.send(new GetParametersByPathCommand({ Path: "/svc", ParameterFilters: [{ Key: "Name", Values: ["x"] }] })),
      ).rejects.toMatchObject({ name: "InvalidFilterKey" });
    });

    it("deletes parameters and describes the rest", async () => {
      for (const n of ["/d/1", "/d/2", "/d/3"])
        await ssm.send(new PutParameterCommand({ Name: n, Value: "v", Type: "String", Tags: [{ Key: "team", Value: "sre" }] }));
      await ssm.send(new DeleteParameterCommand({ Name: "/d/1" }));
      await expect(ssm.send(new DeleteParameterCommand({ Name: "/d/1" }))).rejects.toMatchObject({ name: "ParameterNotFound" });
      const r = await ssm.send(new DeleteParametersCommand({ Names: ["/d/2", "/d/9"] }));
      expect(r).toMatchObject({ DeletedParameters: ["/d/2"], InvalidParameters: ["/d/9"] });
      const described = await ssm.send(
        new DescribeParametersCommand({ ParameterFilters: [{ Key: "Path", Option: "Recursive", Values: ["/d"] }] }),
      );
      expect(described.Parameters!.map((p) => p.Name)).toEqual(["/d/3"]);
      const byTag = await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "tag:team", Values: ["sre"] }] }));
      expect(byTag.Parameters!.map((p) => p.Name)).toEqual(["/d/3"]);
      await ssm.send(
        new AddTagsToResourceCommand({ ResourceType: "Parameter", ResourceId: "/d/3", Tags: [{ Key: "owner", Value: "me" }] }),
      );
      expect((await ssm.send(new ListTagsForResourceCommand({ ResourceType: "Parameter", ResourceId: "/d/3" }))).TagList).toEqual(
        [
          { Key: "team", Value: "sre" },
          { Key: "owner", Value: "me" },
        ],
      );
      expect(events.filter((e) => e.detailType === "Parameter Store Change").map((e) => e.detail.operation)).toEqual([
        "Create",
        "Create",
        "Create",
        "Delete",
        "Delete",
      ]);
    });

    it("follows EC2's newest base AMI in the public AL2023 parameters", async () => {
      const name = PUBLIC_AMI_PARAMETERS.x86_64!;
      const before = (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter!;
      expect(before).toMatchObject({
        Value: "ami-0000000000000a001",
        Type: "String",
        Version: 1,
        ARN: `arn:aws:ssm:us-east-1::parameter${name}`,
      });
      cloud.bus.emit("base-image-published", { imageId: "ami-0000000000000a002", name: "al2023-ami-2-x86_64", arch: "x86_64" });
      const after = (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter!;
      expect(after).toMatchObject({ Value: "ami-0000000000000a002", Version: 2 });
      expect((await ssm.send(new GetParameterCommand({ Name: PUBLIC_AMI_PARAMETERS.arm64! }))).Parameter!.Value).toBe(
        "ami-0000000000000b001",
      );
      const byPath = await ssm.send(new GetParametersByPathCommand({ Path: "/aws/service/ami-amazon-linux-latest" }));
      expect(byPath.Parameters!.map((p) => p.Name).sort()).toEqual([PUBLIC_AMI_PARAMETERS.arm64, PUBLIC_AMI_PARAMETERS.x86_64]);
      await expect(ssm.send(new DeleteParameterCommand({ Name: name }))).rejects.toMatchObject({ name: "ParameterNotFound" });
    });
  });
});

describe("simulated SSM over HTTP", () => {
  it("serves Parameter Store through the cloud's HTTP endpoint", async () => {
    const cloud = new Cloud();
    registerSsm(cloud);
    await cloud.start({ port: 0 });
    try {
      const ssm = new SSMClient(cloud.clientConfig({ http: true }));
      await ssm.send(new PutParameterCommand({ Name: "/http/x", Value: "1", Type: "String" }));
      expect((await ssm.send(new GetParameterCommand({ Name: "/http/x" }))).Parameter!.Value).toBe("1");
      await expect(ssm.send(new GetParameterCommand({ Name: "/http/y" }))).rejects.toMatchObject({ name: "ParameterNotFound" });
    } finally {
      await cloud.stop();
    }
  });
});

describe("simulated SSM with simulated EC2", () => {
  let cloud: Cloud;

  afterEach(async () => cloud?.stop());

  it("runs the sample app's CLI on a launched instance and refuses a hostile commit passed by environment", async () => {
    cloud = new Cloud({ seed: 3, settings: { "app.realServers": false } });
    const ec2Backend = registerEc2(cloud);
    registerSsm(cloud);
    await cloud.start({ port: false });
    const ec2 = new EC2Client(cloud.clientConfig());
    const ssm = new SSMClient(cloud.clientConfig());
    const amiId = (await ssm.send(new GetParameterCommand({ Name: PUBLIC_AMI_PARAMETERS.x86_64! }))).Parameter!.Value!;
    expect(
      ec2Backend
        .baseImages()
        .filter((b) => b.arch === "x86_64")
        .at(-1)!.imageId,
    ).toBe(amiId);
    const run = await ec2.send(new RunInstancesCommand({ ImageId: amiId, InstanceType: "t3.micro", MinCount: 1, MaxCount: 1 }));
    const instanceId = run.Instances![0]!.InstanceId!;
    await until(cloud.clock, async () => {
      const info = await ssm.send(
        new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: [instanceId] }] }),
      );
      return info.InstanceInformationList?.[0]?.PingStatus === "Online" ? true : undefined;
    });
    const runScript = async (commands: string[]) => {
      const out = await ssm.send(
        new SendCommandCommand({ DocumentName: "AWS-RunShellScript", InstanceIds: [instanceId], Parameters: { commands } }),
      );
      const commandId = out.Command!.CommandId!;
      return until(cloud.clock, async () => {
        const r = await ssm
          .send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }))
          .catch(() => undefined);
        return r && TERMINAL.includes(r.Status!) ? r : undefined;
      });
    };
    const hostile = "abc1234; touch /tmp/kiln-pwned-$$ $(id)";
    const refused = await runScript([`export KILN_COMMIT=${shellQuote(hostile)}`, "sample-app install"]);
    expect(refused).toMatchObject({ Status: "Failed", ResponseCode: 2 });
    expect(refused.StandardErrorContent).toContain("refusing KILN_COMMIT");
    const ok = await runScript([
      "export KILN_COMMIT=abc1234",
      "export KILN_SERVICE=web",
      "sample-app install",
      "sample-app status",
    ]);
    expect(ok).toMatchObject({ Status: "Success", ResponseCode: 0 });
    expect(ok.StandardOutputContent).toContain("installed web at abc1234");

    // A newer base AMI moves the public parameter.
    const [published] = ec2Backend.publishBaseImage("x86_64");
    const now = (await ssm.send(new GetParameterCommand({ Name: PUBLIC_AMI_PARAMETERS.x86_64! }))).Parameter!;
    expect(now).toMatchObject({ Value: published!.imageId, Version: 2 });
  });
});

describe("simulated SSM on a scaled clock", () => {
  it("kills a real script when executionTimeout elapses on the cloud clock", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-ssm-scaled-"));
    const cloud = new Cloud({ clock: new ScaledClock(1000), settings: { "ssm.agentOnlineJitter": 0 } });
    const ec2 = new FakeEc2(cloud, dir);
    cloud.register("ec2", ec2);
    registerSsm(cloud);
    await cloud.start({ port: false });
    try {
      const ssm = new SSMClient(cloud.clientConfig());
      const [inst] = ec2.launch({ tags: {}, count: 1 });
      await mkdir(inst!.rootDir, { recursive: true });
      ec2.setState(inst!.id, "running");
      await until(cloud.clock, async () => (ssmOnline(cloud, inst!.id) ? true : undefined), 600_000, 5_000);
      const out = await ssm.send(
        new SendCommandCommand({
          DocumentName: "AWS-RunShellScript",
          InstanceIds: [inst!.id],
          Parameters: { commands: ["echo started", "sleep 5", "echo never"], executionTimeout: ["100"] },
        }),
      );
      const r = await until(
        cloud.clock,
        async () => {
          const x = await ssm
            .send(new GetCommandInvocationCommand({ CommandId: out.Command!.CommandId!, InstanceId: inst!.id }))
            .catch(() => undefined);
          return x && TERMINAL.includes(x.Status!) ? x : undefined;
        },
        3_600_000,
        5_000,
      );
      expect(r).toMatchObject({
        Status: "TimedOut",
        StatusDetails: "ExecutionTimedOut",
        ResponseCode: 137,
        StandardOutputContent: "started\n",
      });
    } finally {
      await cloud.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function ssmOnline(cloud: Cloud, id: string): boolean {
  return cloud.backend<SsmBackend>("ssm").isOnline(id);
}
