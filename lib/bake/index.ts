/** The bake phase: one domain function per state of state-machines/deploy.asl.json. */
export { findBuilders, launchBuilder, terminateBuilder, waitBuilderReady } from "./builder.ts";
export { createImage, deleteImage, findImage, pruneImages, selectPrunable, tagImage, waitImage } from "./image.ts";
export { janitor } from "./janitor.ts";
export { amiName, derivePlan, prepare, resolveBaseAmi } from "./plan.ts";
export { imageTest, install } from "./scripts.ts";
export * from "./types.ts";
export { checkDeadline, nextCheckSeconds, waitStart } from "./waits.ts";
