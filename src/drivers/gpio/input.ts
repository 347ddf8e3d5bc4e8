import type { GpioInputSensor } from "./schema.js";
import { GatewayError } from "../../errors.js";
import type { Driver, DriverContext, Reading } from "../types.js";
import { countRejected } from "../util.js";
import { Debouncer, ReadingChannel, aborted, edgeMatches, inputPinLifecycle, logical } from "./common.js";
import type { GpioLevel, GpioPin } from "./types.js";

/**
 * `gpio-input`: a digital input (door contact, PIR motion, float switch).
 *
 * Edge-triggered: the pin is exported with interrupts on both edges and watched (no polling);
 * raw edges pass a software debounce (a level must hold `debounce` with no further edge).
 * Guarantees:
 * - `value` is the logical level, 1 = active (high, or low when `activeLow`), no unit unless
 *   configured; `ts` is the time of the first edge of the burst that settled.
 * - One reading when the pin opens, one per settled change whose direction matches `edge`
 *   (`rising` = became 1, `falling` = became 0, in logical terms), and one every `heartbeat`
 *   since the last reading, so a consumer can tell "no change" from "dead".
 * - GPIO unavailable (not accessible, permission, busy): reported as an `EGW_GPIO` driver
 *   error naming the pin and the fix, retried with backoff; the iterable does not end.
 */
export function createGpioInput(config: GpioInputSensor, ctx: DriverContext): Driver {
  const now = ctx.hardware.now ?? Date.now;
  let open: GpioPin | undefined;

  const reading = (value: GpioLevel, ts: number): Reading => ({
    sensor: config.id,
    type: config.type,
    ts,
    value,
    ...(config.unit ? { unit: config.unit } : {}),
    quality: "good",
  });

  const session = (channel: ReadingChannel, stop: AbortSignal) => async (pin: GpioPin) => {
    const initial = logical(await pin.read(), config.activeLow);
    ctx.counters.read++;
    let heartbeat: ReturnType<typeof setTimeout> | undefined;
    const publish = (level: GpioLevel, ts: number) => {
      channel.push(reading(level, ts));
      clearTimeout(heartbeat);
      heartbeat = setTimeout(() => publish(debouncer.stable, now()), config.heartbeat);
    };
    const debouncer = new Debouncer(initial, config.debounce, now, (level, since) => {
      if (edgeMatches(config.edge, level)) publish(level, since);
    });
    pin.watch((err, level) => {
      if (err) {
        ctx.counters.errors++;
        countRejected(ctx.counters, "read-error");
        ctx.logger.warn({ sensor: config.id, pin: config.pin, err: err.message }, "GPIO interrupt read failed");
        return;
      }
      ctx.counters.read++;
      debouncer.edge(logical(level, config.activeLow));
    });
    open = pin;
    publish(initial, now());
    try {
      await aborted(stop);
    } finally {
      open = undefined;
      clearTimeout(heartbeat);
      debouncer.cancel();
    }
  };

  const lifecycle = inputPinLifecycle({
    ctx,
    sensorId: config.id,
    pin: config.pin,
    session,
  });

  return {
    start: lifecycle.start,
    async poll() {
      const pin = open;
      if (!pin) throw new GatewayError("EGW_GPIO", `sensor ${config.id}: GPIO ${config.pin} is not open (see the driver error)`);
      ctx.counters.read++;
      return [reading(logical(await pin.read(), config.activeLow), now())];
    },
    close: lifecycle.close,
    [Symbol.asyncDispose]: lifecycle.close,
  };
}
