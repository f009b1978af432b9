import {
  DeleteSnapshotCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  type Image,
  type Snapshot,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { DescribeExecutionCommand } from "@aws-sdk/client-sfn";
import { InvalidInputError } from "../errors.ts";
import { reapFleets, type FleetAction } from "../roll/retired.ts";
import { deleteImage, snapshotsOf } from "./image.ts";
import { type BakeDeps, Roles, Tags } from "./types.ts";
import { awsCode, reconciler, tagsOf } from "./util.ts";

export interface JanitorInput {
  /** Leftovers of executions that ended more than this many hours ago are removed (config `janitor.afterHours`). */
  afterHours: number;
  /** Report what would be removed without removing it. */
  dryRun?: boolean;
}

export interface JanitorAction {
  resource: string;
  kind: "builder" | "image" | "snapshot" | FleetAction["kind"];
  execution: string;
  why: string;
}

export interface JanitorReport {
  removed: JanitorAction[];
  kept: JanitorAction[];
}

type ExecutionEnd = { running: true } | { running: false; endedAt: number | undefined };

/**
 * Janitor: removes what bake executions left behind once they ended long enough ago — builders
 * (kept after a failure for inspection), AMIs never tagged complete, and kiln snapshots whose AMI
 * is gone. Only resources tagged by kiln are considered; the execution's own status decides
 * (DescribeExecution: RUNNING is never touched, an ended one after `afterHours`; an execution
 * Step Functions no longer knows counts as ended at the resource's creation). Then retired fleets
 * past their fast-rollback window and kiln's unused launch-template versions (lib/roll/retired.ts).
 */
export const janitor = reconciler(
  "Janitor",
  async (input: JanitorInput, deps: Pick<BakeDeps, "ec2" | "sfn" | "clock" | "autoscaling">): Promise<JanitorReport> => {
    if (!deps.sfn) throw new InvalidInputError("the janitor needs a Step Functions client");
    const sfn = deps.sfn;
    const now = deps.clock.now();
    const limitMs = input.afterHours * 3_600_000;
    const ends = new Map<string, ExecutionEnd>();
    const report: JanitorReport = { removed: [], kept: [] };

    const executionEnd = async (arn: string): Promise<ExecutionEnd> => {
      const hit = ends.get(arn);
      if (hit) return hit;
      let end: ExecutionEnd;
      try {
        const r = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
        end =
          r.status === "RUNNING" || r.status === "PENDING_REDRIVE"
            ? { running: true }
            : { running: false, endedAt: r.stopDate?.getTime() };
      } catch (err) {
        if (awsCode(err) !== "ExecutionDoesNotExist") throw err;
        end = { running: false, endedAt: undefined };
      }
      ends.set(arn, end);
      return end;
    };

    /** Whether a resource of `execution` created at `createdMs` is old enough to remove, and why. */
    const verdict = async (
      tags: Record<string, string>,
      createdMs: number | undefined,
    ): Promise<{ remove: boolean; why: string }> => {
      const arn = tags[Tags.executionArn];
      if (!arn) return { remove: false, why: "no kiln:execution-arn tag" };
      const end = await executionEnd(arn);
      if (end.running) return { remove: false, why: "execution is running" };
      const endedAt = end.endedAt ?? createdMs;
      if (endedAt === undefined) return { remove: false, why: "end time unknown" };
      const ageH = (now - endedAt) / 3_600_000;
      return now - endedAt > limitMs
        ? { remove: true, why: `execution ended ${ageH.toFixed(1)} h ago (> ${input.afterHours} h)` }
        : { remove: false, why: `execution ended ${ageH.toFixed(1)} h ago (≤ ${input.afterHours} h)` };
    };

    const record = (remove: boolean, a: JanitorAction) => (remove ? report.removed : report.kept).push(a);

    // 1. Builders.
    const builders: { id: string; tags: Record<string, string>; launched?: number }[] = [];
    let NextToken: string | undefined;
    do {
      const r = await deps.ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: `tag:${Tags.role}`, Values: [Roles.builder] },
            { Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped"] },
          ],
          NextToken,
        }),
      );
      for (const res of r.Reservations ?? [])
        for (const i of res.Instances ?? [])
          if (i.InstanceId) builders.push({ id: i.InstanceId, tags: tagsOf(i.Tags), launched: i.LaunchTime?.getTime() });
      NextToken = r.NextToken;
    } while (NextToken);
    const doomed: string[] = [];
    for (const b of builders) {
      const v = await verdict(b.tags, b.launched);
      record(v.remove, { resource: b.id, kind: "builder", execution: b.tags[Tags.execution] ?? "?", why: v.why });
      if (v.remove) doomed.push(b.id);
    }
    if (doomed.length && !input.dryRun) await deps.ec2.send(new TerminateInstancesCommand({ InstanceIds: doomed }));

    // 2. AMIs never tagged complete (failed or abandoned bakes).
    const images: Image[] = [];
    NextToken = undefined;
    do {
      const r: { Images?: Image[]; NextToken?: string } = await deps.ec2.send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: [{ Name: `tag:${Tags.role}`, Values: [Roles.image] }],
          NextToken,
        }),
      );
      images.push(...(r.Images ?? []));
      NextToken = r.NextToken;
    } while (NextToken);
    const liveSnapshots = new Set<string>();
    for (const img of images) {
      const tags = tagsOf(img.Tags);
      if (tags[Tags.complete] === "true") {
        for (const s of snapshotsOf(img)) liveSnapshots.add(s);
        continue;
      }
      const v = await verdict(tags, img.CreationDate ? Date.parse(img.CreationDate) : undefined);
      record(v.remove, {
        resource: img.ImageId!,
        kind: "image",
        execution: tags[Tags.execution] ?? "?",
        why: `never completed; ${v.why}`,
      });
      if (!v.remove) for (const s of snapshotsOf(img)) liveSnapshots.add(s);
      else if (!input.dryRun) await deleteImage(deps, img);
    }

    // 3. kiln snapshots no registered AMI uses any more.
    const snapshots: Snapshot[] = [];
    NextToken = undefined;
    do {
      const r: { Snapshots?: Snapshot[]; NextToken?: string } = await deps.ec2.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ["self"],
          Filters: [{ Name: `tag:${Tags.role}`, Values: [Roles.snapshot] }],
          NextToken,
        }),
      );
      snapshots.push(...(r.Snapshots ?? []));
      NextToken = r.NextToken;
    } while (NextToken);
    const removedImages = new Set(report.removed.filter((a) => a.kind === "image").map((a) => a.resource));
    for (const s of snapshots) {
      if (!s.SnapshotId || liveSnapshots.has(s.SnapshotId)) continue;
      const tags = tagsOf(s.Tags);
      const owner = /for (ami-[0-9a-f]+)/.exec(s.Description ?? "")?.[1] ?? tags[Tags.image];
      if (owner && removedImages.has(owner)) continue; // already deleted with its image
      if (owner && images.some((i) => i.ImageId === owner)) continue;
      const v = await verdict(tags, s.StartTime?.getTime());
      record(v.remove, {
        resource: s.SnapshotId,
        kind: "snapshot",
        execution: tags[Tags.execution] ?? "?",
        why: `no AMI uses it; ${v.why}`,
      });
      if (v.remove && !input.dryRun) {
        try {
          await deps.ec2.send(new DeleteSnapshotCommand({ SnapshotId: s.SnapshotId }));
        } catch (err) {
          if (awsCode(err) !== "InvalidSnapshot.NotFound" && awsCode(err) !== "InvalidSnapshot.InUse") throw err;
        }
      }
    }

    // 4. Retired fleets past their fast-rollback window, and launch-template versions no group uses.
    if (deps.autoscaling) {
      const fleets = await reapFleets(
        { now, versionMinAgeMs: limitMs, ...(input.dryRun ? { dryRun: true } : {}) },
        { ec2: deps.ec2, autoscaling: deps.autoscaling },
      );
      report.removed.push(...fleets.removed);
      report.kept.push(...fleets.kept);
    }
    return report;
  },
);
