/**
 * Production {@link GpioFactory}: sysfs GPIO through `onoff` (edge interrupts via epoll).
 *
 * `onoff` is loaded lazily on the first `open()`, so a build without the native `epoll`
 * module (or a machine without GPIO) still starts; the failure becomes that sensor's error.
 */
import { GatewayError, errorMessage } from "../../errors.js";
import { resolveSysfsNumber } from "./chip.js";
import { explainGpioError, gpioInaccessibleError } from "./errors.js";
import type { GpioDirection, GpioEdge, GpioFactory, GpioLevel, GpioPin, GpioWatchCallback } from "./types.js";

/** The part of onoff's `Gpio` class we use. */
export interface OnoffGpioClass {
  new (gpio: number, direction: GpioDirection, edge?: GpioEdge): OnoffGpio;
  readonly accessible: boolean;
}
interface OnoffGpio {
  read(): Promise<GpioLevel>;
  write(value: GpioLevel): Promise<void>;
  watch(callback: GpioWatchCallback): void;
  unwatchAll(): void;
  unexport(): void;
}

export interface OnoffFactoryOptions {
  /** Root of sysfs for the BCM → sysfs number translation (default `/sys`). onoff itself always uses `/sys/class/gpio`. */
  sysfsRoot?: string;
  /** Loads onoff's `Gpio` class; tests may substitute. Default: `import("onoff")`. */
  loadGpio?: () => Promise<OnoffGpioClass>;
}

async function importOnoff(): Promise<OnoffGpioClass> {
  const mod = (await import("onoff")) as unknown as { Gpio?: OnoffGpioClass; default?: { Gpio?: OnoffGpioClass } };
  const Gpio = mod.Gpio ?? mod.default?.Gpio;
  if (!Gpio) throw new Error("module onoff has no export Gpio");
  return Gpio;
}

/**
 * Creates the onoff-backed factory. `open()` rejects with an `EGW_GPIO` GatewayError naming
 * the pin and the likely fix when GPIO is not accessible, permission is denied, the pin is
 * busy (also: already opened by this factory), or the BCM number does not exist.
 */
export function createOnoffGpioFactory(opts: OnoffFactoryOptions = {}): GpioFactory {
  const sysfsRoot = opts.sysfsRoot ?? "/sys";
  const load = opts.loadGpio ?? importOnoff;
  let Gpio: Promise<OnoffGpioClass> | undefined;
  const inUse = new Set<number>();

  return {
    async open(pin: number, direction: GpioDirection, edge: GpioEdge = "none"): Promise<GpioPin> {
      let cls: OnoffGpioClass;
      try {
        cls = await (Gpio ??= load());
      } catch (err) {
        Gpio = undefined;
        throw new GatewayError(
          "EGW_GPIO",
          `GPIO ${pin}: cannot load the onoff GPIO module (${errorMessage(err)}): reinstall with native modules built (npm ci; epoll needs node-gyp)`,
          { cause: err },
        );
      }
      if (!cls.accessible) throw gpioInaccessibleError(pin);
      const sysfs = await resolveSysfsNumber(pin, sysfsRoot);
      if (inUse.has(sysfs)) {
        throw explainGpioError(pin, Object.assign(new Error(`gpio${sysfs} already open in this process`), { code: "EBUSY" }), sysfs);
      }
      let gpio: OnoffGpio;
      try {
        gpio = new cls(sysfs, direction, direction === "in" ? edge : undefined);
      } catch (err) {
        throw explainGpioError(pin, err, sysfs);
      }
      inUse.add(sysfs);
      let released = false;
      return {
        pin,
        read: () => gpio.read(),
        write: (level) => gpio.write(level),
        watch: (cb) => gpio.watch(cb),
        unwatch: () => {
          if (!released) gpio.unwatchAll();
        },
        unexport: () => {
          if (released) return;
          released = true;
          inUse.delete(sysfs);
          try {
            gpio.unexport();
          } catch {
            // Closing an fd that is already gone: nothing left to release.
          }
        },
      };
    },
  };
}
