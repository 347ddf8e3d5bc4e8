/**
 * The GPIO seam. Types only: this file imports no implementation.
 *
 * Production code gets a {@link GpioFactory} backed by `onoff` (sysfs GPIO, see `onoff.ts`);
 * tests get a fake that emits edges with controlled timing (`test/helpers/fake-gpio.ts`).
 * Levels crossing this seam are PHYSICAL levels (0 = low, 1 = high): active-low inversion,
 * debouncing and edge filtering are done by the drivers, so the same code runs against both.
 */

/** `in`, or `out` starting low, or `high`/`low` = output starting at that level (no glitch). */
export type GpioDirection = "in" | "out" | "high" | "low";

/** Which edges raise an interrupt; `none` for outputs. */
export type GpioEdge = "none" | "rising" | "falling" | "both";

/** A physical level: 0 low, 1 high. */
export type GpioLevel = 0 | 1;

/** Called on each interrupt with the level read right after it (or an error). */
export type GpioWatchCallback = (err: Error | null | undefined, level: GpioLevel) => void;

/** One exported pin. */
export interface GpioPin {
  /** BCM number as configured (not the sysfs number). */
  readonly pin: number;
  /** Reads the current physical level. */
  read(): Promise<GpioLevel>;
  /** Drives an output pin to a physical level. */
  write(level: GpioLevel): Promise<void>;
  /** Starts edge interrupts (edge-triggered, no polling). */
  watch(callback: GpioWatchCallback): void;
  /** Stops all interrupt callbacks. Safe to call twice. */
  unwatch(): void;
  /** Stops interrupts and releases the pin (sysfs `unexport`). Safe to call twice; never throws. */
  unexport(): void;
}

/** Exports pins. */
export interface GpioFactory {
  /**
   * Exports BCM pin `pin` with `direction` and interrupt `edge`. Rejects with an `EGW_GPIO`
   * {@link import("../../errors.js").GatewayError} (or a raw Node error with a `code` such as
   * `EACCES`/`EBUSY`, which drivers explain) when the pin cannot be used.
   */
  open(pin: number, direction: GpioDirection, edge?: GpioEdge): Promise<GpioPin>;
}
