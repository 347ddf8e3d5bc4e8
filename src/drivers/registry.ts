import type { DriverName, SensorConfig, SensorOf } from "../config/schema.js";
import { GatewayError } from "../errors.js";
import { createGpioCounter, createGpioInput } from "./gpio/index.js";
import { createDs18b20 } from "./onewire/index.js";
import { createModbusRtu, createNmea, createPms5003, createSerialLines } from "./serial/index.js";
import { createSimulated } from "./simulated.js";
import type { Driver, DriverContext, DriverFactory } from "./types.js";

/** Driver name → factory. Passed to the daemon explicitly; tests may pass their own. */
export type DriverRegistry = { [D in DriverName]?: DriverFactory<SensorOf<D>> };

/** The drivers this build ships. */
export function defaultRegistry(): DriverRegistry {
  return {
    simulated: createSimulated,
    "gpio-input": createGpioInput,
    "gpio-counter": createGpioCounter,
    ds18b20: createDs18b20,
    "serial-lines": createSerialLines,
    pms5003: createPms5003,
    nmea: createNmea,
    "modbus-rtu": createModbusRtu,
  };
}

/** Builds the driver for `sensor`, or throws EGW_DRIVER naming the sensor when none is registered. */
export function createDriver(registry: DriverRegistry, sensor: SensorConfig, ctx: DriverContext): Driver {
  const factory = registry[sensor.driver] as DriverFactory<SensorConfig> | undefined;
  if (!factory) {
    throw new GatewayError("EGW_DRIVER", `sensor ${sensor.id}: driver ${sensor.driver} is not available in this build`);
  }
  return factory(sensor, ctx);
}
