export * from "./event.ts";
export * from "./http.ts";
export * from "./pager.ts";
