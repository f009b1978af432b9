export { startDepsFromEnv } from "./env.ts";
export * from "./lock.ts";
export type { AbortSpec, Claim, HolderStatus, StartSpec } from "./rules.ts";
export { compensatedBy, isFailedStatus } from "./rules.ts";
export { type DocumentSender, LockStore, VersionedStore } from "./store.ts";
export * from "./types.ts";
