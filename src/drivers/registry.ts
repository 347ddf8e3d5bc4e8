/**
 * Every driver this build ships, in one table: its options schema (which the config composes
 * into the sensor union), its factory, and what a shared serial port must agree on. Adding a
 * driver = one folder (code + schema) + one line here.
 *
 * Implementations are imported on first use (`lazy`): a device without serial sensors never
 * loads serialport or modbus-serial, and `edge-gateway check` loads schemas only.
 */
import type * as z from "zod";
import { GatewayError } from "../errors.js";
import { gpioCounterSensor, gpioInputSensor } from "./gpio/schema.js";
import { ds18b20Sensor } from "./onewire/schema.js";
import { lineSettings8N1, modbusLineSettings, modbusRtuSensor, nmeaSensor, pms5003Sensor, serialLinesSensor, type LineSettings } from "./serial/schema.js";
import { simulatedSensor } from "./simulated.js";
import type { Driver, DriverContext, DriverFactory, Reading } from "./types.js";

/** One driver: its options, how to build it, and (serial drivers) the line settings of its port. */
export interface DriverEntry<S extends z.ZodType> {
  schema: S;
  create: DriverFactory<z.output<S>>;
  serialLine?: (sensor: z.output<S>) => LineSettings;
}

const entry = <S extends z.ZodType>(e: DriverEntry<S>): DriverEntry<S> => e;

/**
 * A factory whose implementation module is imported when the first driver of its kind starts.
 * The driver it returns behaves as the loaded one (start, poll, close safe twice).
 */
export function lazy<C>(load: () => Promise<DriverFactory<C>>): DriverFactory<C> {
  return (config, ctx) => {
    let inner: Driver | undefined;
    let closed = false;
    const close = async () => {
      closed = true;
      await inner?.close();
    };
    return {
      // Once loaded, `next` is the loaded driver's own: no generator between it and the runner
      // (a `yield*` costs microtask hops per reading; issue 13).
      start(signal: AbortSignal): AsyncIterableIterator<Reading> {
        let it: AsyncIterator<Reading> | undefined;
        const open = async (): Promise<IteratorResult<Reading>> => {
          const factory = await load();
          if (closed || signal.aborted) return { done: true, value: undefined };
          inner = factory(config, ctx);
          it = inner.start(signal)[Symbol.asyncIterator]();
          return it.next();
        };
        const iter: AsyncIterableIterator<Reading> = {
          [Symbol.asyncIterator]: () => iter,
          next: () => (it ? it.next() : open()),
          return: async () => {
            await it?.return?.();
            return { done: true, value: undefined };
          },
        };
        return iter;
      },
      poll: async () => inner?.poll?.(),
      close,
      [Symbol.asyncDispose]: close,
    };
  };
}

export const DRIVERS = {
  simulated: entry({ schema: simulatedSensor, create: lazy(async () => (await import("./simulated.js")).createSimulated) }),
  "serial-lines": entry({ schema: serialLinesSensor, create: lazy(async () => (await import("./serial/lines.js")).createSerialLines), serialLine: lineSettings8N1 }),
  pms5003: entry({ schema: pms5003Sensor, create: lazy(async () => (await import("./serial/pms5003.js")).createPms5003), serialLine: lineSettings8N1 }),
  nmea: entry({ schema: nmeaSensor, create: lazy(async () => (await import("./serial/nmea.js")).createNmea), serialLine: lineSettings8N1 }),
  "modbus-rtu": entry({ schema: modbusRtuSensor, create: lazy(async () => (await import("./serial/modbus.js")).createModbusRtu), serialLine: modbusLineSettings }),
  "gpio-input": entry({ schema: gpioInputSensor, create: lazy(async () => (await import("./gpio/input.js")).createGpioInput) }),
  "gpio-counter": entry({ schema: gpioCounterSensor, create: lazy(async () => (await import("./gpio/counter.js")).createGpioCounter) }),
  ds18b20: entry({ schema: ds18b20Sensor, create: lazy(async () => (await import("./onewire/ds18b20.js")).createDs18b20) }),
};

export type DriverName = keyof typeof DRIVERS;
export const DRIVER_NAMES = Object.keys(DRIVERS) as DriverName[];

/** The validated config of a sensor of driver `D`. */
export type SensorOf<D extends DriverName> = z.output<(typeof DRIVERS)[D]["schema"]>;
/** Any validated sensor entry. */
export type SensorConfig = { [D in DriverName]: SensorOf<D> }[DriverName];

/** Driver name → factory. Passed to the daemon explicitly; tests may pass their own. */
export type DriverRegistry = { [D in DriverName]?: DriverFactory<SensorOf<D>> };

/** The drivers this build ships. */
export function defaultRegistry(): DriverRegistry {
  return Object.fromEntries(Object.entries(DRIVERS).map(([name, e]) => [name, e.create])) as DriverRegistry;
}

/** Builds the driver for `sensor`, or throws EGW_DRIVER naming the sensor when none is registered. */
export function createDriver(registry: DriverRegistry, sensor: SensorConfig, ctx: DriverContext): Driver {
  const factory = registry[sensor.driver] as DriverFactory<SensorConfig> | undefined;
  if (!factory) {
    throw new GatewayError("EGW_DRIVER", `sensor ${sensor.id}: driver ${sensor.driver} is not available in this build`);
  }
  return factory(sensor, ctx);
}

/** The line settings `sensor`'s serial port is opened with; undefined for non-serial drivers. */
export function serialLineOf(sensor: SensorConfig): LineSettings | undefined {
  const e = DRIVERS[sensor.driver] as DriverEntry<z.ZodType> | undefined;
  return e?.serialLine?.(sensor);
}
