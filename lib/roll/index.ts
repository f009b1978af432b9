/** The roll phase: see steps.ts for the states, fleet.ts/traffic.ts/run.ts for the AWS pieces. */
export * from "./bake.ts";
export * from "./fleet.ts";
export * from "./judge.ts";
export * from "./judge-metrics.ts";
export * from "./run.ts";
export * from "./settings.ts";
export * from "./steps.ts";
export * from "./traffic.ts";
