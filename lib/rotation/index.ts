export * from "./rotation.ts";
