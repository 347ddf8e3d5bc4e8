/** 1-Wire through the kernel's w1 sysfs: the `ds18b20` driver. */
export { createDs18b20, parseW1Slave, DEFAULT_W1_PATH, POWER_ON_MILLIDEGREES, type W1Sample } from "./ds18b20.js";
