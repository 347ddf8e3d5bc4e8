import * as z from "zod";
import { positiveDuration, sensorCommon } from "../config/primitives.js";
import type { Driver, DriverContext, Reading } from "./types.js";
import { mapAsync, ticker } from "./util.js";

/** Options of the simulated driver. */
export const simulatedSensor = z.strictObject({
  ...sensorCommon,
  driver: z.literal("simulated"),
  waveform: z.enum(["sine", "random-walk", "constant"]).default("sine").describe("Shape of the simulated signal."),
  min: z.number().default(0).describe("Lowest simulated value."),
  max: z.number().default(100).describe("Highest simulated value."),
  period: positiveDuration().prefault("60s").describe("Period of the sine wave."),
});

export type SimulatedSensor = z.output<typeof simulatedSensor>;

/**
 * Simulated sensor: a sine, random walk or constant between `min` and `max`, sampled every
 * `interval`. Used by the demo, the tests and the benchmark; no hardware.
 */
export function createSimulated(config: SimulatedSensor, ctx: DriverContext): Driver {
  const now = ctx.hardware.now ?? Date.now;
  const { min, max } = config;
  let walk = (min + max) / 2;
  let closed = new AbortController();

  const sample = (): Reading => {
    const ts = now();
    let value: number;
    switch (config.waveform) {
      case "constant":
        value = (min + max) / 2;
        break;
      case "random-walk":
        walk = Math.min(max, Math.max(min, walk + (Math.random() - 0.5) * (max - min) * 0.05));
        value = walk;
        break;
      default:
        value = min + ((max - min) * (1 + Math.sin((2 * Math.PI * ts) / config.period))) / 2;
    }
    ctx.counters.read++;
    return {
      sensor: config.id,
      type: config.type,
      ts,
      value: Math.round(value * 1000) / 1000,
      ...(config.unit ? { unit: config.unit } : {}),
      quality: "good",
    };
  };

  return {
    start(signal: AbortSignal) {
      if (closed.signal.aborted) closed = new AbortController();
      return mapAsync(ticker(config.interval, AbortSignal.any([signal, closed.signal])), sample);
    },
    async poll() {
      return [sample()];
    },
    async close() {
      closed.abort();
    },
    async [Symbol.asyncDispose]() {
      closed.abort();
    },
  };
}
