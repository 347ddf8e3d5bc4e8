export type * from "./types.js";
export { defaultRegistry, createDriver, type DriverRegistry } from "./registry.js";
export { ticker, delay, backoff, newCounters, countRejected } from "./util.js";
export {
  openOutputs,
  createOnoffGpioFactory,
  type Outputs,
  type OutputStatus,
  type OutputsOptions,
  type GpioFactory,
  type GpioPin,
} from "./gpio/index.js";
