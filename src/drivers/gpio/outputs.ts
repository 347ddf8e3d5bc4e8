import type { Logger } from "pino";
import type { OutputConfig } from "./schema.js";
import { GatewayError, errorMessage } from "../../errors.js";
import type { DriverHealth, HardwareSeams } from "../types.js";
import { backoff, delay } from "../util.js";
import { gpioFactoryOf } from "./common.js";
import { explainGpioError } from "./errors.js";
import type { GpioFactory, GpioLevel, GpioPin } from "./types.js";

/** What {@link Outputs.list} tells about one output. */
export interface OutputStatus {
  id: string;
  /** BCM number. */
  pin: number;
  activeLow: boolean;
  /** Logical value last written (true = active); undefined while the pin could not be opened. */
  value: boolean | undefined;
  /** Why the pin is not open, when it is not. */
  error?: string;
}

/** GPIO outputs (`outputs:` in the config), for the daemon and the control API's `output` endpoint. */
export interface Outputs extends AsyncDisposable {
  /**
   * Sets output `id` to a logical value (true/1 = active; physical low when `activeLow`).
   * Resolves once the pin was written. Rejects with `EGW_GPIO` for an unknown id, after
   * `close()`, or when the pin cannot be opened (message names the pin and the fix).
   */
  set(id: string, value: boolean | 0 | 1): Promise<void>;
  /** Logical value last written, or undefined for an unknown id or a pin not (yet) open. */
  get(id: string): boolean | undefined;
  list(): OutputStatus[];
  /** Stops retries and unexports every pin (the level stays as last written). Safe to call twice; never rejects. */
  close(): Promise<void>;
}

export interface OutputsOptions {
  logger: Logger;
  hardware?: Pick<HardwareSeams, "gpio" | "sysfsRoot">;
  /** Failure / recovery of one output, e.g. for `events.driver`. Must not throw. */
  report?: (id: string, health: DriverHealth) => void;
}

interface OutputSlot {
  cfg: OutputConfig;
  pin: GpioPin | undefined;
  value: boolean | undefined;
  /** Value to apply when the pin opens (initial, or the last one requested). */
  desired: boolean;
  error: GatewayError | undefined;
  /** Serialises open/write on this output. */
  chain: Promise<unknown>;
}

const physical = (value: boolean, activeLow: boolean): GpioLevel => (value !== activeLow ? 1 : 0);

/**
 * Opens every output and drives it to its `initial` value (glitch-free: the pin is exported as
 * an output already at that level). Never rejects: an output whose pin cannot be opened is
 * reported (`report(id, {state: "error"})`, logged) and retried in the background with backoff
 * until it opens, then set to its desired value.
 */
export async function openOutputs(configs: readonly OutputConfig[], opts: OutputsOptions): Promise<Outputs> {
  const gpio: GpioFactory = gpioFactoryOf(opts.hardware ?? {});
  const closed = new AbortController();
  const slots = new Map<string, OutputSlot>();
  const retries: Promise<void>[] = [];

  const serial = <T>(slot: OutputSlot, fn: () => Promise<T>): Promise<T> => {
    const run = slot.chain.then(fn, fn);
    slot.chain = run.catch(() => undefined);
    return run;
  };

  /** Opens the pin at `value`; throws the explained error. Caller holds the slot's chain. */
  const openAt = async (slot: OutputSlot, value: boolean): Promise<void> => {
    const { cfg } = slot;
    try {
      slot.pin = await gpio.open(cfg.pin, physical(value, cfg.activeLow) ? "high" : "low");
    } catch (err) {
      const error = explainGpioError(cfg.pin, err);
      const first = slot.error === undefined;
      slot.error = error;
      if (first) opts.logger.warn({ output: cfg.id, pin: cfg.pin, err: error.message }, "GPIO output unavailable");
      opts.report?.(cfg.id, { state: "error", error });
      throw error;
    }
    slot.value = value;
    if (slot.error) {
      slot.error = undefined;
      opts.logger.info({ output: cfg.id, pin: cfg.pin }, "GPIO output recovered");
      opts.report?.(cfg.id, { state: "ok" });
    }
  };

  const retryLoop = async (slot: OutputSlot) => {
    for (let attempt = 0; !closed.signal.aborted && !slot.pin; attempt++) {
      if (!(await delay(backoff(attempt), closed.signal))) return;
      await serial(slot, async () => {
        if (!slot.pin && !closed.signal.aborted) await openAt(slot, slot.desired);
      }).catch(() => undefined);
    }
  };

  for (const cfg of configs) {
    const slot: OutputSlot = { cfg, pin: undefined, value: undefined, desired: cfg.initial, error: undefined, chain: Promise.resolve() };
    slots.set(cfg.id, slot);
    try {
      await serial(slot, () => openAt(slot, cfg.initial));
    } catch {
      retries.push(retryLoop(slot));
    }
  }

  const close = async () => {
    if (closed.signal.aborted) return;
    closed.abort();
    await Promise.all(retries);
    for (const slot of slots.values()) {
      await slot.chain;
      try {
        slot.pin?.unexport();
      } catch (err) {
        opts.logger.warn({ output: slot.cfg.id, err: errorMessage(err) }, "GPIO output unexport failed");
      }
      slot.pin = undefined;
    }
  };

  return {
    set(id, value) {
      const slot = slots.get(id);
      if (!slot) {
        return Promise.reject(
          new GatewayError("EGW_GPIO", `unknown output ${JSON.stringify(id)}: configured outputs are ${[...slots.keys()].join(", ") || "(none)"}`),
        );
      }
      if (closed.signal.aborted) return Promise.reject(new GatewayError("EGW_GPIO", `output ${id}: outputs are closed`));
      const want = value === true || value === 1;
      return serial(slot, async () => {
        if (!slot.pin) {
          await openAt(slot, want);
          slot.desired = want;
          return;
        }
        try {
          await slot.pin.write(physical(want, slot.cfg.activeLow));
        } catch (err) {
          throw explainGpioError(slot.cfg.pin, err);
        }
        slot.value = want;
        slot.desired = want;
      });
    },
    get(id) {
      return slots.get(id)?.value;
    },
    list() {
      return [...slots.values()].map((s) => ({
        id: s.cfg.id,
        pin: s.cfg.pin,
        activeLow: s.cfg.activeLow,
        value: s.value,
        ...(s.error ? { error: s.error.message } : {}),
      }));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
