export * from "./schema.js";
export * from "./units.js";
export * from "./load.js";
