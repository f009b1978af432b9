/**
 * Retired fleets and the launch-template versions kiln made for its greens, past their time: the
 * classification the janitor acts on and `kiln leaks` lists (one piece of logic for both).
 *
 * A retired group (RetireBlue: `kiln:role=retired`, scaled to 0, `kiln:delete-after`) is deleted
 * once its fast-rollback window has ended — never while the window is open (it is the rollback
 * target), never while it has desired capacity or instances (a rollback or abort is bringing it
 * back, or it still drains). A launch-template version kiln made (`kiln <execution>` description)
 * is deleted when no group uses it, it is neither the template's default nor its latest version,
 * and it is older than the janitor's age limit (a running deployment creates its group right after
 * its version). Every decision is reported, kept or removed, with the reason.
 */
import { type AutoScalingClient, type AutoScalingGroup, DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import {
  DeleteLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  type EC2Client,
  type LaunchTemplate,
} from "@aws-sdk/client-ec2";
import { deleteGroup, KILN_TAGS, tagValue } from "./fleet.ts";

export interface FleetAction {
  resource: string;
  kind: "retired-fleet" | "launch-template-version";
  execution: string;
  why: string;
}

const DELETE_AFTER = "kiln:delete-after";
const RETIRED_BY = "kiln:retired-by";

async function allGroups(autoscaling: AutoScalingClient): Promise<AutoScalingGroup[]> {
  const out: AutoScalingGroup[] = [];
  let NextToken: string | undefined;
  do {
    const r = await autoscaling.send(new DescribeAutoScalingGroupsCommand({ NextToken }));
    out.push(...(r.AutoScalingGroups ?? []));
    NextToken = r.NextToken;
  } while (NextToken);
  return out;
}

/** Whether a retired group may be deleted now, and why (pure: the janitor and `kiln leaks` share it). */
export function retiredVerdict(g: AutoScalingGroup, now: number): { remove: boolean; why: string } {
  const until = Date.parse(tagValue(g.Tags, DELETE_AFTER) ?? "");
  if (!Number.isFinite(until)) return { remove: false, why: `no valid ${DELETE_AFTER} tag` };
  if (now <= until) return { remove: false, why: `inside its fast-rollback window (until ${new Date(until).toISOString()})` };
  if ((g.DesiredCapacity ?? 0) > 0 || (g.Instances ?? []).length > 0)
    return {
      remove: false,
      why: `window ended ${new Date(until).toISOString()} but it has desired ${g.DesiredCapacity ?? 0}, ${(g.Instances ?? []).length} instance(s): being restored or still draining`,
    };
  return { remove: true, why: `fast-rollback window ended ${new Date(until).toISOString()}; desired 0, no instances` };
}

/**
 * Classifies (and unless `dryRun`, deletes) retired groups past their window, then kiln's unused
 * launch-template versions. Idempotent: a group already being deleted is reported as
 * kept ("deletion already in progress"), a version already gone is not seen again; a crash half-way is finished by the next run.
 */
export async function reapFleets(
  input: { now: number; versionMinAgeMs: number; dryRun?: boolean },
  deps: { ec2: EC2Client; autoscaling: AutoScalingClient },
): Promise<{ removed: FleetAction[]; kept: FleetAction[] }> {
  const removed: FleetAction[] = [];
  const kept: FleetAction[] = [];
  const groups = await allGroups(deps.autoscaling);
  const deleted = new Set<string>();
  for (const g of groups) {
    if (!tagValue(g.Tags, KILN_TAGS.service) || tagValue(g.Tags, KILN_TAGS.role) !== "retired") continue;
    const name = g.AutoScalingGroupName!;
    const execution = tagValue(g.Tags, RETIRED_BY) ?? tagValue(g.Tags, KILN_TAGS.execution) ?? "?";
    if (g.Status === "Delete in progress") {
      deleted.add(name);
      kept.push({ resource: name, kind: "retired-fleet", execution, why: "deletion already in progress" });
      continue;
    }
    const v = retiredVerdict(g, input.now);
    (v.remove ? removed : kept).push({ resource: name, kind: "retired-fleet", execution, why: v.why });
    if (!v.remove) continue;
    deleted.add(name);
    if (!input.dryRun) await deleteGroup(deps.autoscaling, name);
  }

  // Versions in use: by every group that is not being deleted now ($Latest/$Default resolved below).
  // Versions the groups deleted now used are freed: their deployments ended long ago (the fleet was
  // retired), so no group is about to be created with them and the age guard does not apply.
  const uses = new Map<string, Set<string>>();
  const freed = new Set<string>();
  for (const g of groups) {
    const lt = g.LaunchTemplate ?? g.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
    if (!lt?.LaunchTemplateId) continue;
    if (deleted.has(g.AutoScalingGroupName!)) {
      if (lt.Version && /^\d+$/.test(lt.Version)) freed.add(`${lt.LaunchTemplateId}:${lt.Version}`);
      continue;
    }
    const set = uses.get(lt.LaunchTemplateId) ?? new Set<string>();
    set.add(lt.Version ?? "$Default");
    uses.set(lt.LaunchTemplateId, set);
  }
  const templates: LaunchTemplate[] = [];
  let NextToken: string | undefined;
  do {
    const r = await deps.ec2.send(
      new DescribeLaunchTemplatesCommand({ Filters: [{ Name: "tag-key", Values: [KILN_TAGS.service] }], NextToken }),
    );
    templates.push(...(r.LaunchTemplates ?? []));
    NextToken = r.NextToken;
  } while (NextToken);
  for (const lt of templates) {
    const id = lt.LaunchTemplateId!;
    const used = uses.get(id) ?? new Set<string>();
    const doomed: number[] = [];
    let vToken: string | undefined;
    do {
      const r = await deps.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, NextToken: vToken }));
      for (const v of r.LaunchTemplateVersions ?? []) {
        if (!v.VersionDescription?.startsWith("kiln ") || !v.VersionNumber) continue; // not one kiln made
        const n = v.VersionNumber;
        const action = (why: string): FleetAction => ({
          resource: `${id}:${n}`,
          kind: "launch-template-version",
          execution: v.VersionDescription!.slice(5),
          why,
        });
        const isDefault = v.DefaultVersion || n === lt.DefaultVersionNumber;
        const isLatest = n === lt.LatestVersionNumber;
        const age = input.now - (v.CreateTime?.getTime() ?? input.now);
        if (used.has(String(n)) || (isDefault && used.has("$Default")) || (isLatest && used.has("$Latest")))
          kept.push(action("used by a group"));
        else if (isDefault) kept.push(action("the template's default version"));
        else if (isLatest) kept.push(action("the template's latest version"));
        else if (freed.has(`${id}:${n}`)) {
          removed.push(action("its retired group is deleted now and no other group uses it"));
          doomed.push(n);
        } else if (age <= input.versionMinAgeMs)
          kept.push(action(`unused but only ${(age / 3_600_000).toFixed(1)} h old (a deployment may be creating its group)`));
        else {
          removed.push(action("used by no group"));
          doomed.push(n);
        }
      }
      vToken = r.NextToken;
    } while (vToken);
    if (doomed.length > 0 && !input.dryRun)
      await deps.ec2.send(new DeleteLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Versions: doomed.map(String) }));
  }
  return { removed, kept };
}
