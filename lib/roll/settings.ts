import type { ServiceConfig } from "../config/index.ts";
import type { RollSettings } from "./steps.ts";

/** The roll phase's view of a service's configuration. */
export function rollSettings(cfg: ServiceConfig): RollSettings {
  return {
    listener:
      "arn" in cfg.listener
        ? { arn: cfg.listener.arn }
        : { loadBalancerName: cfg.listener.loadBalancer, port: cfg.listener.port },
    ...(cfg.ruleArn ? { ruleArn: cfg.ruleArn } : {}),
    targetGroups: [cfg.targetGroups[0], cfg.targetGroups[1]],
    minHealthyPercent: cfg.minHealthyPercent,
    canary: cfg.canary.map((s) => ({ weight: s.weight, bakeSeconds: s.bakeSeconds })),
    alarms: cfg.alarms,
    judge: cfg.judge,
    scripts: { smokeTest: cfg.scripts.smokeTest, serviceIn: cfg.scripts.serviceIn, serviceOut: cfg.scripts.serviceOut },
    rollbackWindowSeconds: cfg.fastRollbackMinutes * 60,
    approval: { required: cfg.approval.required, timeoutSeconds: cfg.approval.timeoutMinutes * 60 },
    timeouts: { greenReadySeconds: cfg.timeouts.greenReadySeconds, greenHealthySeconds: cfg.timeouts.greenHealthySeconds },
  };
}
