/**
 * `kiln cloud` serves clients kiln's own code never uses: the AWS CLI and boto3 (botocore's own
 * serializers and parsers), pointed at it only through AWS_ENDPOINT_URL and dummy credentials, the
 * way an operator would. The cloud runs as a child process (`node bin/kiln cloud --clock real`).
 *
 * Covered: EC2 describe-vpcs, run-instances + describe-instances; SSM put-parameter/get-parameter
 * and a not-found error; Step Functions create-state-machine, start-execution, describe-execution,
 * get-execution-history and redrive-execution of a failed execution, on a machine whose input
 * chooses between a Wait → Task → Succeed path and a Fail state. The same through boto3.
 * Skipped with a message when neither `aws` nor `python3 -m awscli` works (and boto3's part when
 * boto3 is not importable).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, pythonHas, type Running, run, startProcess } from "../../differential/processes.ts";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** The python3 that `python3` resolves to (a pyenv shim costs half a second per start). */
function realPython(): string {
  const r = spawnSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8", timeout: 30_000 });
  const exe = r.status === 0 ? r.stdout.trim() : "";
  return exe && existsSync(exe) ? exe : "python3";
}

const PYTHON = realPython();

/**
 * The AWS CLI as a command line: the `aws` script installed next to python3 (no shim), the `aws`
 * on PATH (often a pyenv shim), else the awscli module.
 */
function findAwsCli(): string[] | undefined {
  const beside = join(dirname(PYTHON), "aws");
  const candidates = [...(existsSync(beside) ? [[beside]] : []), ["aws"], [PYTHON, "-m", "awscli"]];
  for (const cmd of candidates) {
    const r = spawnSync(cmd[0]!, [...cmd.slice(1), "--version"], { encoding: "utf8", timeout: 30_000 });
    if (r.status === 0 && /aws-cli\//.test(`${r.stdout}${r.stderr}`)) return cmd;
  }
  return undefined;
}

const AWS_CLI = findAwsCli();
const BOTO3 = pythonHas("import boto3");
if (!AWS_CLI)
  console.warn(
    "AWS CLI tests skipped: neither `aws --version` nor `python3 -m awscli --version` works (python3 -m pip install awscli).",
  );
if (!BOTO3) console.warn("boto3 tests skipped: `import boto3` fails in python3 (python3 -m pip install boto3).");

/** One role ARN: the local engine does not assume it, AWS would. */
const ROLE = "arn:aws:iam::123456789012:role/kiln-cli-test";

/**
 * Choice on `$.fail`: true → Fail (Kiln.Asked); otherwise Wait 1 s → read the SSM parameter named
 * by `$.param` through the aws-sdk integration → Succeed. A missing parameter fails the Task, which
 * is what redrive resumes once the parameter exists.
 */
const DEFINITION = {
  Comment: "kiln CLI client test",
  StartAt: "Check",
  States: {
    Check: { Type: "Choice", Choices: [{ Variable: "$.fail", BooleanEquals: true, Next: "Boom" }], Default: "Pause" },
    Pause: { Type: "Wait", Seconds: 1, Next: "Lookup" },
    Lookup: {
      Type: "Task",
      Resource: "arn:aws:states:::aws-sdk:ssm:getParameter",
      Parameters: { "Name.$": "$.param" },
      ResultSelector: { "value.$": "$.Parameter.Value" },
      Next: "Done",
    },
    Done: { Type: "Succeed" },
    Boom: { Type: "Fail", Error: "Kiln.Asked", Cause: "the input asked to fail" },
  },
};

/** Environment of a client process: the cloud's endpoint and its credentials, nothing from the user's AWS config. */
function clientEnv(endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("AWS_")) delete env[k];
  return {
    ...env,
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: "us-east-1",
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_PAGER: "",
    AWS_MAX_ATTEMPTS: "1",
  };
}

