import {
  type Action,
  DescribeListenersCommand,
  DescribeRulesCommand,
  DescribeTargetHealthCommand,
  type ElasticLoadBalancingV2Client,
  ModifyListenerCommand,
  ModifyRuleCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { StepFailedError } from "../errors.ts";

/** Where traffic is split: a listener's default action, or one of its rules. */
export interface TrafficRef {
  listenerArn: string;
  ruleArn?: string;
}

export interface WeightedTargetGroup {
  arn: string;
  weight: number;
}

async function forwardAction(
  elbv2: ElasticLoadBalancingV2Client,
  ref: TrafficRef,
): Promise<{ actions: Action[]; index: number }> {
  let actions: Action[] | undefined;
  if (ref.ruleArn) {
    const r = await elbv2.send(new DescribeRulesCommand({ RuleArns: [ref.ruleArn] }));
    actions = r.Rules?.[0]?.Actions;
  } else {
    const l = await elbv2.send(new DescribeListenersCommand({ ListenerArns: [ref.listenerArn] }));
    actions = l.Listeners?.[0]?.DefaultActions;
  }
  const index = (actions ?? []).findIndex((a) => a.Type === "forward");
  if (!actions || index < 0) {
    throw new StepFailedError(
      `${ref.ruleArn ?? ref.listenerArn} has no forward action: kiln needs a forward action with the service's two target groups`,
    );
  }
  return { actions, index };
}

/** The target groups and weights of the forward action (a plain TargetGroupArn counts as weight 1). */
export async function readWeights(elbv2: ElasticLoadBalancingV2Client, ref: TrafficRef): Promise<WeightedTargetGroup[]> {
  const { actions, index } = await forwardAction(elbv2, ref);
  const a = actions[index]!;
  const tgs = a.ForwardConfig?.TargetGroups;
  if (tgs && tgs.length > 0) return tgs.map((t) => ({ arn: t.TargetGroupArn!, weight: t.Weight ?? 1 }));
  return a.TargetGroupArn ? [{ arn: a.TargetGroupArn, weight: 1 }] : [];
}

/**
 * Sets the forward weights, keeping the action's other settings (stickiness, other actions).
 * Idempotent: setting the weights already in place changes nothing.
 */
export async function setWeights(
  elbv2: ElasticLoadBalancingV2Client,
  ref: TrafficRef,
  weights: WeightedTargetGroup[],
): Promise<{ changed: boolean; before: WeightedTargetGroup[] }> {
  const { actions, index } = await forwardAction(elbv2, ref);
  const a = actions[index]!;
  const before = (
    a.ForwardConfig?.TargetGroups ?? (a.TargetGroupArn ? [{ TargetGroupArn: a.TargetGroupArn, Weight: 1 }] : [])
  ).map((t) => ({ arn: t.TargetGroupArn!, weight: t.Weight ?? 1 }));
  const same =
    before.length === weights.length && weights.every((w) => before.some((b) => b.arn === w.arn && b.weight === w.weight));
  if (same) return { changed: false, before };
  const next: Action = {
    Type: "forward",
    Order: a.Order,
    ForwardConfig: {
      TargetGroups: weights.map((w) => ({ TargetGroupArn: w.arn, Weight: w.weight })),
      TargetGroupStickinessConfig: a.ForwardConfig?.TargetGroupStickinessConfig,
    },
  };
  const updated = actions.map((x, i) => (i === index ? next : x));
  if (ref.ruleArn) await elbv2.send(new ModifyRuleCommand({ RuleArn: ref.ruleArn, Actions: updated }));
  else await elbv2.send(new ModifyListenerCommand({ ListenerArn: ref.listenerArn, DefaultActions: updated }));
  return { changed: true, before };
}

export interface TargetGroupHealth {
  targetGroupArn: string;
  healthy: string[];
  unhealthy: string[];
  other: { id: string; state: string; reason?: string }[];
}

/** Target health of a group, split into healthy / unhealthy / other (initial, draining, unused…). */
export async function targetGroupHealth(elbv2: ElasticLoadBalancingV2Client, targetGroupArn: string): Promise<TargetGroupHealth> {
  const r = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: targetGroupArn }));
  const out: TargetGroupHealth = { targetGroupArn, healthy: [], unhealthy: [], other: [] };
  for (const d of r.TargetHealthDescriptions ?? []) {
    const id = d.Target?.Id ?? "?";
    const state = d.TargetHealth?.State ?? "unknown";
    if (state === "healthy") out.healthy.push(id);
    else if (state === "unhealthy") out.unhealthy.push(id);
    else out.other.push({ id, state, reason: d.TargetHealth?.Reason });
  }
  return out;
}
