/**
 * Options of the serial driver family (serial-lines, pms5003, nmea, modbus-rtu): the schemas
 * the config composes into the sensor union, and the line settings a shared port must agree on.
 */
import * as z from "zod";
import { linePatternProblem } from "../../config/safe-regex.js";
import { positiveDuration, sensorCommon, size } from "../../config/primitives.js";

/** Options every serial sensor has. */
export const serialPort = {
  port: z.string().min(1, { error: "port must name a device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…" }).describe("Serial device path; `/dev/serial/by-id/…` links are fine."),
  baudRate: z.number().int().positive().default(9600).describe("Baud rate."),
};

export const serialLinesSensor = z.strictObject({
  ...sensorCommon,
  ...serialPort,
  driver: z.literal("serial-lines"),
  format: z.enum(["json", "csv", "kv", "regex"]).describe("How each line encodes its value(s)."),
  field: z.string().min(1).optional().describe("json: key (dot path) of the value; kv: key of the value."),
  column: z.number().int().nonnegative().optional().describe("csv: zero-based column of the value."),
  delimiter: z.string().min(1).default(",").describe("csv: column delimiter."),
  pattern: z
    .string()
    .optional()
    .superRefine((p, ctx) => {
      // Compiles, and cannot backtrack catastrophically (a pushed `(a+)+$` would wedge the device).
      const problem = p === undefined ? undefined : linePatternProblem(p);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .describe("regex: pattern with a named group `value`, or named groups for `values`."),
  values: z
    .record(z.string().regex(/^[A-Za-z0-9_]+$/), z.union([z.string(), z.number().int().nonnegative()]))
    .optional()
    .describe("Multi-value: name → json/kv key, csv column, or regex group name."),
  maxLineLength: size().prefault(4096).describe("Longer lines are dropped and counted."),
}).superRefine((s, ctx) => {
    const need = (ok: boolean, path: string, message: string) => {
      if (!ok) ctx.addIssue({ code: "custom", path: [path], message });
    };
    const multi = s.values !== undefined;
    switch (s.format) {
      case "json":
      case "kv":
        need(multi || s.field !== undefined, "field", `format ${s.format} needs \`field\` (the key of the value) or \`values\``);
        break;
      case "csv":
        need(multi || s.column !== undefined, "column", "format csv needs `column` (zero-based) or `values`");
        break;
      case "regex": {
        need(s.pattern !== undefined, "pattern", "format regex needs `pattern` with a named group (?<value>…)");
        if (s.pattern !== undefined && !multi && !/\(\?<value>/.test(s.pattern)) {
          ctx.addIssue({ code: "custom", path: ["pattern"], message: "pattern needs a named group (?<value>…), or give `values` naming its groups" });
        }
        break;
      }
    }
  });

export const pms5003Sensor = z.strictObject({
  ...sensorCommon,
  ...serialPort,
  driver: z.literal("pms5003"),
});

export const nmeaSensor = z.strictObject({
  ...sensorCommon,
  ...serialPort,
  driver: z.literal("nmea"),
});

export const modbusRegister = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_]+$/, { error: "register name: letters, digits and '_' only" }).describe("Value name in `values` (or the single `value`)."),
  address: z.number().int().min(0, { error: "register address: 0–65535" }).max(65535, { error: "register address: 0–65535" }).describe("Zero-based register address (protocol address, not the 4xxxx/3xxxx number)."),
  table: z.enum(["holding", "input"]).default("holding").describe("Holding registers (function 3) or input registers (function 4)."),
  dataType: z.enum(["uint16", "int16", "uint32", "int32", "float32"]).default("uint16").describe("32-bit types read two registers."),
  wordOrder: z.enum(["be", "le"]).default("be").describe("32-bit types: `be` = high word first, `le` = low word first."),
  scale: z.number().default(1).describe("The raw value is multiplied by this."),
  unit: z.string().min(1).optional().describe("SenML unit of this register's value."),
});

export const modbusRtuSensor = z.strictObject({
  ...sensorCommon,
  ...serialPort,
  driver: z.literal("modbus-rtu"),
  parity: z.enum(["none", "even", "odd"]).default("none"),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  unitId: z.number().int().min(1).max(247).describe("Modbus slave id (1–247)."),
  timeout: positiveDuration().prefault("1s").describe("How long to wait for this unit's answer."),
  registers: z.array(modbusRegister).min(1, { error: "list at least one register" }),
});

export type SerialLinesSensor = z.output<typeof serialLinesSensor>;
export type Pms5003Sensor = z.output<typeof pms5003Sensor>;
export type NmeaSensor = z.output<typeof nmeaSensor>;
export type ModbusRtuSensor = z.output<typeof modbusRtuSensor>;

/** Line settings of a serial sensor, as its port will be opened (non-Modbus drivers use 8N1). */
export type LineSettings = Record<"baudRate" | "parity" | "dataBits" | "stopBits", string | number>;

/** 8N1 at the sensor's baud rate. */
export const lineSettings8N1 = (s: { baudRate: number }): LineSettings => ({ baudRate: s.baudRate, parity: "none", dataBits: 8, stopBits: 1 });

/** The Modbus sensor's own line settings. */
export const modbusLineSettings = (s: ModbusRtuSensor): LineSettings => ({ baudRate: s.baudRate, parity: s.parity, dataBits: s.dataBits, stopBits: s.stopBits });
