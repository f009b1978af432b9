export * from "./routing.ts";
export * from "./secrets.ts";
export * from "./webhook.ts";
