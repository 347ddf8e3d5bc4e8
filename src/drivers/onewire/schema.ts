/** Options of the 1-Wire driver family (ds18b20). */
import * as z from "zod";
import { sensorCommon } from "../../config/primitives.js";

export const ds18b20Sensor = z.strictObject({
  ...sensorCommon,
  driver: z.literal("ds18b20"),
  address: z
    .string()
    .regex(/^(auto|28-[0-9a-fA-F]{12})$/, { error: "address must be `auto` or a 1-Wire id like 28-0316a2794bff" })
    .default("auto")
    .describe("1-Wire id of the probe (`28-…`), or `auto`: every `28-*` device, each published as `<id>-<address>`."),
  basePath: z.string().default("/sys/bus/w1/devices").describe("The kernel's w1 devices directory."),
});

export type Ds18b20Sensor = z.output<typeof ds18b20Sensor>;
