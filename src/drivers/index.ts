export type * from "./types.js";
export { defaultRegistry, createDriver, type DriverRegistry } from "./registry.js";
export { ticker, delay, backoff, newCounters, countRejected } from "./util.js";
