/** GPIO: the `gpio-input` and `gpio-counter` drivers, GPIO outputs, and the onoff-backed factory. */
export type * from "./types.js";
export { createGpioInput } from "./input.js";
export { createGpioCounter, counterStatePath } from "./counter.js";
export { openOutputs, type Outputs, type OutputStatus, type OutputsOptions } from "./outputs.js";
export { createOnoffGpioFactory, type OnoffFactoryOptions, type OnoffGpioClass } from "./onoff.js";
export { listGpioChips, pickSocChip, bcmToSysfs, resolveSysfsNumber, SOC_GPIO_LABELS, type GpioChip } from "./chip.js";
export { explainGpioError } from "./errors.js";
