/** Service configuration: `kiln.config.yaml`, its schema, and the identifier validators. */
export * from "./identifiers.ts";
export * from "./load.ts";
export * from "./schema.ts";
