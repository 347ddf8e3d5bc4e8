/** Options of the GPIO driver family (gpio-input, gpio-counter) and of GPIO outputs. */
import * as z from "zod";
import { duration, gpioPin, sensorCommon, token } from "../../config/primitives.js";

const gpioEdge = z
  .enum(["both", "rising", "falling"])
  .describe("Which settled changes count, in logical terms (after `activeLow`): `rising` = becomes 1 (active), `falling` = becomes 0.");

export const gpioInputSensor = z.strictObject({
  ...sensorCommon,
  driver: z.literal("gpio-input"),
  pin: gpioPin,
  edge: gpioEdge.default("both"),
  debounce: duration().prefault("10ms").describe("Software debounce: a level must hold this long to count."),
  activeLow: z.boolean().default(false).describe("Invert: a low pin reads as 1 (active), e.g. a switch to ground with a pull-up."),
});

export const gpioCounterSensor = z.strictObject({
  ...sensorCommon,
  driver: z.literal("gpio-counter"),
  pin: gpioPin,
  edge: gpioEdge.default("rising"),
  debounce: duration().prefault("5ms").describe("Software debounce; keep it shorter than the meter's pulse width (S0: >= 30 ms)."),
  activeLow: z.boolean().default(false).describe("Invert: a low pin reads as 1 (active), e.g. an open-collector S0 output with a pull-up."),
  perPulse: z.number().positive().default(1).describe("Unit amount per pulse (e.g. 0.001 m3, 1 Wh)."),
});

export const outputSchema = z.strictObject({
  id: token("output id").describe("Output id, used by the control service's `output` endpoint."),
  pin: gpioPin,
  initial: z
    .union([z.boolean(), z.literal(0), z.literal(1)], { error: "initial must be true or false (or 1 / 0)" })
    .default(false)
    .transform((v) => v === true || v === 1)
    .describe("Logical value set when the gateway starts (true/1 = active)."),
  activeLow: z.boolean().default(false).describe("Invert: active drives the pin low (e.g. relay boards that switch on low)."),
});

export type GpioInputSensor = z.output<typeof gpioInputSensor>;
export type GpioCounterSensor = z.output<typeof gpioCounterSensor>;
export type OutputConfig = z.output<typeof outputSchema>;
