/**
 * Config primitives that every part's schema is built from: subject tokens, durations, sizes,
 * GPIO pins and the fields common to every sensor entry. Driver families and the MQTT source
 * declare their own options with these; src/config/schema.ts composes the whole.
 */
import * as z from "zod";
import { parseDuration, parseSize } from "./units.js";
import { SUBJECT_TOKEN } from "./tokens.js";

/** Every subject token must match SUBJECT_TOKEN (DESIGN A1); it lives in ./tokens.ts so --help loads no zod. */
export { SUBJECT_TOKEN };

export const token = (what: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? `required: give the ${what}` : `${what} must be a string`) })
    .regex(SUBJECT_TOKEN, {
      error: (issue) =>
        `${what} ${JSON.stringify(issue.input)} is not a valid subject token: use only letters, digits, '-' and '_' (no dots, spaces or wildcards)`,
    });

/** A duration: `500ms`, `5s`, `2m`, `7d`, or a number of milliseconds. Output: milliseconds. */
export const duration = (opts: { min?: number } = {}) =>
  z.union([z.string(), z.number()]).transform((input, ctx) => {
    const ms = parseDuration(input);
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `${JSON.stringify(input)} is not a duration: write e.g. 500ms, 5s, 2m, 1h or 7d`,
      });
      return z.NEVER;
    }
    if (opts.min !== undefined && ms < opts.min) {
      ctx.addIssue({ code: "custom", message: `must be at least ${opts.min}ms (got ${JSON.stringify(input)})` });
      return z.NEVER;
    }
    return ms;
  })
    .meta({ format: "duration" });

/** A size: `512MiB`, `1GB`, or a number of bytes. Output: bytes. */
export const size = () =>
  z.union([z.string(), z.number()]).transform((input, ctx) => {
    const bytes = parseSize(input);
    if (bytes === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `${JSON.stringify(input)} is not a size: write e.g. 4096, 64KiB, 512MiB or 1GB`,
      });
      return z.NEVER;
    }
    return bytes;
  })
    .meta({ format: "size" });

/** A duration of at least 1 ms. */
export const positiveDuration = () => duration({ min: 1 });

/** A BCM GPIO number. */
export const gpioPin = z
  .number({ error: "pin must be a BCM GPIO number (0–63), as printed on the pinout" })
  .int({ error: "pin must be a whole BCM GPIO number (0–63)" })
  .min(0, { error: "BCM GPIO numbers go from 0 to 63 (the number printed on the pinout, not the header pin)" })
  .max(63, { error: "BCM GPIO numbers go from 0 to 63 (the number printed on the pinout, not the header pin)" })
  .describe("BCM GPIO number, as printed on the pinout.");
/** Fields every sensor entry has (DESIGN A5), whatever its driver. */
export const sensorCommon = {
  id: token("sensor id").describe("Sensor id, unique on this device (two devices may both have `kitchen`); the last subject token, after the device id."),
  type: token("sensor type").describe("Quantity or kind (`temperature`, `pm`, …); the `<type>` subject token."),
  interval: positiveDuration().prefault("10s").describe("Sampling interval of polled drivers. The first sample is taken at start, the next ones on multiples of the interval counted from the process start, so sensors with the same interval are read together."),
  unit: z.string().min(1).optional().describe("SenML unit symbol (`Cel`, `%RH`, `Pa`, `ug/m3`, …)."),
  range: z
    .tuple([z.number(), z.number()])
    .refine(([min, max]) => min <= max, { error: "range must be [min, max] with min <= max" })
    .optional()
    .describe("Plausible range; a value outside is published with quality `uncertain`."),
  deadband: z
    .number()
    .nonnegative({ error: "deadband must be >= 0" })
    .optional()
    .describe("Publish only when the value moved at least this much (but at least every `heartbeat`)."),
  heartbeat: positiveDuration().prefault("60s").describe("Longest time between two published readings when nothing changes."),
  enabled: z.boolean().default(true).describe("Set false to keep the entry but not run it."),
};