// Each client call starts a Python interpreter (about half a second of CPU): the suite's time is
// mostly that, so tests run one at a time with room for a busy machine.
describe.skipIf(!AWS_CLI && !BOTO3)("AWS CLI and boto3 against `kiln cloud`", { timeout: 120_000 }, () => {
  let cloud: Running | undefined;
  let endpoint = "";
  let env: NodeJS.ProcessEnv = {};

  beforeAll(async () => {
    const port = await freePort();
    // tsx compiles the sources on the first start: allow for a slow machine.
    cloud = await startProcess("node", ["bin/kiln", "cloud", "--port", String(port), "--clock", "real"], {
      ready: /listening on http:\/\/\S+/,
      timeoutMs: 90_000,
      cwd: ROOT,
    });
    endpoint = /listening on (http:\/\/\S+)/.exec(cloud.output())![1]!;
    // `kiln cloud` prints the credentials its endpoint requires (generated per start).
    for (let i = 0; i < 100 && !/AWS_SECRET_ACCESS_KEY=\S+/.test(cloud.output()); i++)
      await new Promise((r) => setTimeout(r, 50));
    const printed = /AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)/.exec(cloud.output())!;
    env = clientEnv(endpoint, { accessKeyId: printed[1]!, secretAccessKey: printed[2]! });
  }, 120_000);

  afterAll(async () => {
    await cloud?.stop();
  });

  describe.skipIf(!AWS_CLI)("aws CLI", () => {
    /** Runs `aws <args> --output json` and parses the answer; rejects with stderr on a non-zero exit. */
    async function aws(...args: string[]): Promise<Record<string, unknown>> {
      const cli = AWS_CLI!;
      const r = await run(cli[0]!, [...cli.slice(1), ...args, "--output", "json"], { env, timeoutMs: 60_000 });
      if (r.status !== 0) throw new Error(`aws ${args.join(" ")} exited ${r.status}: ${r.stderr.trim()}`);
      return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
    }

    /** describe-execution until it leaves RUNNING (bounded). */
    async function settled(executionArn: string, deadlineMs = 30_000): Promise<Record<string, unknown>> {
      const end = Date.now() + deadlineMs;
      for (;;) {
        const d = await aws("stepfunctions", "describe-execution", "--execution-arn", executionArn);
        if (d.status !== "RUNNING") return d;
        if (Date.now() > end) throw new Error(`${executionArn} still RUNNING after ${deadlineMs} ms`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }

    let machineArn = "";
    beforeAll(async () => {
      const created = await aws(
        "stepfunctions",
        "create-state-machine",
        "--name",
        "kiln-cli",
        "--definition",
        JSON.stringify(DEFINITION),
        "--role-arn",
        ROLE,
      );
      machineArn = String(created.stateMachineArn);
    }, 60_000);

    it("ec2 describe-vpcs lists the default VPC", async () => {
      const out = await aws("ec2", "describe-vpcs");
      const vpcs = out.Vpcs as { IsDefault: boolean; CidrBlock: string; VpcId: string }[];
      expect(vpcs.find((v) => v.IsDefault)).toMatchObject({ CidrBlock: "172.31.0.0/16", VpcId: expect.stringMatching(/^vpc-/) });
    });

    it("ec2 run-instances, then describe-instances shows the instance with its tags", async () => {
      const images = await aws("ec2", "describe-images", "--owners", "amazon", "--filters", "Name=architecture,Values=x86_64");
      const imageId = (images.Images as { ImageId: string }[])[0]!.ImageId;
      const runArgs = [
        "ec2",
        "run-instances",
        "--image-id",
        imageId,
        "--instance-type",
        "t3.micro",
        "--count",
        "1",
        "--client-token",
        "cli-test-1",
        "--tag-specifications",
        "ResourceType=instance,Tags=[{Key=kiln:role,Value=cli-test}]",
      ];
      const ran = await aws(...runArgs);
      const launched = (ran.Instances as { InstanceId: string; State: { Name: string } }[])[0]!;
      expect(launched.State.Name).toBe("pending");
      const described = await aws("ec2", "describe-instances", "--instance-ids", launched.InstanceId);
      const inst = (
        described.Reservations as {
          Instances: { InstanceId: string; ImageId: string; Tags: { Key: string; Value: string }[] }[];
        }[]
      )[0]!.Instances[0]!;
      expect(inst).toMatchObject({ InstanceId: launched.InstanceId, ImageId: imageId });
      expect(inst.Tags).toContainEqual({ Key: "kiln:role", Value: "cli-test" });
      // ClientToken idempotency: the same token and arguments answer the same instance (other
      // arguments would be IdempotentParameterMismatch, as on AWS).
      const again = await aws(...runArgs);
      expect((again.Instances as { InstanceId: string }[])[0]!.InstanceId).toBe(launched.InstanceId);
    });

    it("ssm put-parameter, get-parameter, and ParameterNotFound as the CLI reports it", async () => {
      const put = await aws("ssm", "put-parameter", "--name", "/kiln/cli/commit", "--value", "abc123", "--type", "String");
      expect(put).toMatchObject({ Version: 1 });
      const got = await aws("ssm", "get-parameter", "--name", "/kiln/cli/commit");
      expect(got.Parameter).toMatchObject({ Name: "/kiln/cli/commit", Value: "abc123", Type: "String", Version: 1 });
      await expect(aws("ssm", "get-parameter", "--name", "/kiln/cli/missing")).rejects.toThrow(
        /\(ParameterNotFound\) when calling the GetParameter operation/,
      );
    });

    it("stepfunctions: an execution through the Wait succeeds, with the history of every state", async () => {
      const arn = machineArn;
      await aws("ssm", "put-parameter", "--name", "/kiln/cli/ready", "--value", "yes", "--type", "String", "--overwrite");
      const started = await aws(
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        arn,
        "--name",
        "through-wait",
        "--input",
        JSON.stringify({ fail: false, param: "/kiln/cli/ready" }),
      );
      expect(String(started.executionArn)).toMatch(/:execution:kiln-cli:through-wait$/);
      const done = await settled(String(started.executionArn));
      expect(done).toMatchObject({ status: "SUCCEEDED", output: JSON.stringify({ value: "yes" }) });
      const history = await aws("stepfunctions", "get-execution-history", "--execution-arn", String(started.executionArn));
      const types = (history.events as { type: string }[]).map((e) => e.type);
      expect(types[0]).toBe("ExecutionStarted");
      expect(types).toEqual(
        expect.arrayContaining([
          "ChoiceStateEntered",
          "WaitStateEntered",
          "WaitStateExited",
          "TaskSucceeded",
          "SucceedStateEntered",
        ]),
      );
      expect(types.at(-1)).toBe("ExecutionSucceeded");
    });

    it("stepfunctions: the input reaches the Fail state; describe-execution carries its error and cause", async () => {
      const arn = machineArn;
      const started = await aws(
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        arn,
        "--name",
        "asked-to-fail",
        "--input",
        JSON.stringify({ fail: true }),
      );
      const done = await settled(String(started.executionArn));
      expect(done).toMatchObject({
        status: "FAILED",
        error: "Kiln.Asked",
        cause: "the input asked to fail",
        redriveStatus: "REDRIVABLE",
      });
      const history = await aws(
        "stepfunctions",
        "get-execution-history",
        "--execution-arn",
        String(started.executionArn),
        "--reverse-order",
        "--max-items",
        "1",
      );
      expect((history.events as { type: string; executionFailedEventDetails: unknown }[])[0]).toMatchObject({
        type: "ExecutionFailed",
        executionFailedEventDetails: { error: "Kiln.Asked", cause: "the input asked to fail" },
      });
    });

    it("stepfunctions: redrive-execution resumes a failed execution at the failed Task and it succeeds", async () => {
      const arn = machineArn;
      const started = await aws(
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        arn,
        "--name",
        "redrive-me",
        "--input",
        JSON.stringify({ fail: false, param: "/kiln/cli/later" }),
      );
      const executionArn = String(started.executionArn);
      const failed = await settled(executionArn);
      expect(failed).toMatchObject({ status: "FAILED", error: "Ssm.ParameterNotFoundException", redriveCount: 0 });
      // Fix the cause, then redrive: the Choice and the Wait are not run again.
      await aws("ssm", "put-parameter", "--name", "/kiln/cli/later", "--value", "now", "--type", "String");
      const redriven = await aws("stepfunctions", "redrive-execution", "--execution-arn", executionArn);
      expect(typeof redriven.redriveDate).toBe("number");
      const done = await settled(executionArn);
      expect(done).toMatchObject({ status: "SUCCEEDED", redriveCount: 1, output: JSON.stringify({ value: "now" }) });
      const history = await aws("stepfunctions", "get-execution-history", "--execution-arn", executionArn);
      const types = (history.events as { type: string }[]).map((e) => e.type);
      const redrive = types.indexOf("ExecutionRedriven");
      expect(types.slice(0, redrive)).toContain("TaskFailed");
      expect(types.slice(redrive + 1)).not.toContain("WaitStateEntered");
      expect(types.slice(redrive + 1)).toEqual(expect.arrayContaining(["TaskStateEntered", "TaskSucceeded"]));
      expect(types.at(-1)).toBe("ExecutionSucceeded");
    });
  });

  describe.skipIf(!BOTO3)("boto3", () => {
    /** A python snippet printing one JSON document: run with the cloud's environment, bounded. */
    async function py(script: string): Promise<Record<string, unknown>> {
      const r = await run(PYTHON, ["-c", script], { env, timeoutMs: 90_000 });
      if (r.status !== 0) throw new Error(`python3 exited ${r.status}: ${r.stderr.trim()}`);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    }

    it("EC2, SSM and Step Functions (start, wait, history, redrive) through boto3", async () => {
      const out = await py(`
import json, time, boto3
from botocore.exceptions import ClientError
ec2, ssm, sfn = boto3.client("ec2"), boto3.client("ssm"), boto3.client("stepfunctions")
res = {}
res["vpcs"] = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]]
image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
inst = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]
res["described"] = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]["InstanceId"] == inst["InstanceId"]
res["launchTimeType"] = type(inst["LaunchTime"]).__name__
ssm.put_parameter(Name="/kiln/boto3/commit", Value="def456", Type="String")
res["parameter"] = ssm.get_parameter(Name="/kiln/boto3/commit")["Parameter"]["Value"]
try:
    ssm.get_parameter(Name="/kiln/boto3/missing")
except ClientError as e:
    res["missing"] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
arn = sfn.create_state_machine(name="kiln-boto3", definition=${JSON.stringify(JSON.stringify(DEFINITION))}, roleArn="${ROLE}")["stateMachineArn"]
def settle(execution):
    deadline = time.time() + 30
    while True:
        d = sfn.describe_execution(executionArn=execution)
        if d["status"] != "RUNNING" or time.time() > deadline:
            return d
        time.sleep(0.25)
failed = sfn.start_execution(stateMachineArn=arn, name="boto3-redrive", input=json.dumps({"fail": False, "param": "/kiln/boto3/later"}))["executionArn"]
first = settle(failed)
res["first"] = [first["status"], first.get("error")]
ssm.put_parameter(Name="/kiln/boto3/later", Value="ok", Type="String")
res["redriveDateType"] = type(sfn.redrive_execution(executionArn=failed)["redriveDate"]).__name__
second = settle(failed)
res["second"] = [second["status"], second.get("redriveCount"), second.get("output")]
res["history"] = [e["type"] for e in sfn.get_execution_history(executionArn=failed)["events"]]
print(json.dumps(res))
`);
      expect(out.vpcs).toHaveLength(1);
      expect(out.described).toBe(true);
      // botocore parsed the wire timestamp into a datetime, as it does for AWS.
      expect(out.launchTimeType).toBe("datetime");
      expect(out.redriveDateType).toBe("datetime");
      expect(out.parameter).toBe("def456");
      expect(out.missing).toEqual(["ParameterNotFound", 400]);
      expect(out.first).toEqual(["FAILED", "Ssm.ParameterNotFoundException"]);
      expect(out.second).toEqual(["SUCCEEDED", 1, JSON.stringify({ value: "ok" })]);
      expect(out.history).toEqual(
        expect.arrayContaining(["WaitStateEntered", "TaskFailed", "ExecutionFailed", "ExecutionRedriven", "ExecutionSucceeded"]),
      );
    });
  });
});

describe.skipIf(!!AWS_CLI || BOTO3)("AWS CLI and boto3 against `kiln cloud` (skipped)", () => {
  it.skip("neither the AWS CLI nor boto3 is available: python3 -m pip install awscli boto3", () => {});
});
