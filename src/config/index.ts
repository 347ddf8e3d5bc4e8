export * from "./schema.js";
export * from "./units.js";
export * from "./load.js";
export * from "./remote.js";
