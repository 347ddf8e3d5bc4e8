import { rename } from "node:fs/promises";
import { join } from "node:path";
import type { GpioCounterSensor } from "./schema.js";
import { GatewayError, errorMessage } from "../../errors.js";
import type { Driver, DriverContext, Reading } from "../types.js";
import { countRejected, monotonicNow, ticker } from "../util.js";
import { Debouncer, ReadingChannel, edgeMatches, inputPinLifecycle, logical } from "./common.js";
import { readJsonFile, writeFileAtomic } from "./state.js";
import type { GpioPin } from "./types.js";

/**
 * Persisted total. `count = base + pulses × perPulse`; when `perPulse` changes between runs
 * the old pulses are folded into `base`, so a new scale applies only to new pulses.
 */
interface CounterState {
  version: 1;
  base: number;
  pulses: number;
  perPulse: number;
  updatedAt: number;
}

/** Rounds away float noise (0.1 × 7 = 0.7000000000000001) while keeping 12 significant digits. */
const tidy = (x: number) => Number(x.toPrecision(12));

/** Where the counter's total lives under `stateDir`. */
export function counterStatePath(stateDir: string, sensorId: string): string {
  return join(stateDir, `gpio-counter-${sensorId}.json`);
}

/**
 * `gpio-counter`: counts pulses (flow meters, S0 energy meters) on a GPIO.
 *
 * Guarantees:
 * - Edge-triggered with software debounce; a pulse is a settled change matching `edge`
 *   (logical, after `activeLow`). A pulse shorter than `debounce` is not counted.
 * - Every `interval` (first one `interval` after the pin opened) yields
 *   `values: {count, rate}`: `count` = total pulses × `perPulse` since the state file was
 *   created (survives restarts), `rate` = pulses × `perPulse` per second over the time since the
 *   previous reading. Units: `count` in `unit` (default `count`), `rate` in `<unit>/s` (default `1/s`).
 * - The total is saved atomically to `<stateDir>/gpio-counter-<id>.json` after each interval
 *   with new pulses and when the driver stops; a corrupt file is kept aside
 *   (`.corrupt-<ts>`) and counting restarts from 0 with an error logged.
 * - GPIO failures are reported and retried like `gpio-input`; no readings while the pin is not open.
 */
export function createGpioCounter(config: GpioCounterSensor, ctx: DriverContext): Driver {
  const now = ctx.hardware.now ?? Date.now;
  // The rate's time base: a wall-clock step must not make it negative or huge.
  const elapsedClock = monotonicNow;
  const file = counterStatePath(ctx.stateDir, config.id);
  const unit = config.unit ?? "count";
  const units = { count: unit, rate: config.unit ? `${config.unit}/s` : "1/s" };
  let state: CounterState | undefined;
  let saved = true;
  let saving: Promise<void> = Promise.resolve();
  let intervalPulses = 0;
  let intervalStart = 0;
  let isOpen = false;

  const count = (s: CounterState) => tidy(s.base + s.pulses * s.perPulse);

  const load = async (): Promise<CounterState> => {
    const fresh: CounterState = { version: 1, base: 0, pulses: 0, perPulse: config.perPulse, updatedAt: now() };
    let raw: unknown;
    try {
      raw = await readJsonFile(file);
    } catch (err) {
      ctx.counters.errors++;
      if (!(err instanceof SyntaxError)) {
        ctx.logger.error({ sensor: config.id, file, err: errorMessage(err) }, "cannot read pulse counter state; counting from 0");
        return fresh;
      }
      const aside = `${file}.corrupt-${now()}`;
      ctx.logger.error({ sensor: config.id, file, aside, err: errorMessage(err) }, "pulse counter state is not JSON; kept aside, counting from 0");
      await rename(file, aside).catch(() => undefined);
      return fresh;
    }
    if (raw === undefined) return fresh;
    const s = raw as Partial<CounterState>;
    if (typeof s.base !== "number" || typeof s.pulses !== "number" || typeof s.perPulse !== "number") {
      const aside = `${file}.corrupt-${now()}`;
      ctx.counters.errors++;
      ctx.logger.error({ sensor: config.id, file, aside }, "pulse counter state has the wrong shape; kept aside, counting from 0");
      await rename(file, aside).catch(() => undefined);
      return fresh;
    }
    if (s.perPulse !== config.perPulse) {
      return { version: 1, base: tidy(s.base + s.pulses * s.perPulse), pulses: 0, perPulse: config.perPulse, updatedAt: now() };
    }
    return { version: 1, base: s.base, pulses: s.pulses, perPulse: s.perPulse, updatedAt: s.updatedAt ?? now() };
  };

  const save = async () => {
    if (!state || saved) return;
    saved = true;
    state.updatedAt = now();
    try {
      await writeFileAtomic(file, JSON.stringify(state) + "\n");
    } catch (err) {
      saved = false;
      ctx.counters.errors++;
      ctx.logger.error({ sensor: config.id, file, err: errorMessage(err) }, "cannot save pulse counter total");
    }
  };

  const reading = (s: CounterState, ts: number): Reading => {
    const seconds = (elapsedClock() - intervalStart) / 1000;
    return {
      sensor: config.id,
      type: config.type,
      ts,
      values: { count: count(s), rate: seconds > 0 ? tidy((intervalPulses * config.perPulse) / seconds) : 0 },
      units,
      quality: "good",
    };
  };

  const session = (channel: ReadingChannel, stop: AbortSignal) => async (pin: GpioPin) => {
    const s = state!;
    const debouncer = new Debouncer(logical(await pin.read(), config.activeLow), config.debounce, now, (level) => {
      if (!edgeMatches(config.edge, level)) return;
      s.pulses++;
      intervalPulses++;
      saved = false;
    });
    pin.watch((err, level) => {
      if (err) {
        ctx.counters.errors++;
        countRejected(ctx.counters, "read-error");
        return;
      }
      ctx.counters.read++;
      debouncer.edge(logical(level, config.activeLow));
    });
    intervalPulses = 0;
    intervalStart = elapsedClock();
    isOpen = true;
    try {
      let first = true;
      for await (const _ of ticker(config.interval, stop)) {
        if (first) {
          first = false;
          continue;
        }
        const ts = now();
        channel.push(reading(s, ts));
        intervalPulses = 0;
        intervalStart = elapsedClock();
        // Saved in the background, one write at a time, so slow storage never delays a tick.
        saving = saving.then(save);
      }
    } finally {
      isOpen = false;
      debouncer.cancel();
      saving = saving.then(save);
      await saving;
    }
  };

  const lifecycle = inputPinLifecycle({
    ctx,
    sensorId: config.id,
    pin: config.pin,
    prepare: async () => {
      state ??= await load();
    },
    session,
  });

  return {
    start: lifecycle.start,
    /** Current total and the rate since the last published reading; does not start a new interval. */
    async poll() {
      if (!state || !isOpen) throw new GatewayError("EGW_GPIO", `sensor ${config.id}: GPIO ${config.pin} is not open (see the driver error)`);
      return [reading(state, now())];
    },
    close: lifecycle.close,
    [Symbol.asyncDispose]: lifecycle.close,
  };
}
