/**
 * The one schema: source of the config types, their defaults and their validation, for the
 * bootstrap file (DESIGN A4), sensor entries (A5) and the remote document (A6).
 * Types are inferred from it (`z.output`), never written twice. Each field's `describe()` text
 * feeds the generated reference in docs/configuration.md (`npm run docs:config`).
 */
import { z } from "zod";
import { parseDuration, parseSize } from "./units.js";
import { SUBJECT_TOKEN } from "./tokens.js";

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

const positiveDuration = () => duration({ min: 1 });

// ---------------------------------------------------------------------------------------------
// Sensors (A5)

const sensorCommon = {
  id: token("sensor id").describe("Sensor id, unique on this device (two devices may both have `kitchen`); the last subject token, after the device id."),
  type: token("sensor type").describe("Quantity or kind (`temperature`, `pm`, …); the `<type>` subject token."),
  interval: positiveDuration().prefault("10s").describe("Sampling interval of polled drivers."),
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

const serialPort = {
  port: z.string().min(1, { error: "port must name a device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…" }).describe("Serial device path; `/dev/serial/by-id/…` links are fine."),
  baudRate: z.number().int().positive().default(9600).describe("Baud rate."),
};

export const simulatedSensor = z.strictObject({
  ...sensorCommon,
  driver: z.literal("simulated"),
  waveform: z.enum(["sine", "random-walk", "constant"]).default("sine").describe("Shape of the simulated signal."),
  min: z.number().default(0).describe("Lowest simulated value."),
  max: z.number().default(100).describe("Highest simulated value."),
  period: positiveDuration().prefault("60s").describe("Period of the sine wave."),
});

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
      if (p === undefined) return;
      try {
        new RegExp(p);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: `invalid regular expression: ${(e as Error).message}` });
      }
    })
    .describe("regex: pattern with a named group `value`, or named groups for `values`."),
  values: z
    .record(z.string().regex(/^[A-Za-z0-9_]+$/), z.union([z.string(), z.number().int().nonnegative()]))
    .optional()
    .describe("Multi-value: name → json/kv key, csv column, or regex group name."),
  maxLineLength: size().prefault(4096).describe("Longer lines are dropped and counted."),
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

const gpioPin = z
  .number({ error: "pin must be a BCM GPIO number (0–63), as printed on the pinout" })
  .int({ error: "pin must be a whole BCM GPIO number (0–63)" })
  .min(0, { error: "BCM GPIO numbers go from 0 to 63 (the number printed on the pinout, not the header pin)" })
  .max(63, { error: "BCM GPIO numbers go from 0 to 63 (the number printed on the pinout, not the header pin)" })
  .describe("BCM GPIO number, as printed on the pinout.");
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

export const DRIVER_NAMES = [
  "simulated",
  "serial-lines",
  "pms5003",
  "nmea",
  "modbus-rtu",
  "gpio-input",
  "gpio-counter",
  "ds18b20",
] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];

export const sensorSchema = z
  .discriminatedUnion(
    "driver",
    [
      simulatedSensor,
      serialLinesSensor,
      pms5003Sensor,
      nmeaSensor,
      modbusRtuSensor,
      gpioInputSensor,
      gpioCounterSensor,
      ds18b20Sensor,
    ],
    {
      error: (issue) =>
        issue.code === "invalid_union"
          ? `unknown driver ${JSON.stringify((issue.input as { driver?: unknown } | undefined)?.driver)}: use one of ${DRIVER_NAMES.join(", ")}`
          : undefined,
    },
  )
  .superRefine((s, ctx) => {
    if (s.driver !== "serial-lines") return;
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

/**
 * Checks an MQTT topic filter: non-empty, `+` and `#` alone in their level, `#` only last, no
 * NUL, no shared subscriptions. Returns what is wrong, or undefined.
 */
export function topicFilterProblem(topic: string): string | undefined {
  if (topic.length === 0) return "topic must not be empty";
  if (topic.includes("\u0000")) return "topic must not contain NUL";
  if (Buffer.byteLength(topic, "utf8") > 65535) return "topic is longer than 65535 bytes";
  if (topic.startsWith("$share/")) return "shared subscriptions ($share/…) are not supported: subscribe to the topic itself";
  const levels = topic.split("/");
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] ?? "";
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) {
      return `"#" must be a whole level and the last one (e.g. zigbee2mqtt/#), in ${JSON.stringify(topic)}`;
    }
    if (level.includes("+") && level !== "+") return `"+" must be a whole level (e.g. tele/+/SENSOR), in ${JSON.stringify(topic)}`;
  }
  return undefined;
}

/** Number of wildcard levels (`+` and `#`) in a valid topic filter: the `{n}` an id may use. */
export function topicWildcardCount(topic: string): number {
  return topic.split("/").filter((l) => l === "+" || l === "#").length;
}

/** `{1}`, `{2}`… in an MQTT subscription id template. */
export const ID_PLACEHOLDER = /\{(\d+)\}/g;

export const mqttSubscriptionSchema = z
  .strictObject({
    topic: z
      .string()
      .superRefine((t, ctx) => {
        const problem = topicFilterProblem(t);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
      .describe("MQTT topic filter; `+` and `#` wildcards allowed (`#` only as the last level)."),
    type: token("subscription type").describe("Quantity or kind; the `<type>` subject token."),
    id: z
      .string()
      .min(1)
      .describe(
        "Sensor id; `{1}`, `{2}`… stand for the topic levels matched by the wildcards, in order (`#` = the rest of the topic). " +
          "Characters of a topic level that are not allowed in a subject token become `_`.",
      ),
    valuePath: z.string().min(1).optional().describe("Dot path into a JSON payload (`DS18B20.Temperature`, array index `list.0.v`); omit for a plain-number payload."),
    values: z
      .record(z.string().regex(/^[A-Za-z0-9_]+$/, { error: "value name: letters, digits and '_' only" }), z.string().min(1))
      .optional()
      .describe("Multi-value: name → dot path into a JSON payload."),
    timePath: z.string().min(1).optional().describe("Dot path of the payload's own timestamp (ISO 8601 or epoch s/ms); else the receive time is used."),
    unit: z.string().min(1).optional().describe("SenML unit of the value, or of all `values`."),
    units: z.record(z.string(), z.string().min(1)).optional().describe("Per-name units for `values`."),
    qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1).describe("Subscription QoS; 1 lets the broker hold messages while the gateway restarts."),
    maxSensors: z
      .number()
      .int()
      .positive()
      .default(1000)
      .describe("Most distinct sensor ids this subscription may produce; messages for further ids are skipped (`too-many-sensors`), so a wildcard cannot flood the fleet with subjects."),
  })
  .superRefine((sub, ctx) => {
    if (sub.valuePath !== undefined && sub.values !== undefined) {
      ctx.addIssue({ code: "custom", path: ["values"], message: "give either `valuePath` (one value) or `values` (several), not both" });
    }
    if (sub.values !== undefined && Object.keys(sub.values).length === 0) {
      ctx.addIssue({ code: "custom", path: ["values"], message: "`values` must name at least one value" });
    }
    if (sub.units !== undefined) {
      if (sub.values === undefined) {
        ctx.addIssue({ code: "custom", path: ["units"], message: "`units` is for `values`; for a single value use `unit`" });
      } else {
        for (const name of Object.keys(sub.units)) {
          if (!(name in sub.values)) ctx.addIssue({ code: "custom", path: ["units", name], message: `no value named ${JSON.stringify(name)} in \`values\`` });
        }
      }
    }
    const literal = sub.id.replace(ID_PLACEHOLDER, "");
    if (!/^[A-Za-z0-9_-]*$/.test(literal) || /[{}]/.test(literal)) {
      ctx.addIssue({
        code: "custom",
        path: ["id"],
        message: `id ${JSON.stringify(sub.id)} is not a valid subject token template: use letters, digits, '-', '_' and {1}, {2}… for wildcard levels`,
      });
    }
    if (topicFilterProblem(sub.topic) !== undefined) return;
    const wildcards = topicWildcardCount(sub.topic);
    for (const m of sub.id.matchAll(ID_PLACEHOLDER)) {
      const n = Number(m[1]);
      if (n < 1 || n > wildcards) {
        ctx.addIssue({
          code: "custom",
          path: ["id"],
          message:
            wildcards === 0
              ? `id uses {${n}} but topic ${JSON.stringify(sub.topic)} has no wildcards`
              : `id uses {${n}} but topic ${JSON.stringify(sub.topic)} has only ${wildcards} wildcard level${wildcards === 1 ? "" : "s"} ({1}${wildcards > 1 ? `…{${wildcards}}` : ""})`,
        });
      }
    }
  });

export const mqttSchema = z.strictObject({
  url: z
    .string()
    .regex(/^(mqtts?|wss?|tcp|ssl):\/\//, { error: "url must start with mqtt://, mqtts://, ws:// or wss://" })
    .superRefine((u, ctx) => {
      let host = "";
      try {
        host = new URL(u).hostname;
      } catch {
        // reported below
      }
      if (!host) ctx.addIssue({ code: "custom", message: `${JSON.stringify(u)} is not a broker URL: write e.g. mqtt://127.0.0.1:1883` });
    })
    .describe("Broker URL, e.g. mqtt://127.0.0.1:1883."),
  clientId: z.string().min(1).optional().describe("Defaults to `edge-gateway-<deviceId>`; keep it stable for the persistent session."),
  username: z.string().optional().describe("Broker user name, if it requires one."),
  password: z.string().optional().describe("Password for `username`."),
  protocolVersion: z
    .union([z.literal(4), z.literal(5)])
    .default(5)
    .describe("MQTT protocol: 5 (default; exact routing of overlapping subscriptions, retained messages not sent) or 4 (MQTT 3.1.1, for old brokers)."),
  sessionExpiry: positiveDuration()
    .prefault("1d")
    .describe("MQTT 5: how long the broker keeps the session (subscriptions, queued QoS 1 messages) while the gateway is away."),
  subscriptions: z.array(mqttSubscriptionSchema).default([]).describe("What to subscribe to and how to turn messages into readings."),
});

export const logSchema = z.strictObject({
  level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info").describe("Log level; JSON lines on stdout. Changes from the remote document apply live."),
});

/**
 * Ids in a list must be unique. Runs even when other entries have errors (`when`), so a
 * document reports its duplicate ids together with every other problem.
 */
const uniqueIds = (key: string) =>
  z.superRefine(
    (list: unknown, ctx) => {
      if (!Array.isArray(list)) return;
      const seen = new Map<string, number>();
      list.forEach((item: unknown, i) => {
        const id = item && typeof item === "object" ? (item as { id?: unknown }).id : undefined;
        if (typeof id !== "string") return;
        const first = seen.get(id);
        if (first !== undefined) {
          ctx.addIssue({ code: "custom", path: [i, "id"], message: `duplicate id ${JSON.stringify(id)} (also ${key}[${first}]): ids must be unique` });
        } else seen.set(id, i);
      });
    },
    { when: () => true },
  );

/** Line settings of a serial sensor, as the port will be opened (non-Modbus drivers use 8N1). */
function lineSettings(s: SensorConfig): Record<"baudRate" | "parity" | "dataBits" | "stopBits", string | number> | undefined {
  switch (s.driver) {
    case "serial-lines":
    case "pms5003":
    case "nmea":
      return { baudRate: s.baudRate, parity: "none", dataBits: 8, stopBits: 1 };
    case "modbus-rtu":
      return { baudRate: s.baudRate, parity: s.parity, dataBits: s.dataBits, stopBits: s.stopBits };
    default:
      return undefined;
  }
}

/** Enabled sensors naming the same serial `port` share one open port, so they must agree on its line settings. */
function checkSharedSerialPorts(list: readonly SensorConfig[] | undefined, ctx: z.RefinementCtx): void {
  const first = new Map<string, { index: number; id: string; settings: NonNullable<ReturnType<typeof lineSettings>> }>();
  (list ?? []).forEach((sensor, i) => {
    const settings = lineSettings(sensor);
    if (!settings || !sensor.enabled || !("port" in sensor)) return;
    const seen = first.get(sensor.port);
    if (!seen) {
      first.set(sensor.port, { index: i, id: sensor.id, settings });
      return;
    }
    for (const key of Object.keys(settings) as (keyof typeof settings)[]) {
      if (settings[key] === seen.settings[key]) continue;
      ctx.addIssue({
        code: "custom",
        path: ["sensors", i, key],
        message: `port ${sensor.port} is shared with sensor ${JSON.stringify(seen.id)} (sensors[${seen.index}]), which uses ${key} ${JSON.stringify(seen.settings[key])}, not ${JSON.stringify(settings[key])}: sensors on one port must use the same line settings`,
      });
    }
  });
}

const remoteFields = {
  sensors: z.array(sensorSchema).check(uniqueIds("sensors")).default([]),
  outputs: z.array(outputSchema).check(uniqueIds("outputs")).default([]),
  mqtt: mqttSchema.nullable().default(null),
  log: logSchema.prefault({}),
};

/** The remote config document (A6): KV `gateway-config`, key `devices.<deviceId>`. */
export const remoteDocumentSchema = z.strictObject(remoteFields).superRefine((doc, ctx) => {
  checkSharedSerialPorts(doc.sensors, ctx);
});

/** The bootstrap file (A4), `/etc/edge-gateway/gateway.yaml`. */
export const bootstrapSchema = z
  .strictObject({
    device: z.strictObject({
      id: token("device id").describe("Device id, unique in the fleet; also the leaf's JetStream domain."),
      region: token("region").describe("The `<region>` subject token."),
    }),
    nats: z
      .strictObject({
        servers: z
          .array(z.string().min(1))
          .min(1, { error: "list at least one server: the local leaf, e.g. nats://127.0.0.1:4222" })
          .default(["nats://127.0.0.1:4222"])
          .describe("The local leaf nats-server."),
        credentials: z.string().optional().describe("Creds file for the local connection, if the leaf requires one."),
        user: z.string().optional().describe("User name for the local leaf, if it requires one."),
        password: z.string().optional().describe("Password for `user`."),
        token: z.string().optional().describe("Token for the local leaf, if it requires one."),
        hubDomain: token("hub domain").default("hub").describe("JetStream domain of the cloud hub."),
      })
      .prefault({}),
    buffer: z
      .strictObject({
        stream: token("stream name").default("TELEMETRY").describe("Leaf stream name; the hub stream that sources it has the same name."),
        maxBytes: size().prefault("512MiB").describe("Leaf stream size limit; oldest readings are discarded beyond it."),
        maxAge: duration().prefault("7d").describe("Leaf stream age limit."),
        duplicateWindow: positiveDuration().prefault("2m").describe("JetStream de-duplication window for `Nats-Msg-Id`."),
        queueSize: z.number().int().positive().default(100_000).describe("In-memory readings held while the leaf is unreachable; beyond it the oldest are dropped and counted."),
        maxInFlight: z.number().int().positive().default(1024).describe("Publishes awaiting a PubAck at once."),
      })
      .prefault({}),
    remoteConfig: z
      .union([
        z.literal(false),
        z.strictObject({
          bucket: token("bucket name").default("gateway-config").describe("KV bucket holding `devices.<deviceId>` documents (mirrored onto the leaf)."),
          cache: z.string().optional().describe("Last-known-good document; default `<state>/config.json`."),
        }),
      ])
      .prefault({}),
    state: z.string().min(1).default("/var/lib/edge-gateway").describe("Directory for persisted seq numbers, counters and the config cache."),
    http: z
      .union([
        z.literal(false),
        z.strictObject({
          listen: z
            .string({ error: "listen must be HOST:PORT in quotes, e.g. \"127.0.0.1:9464\"" })
            .regex(/^[^:]*:\d+$/, { error: "listen must be HOST:PORT, e.g. 127.0.0.1:9464" }).default("127.0.0.1:9464").describe("Address of /healthz and /metrics; keep it on loopback."),
        }),
      ])
      .prefault({}),
    ...remoteFields,
  })
  .superRefine((cfg, ctx) => {
    checkSharedSerialPorts(cfg.sensors, ctx);
  });

export type BootstrapConfig = z.output<typeof bootstrapSchema>;
export type BootstrapInput = z.input<typeof bootstrapSchema>;
export type RemoteDocument = z.output<typeof remoteDocumentSchema>;
export type SensorConfig = z.output<typeof sensorSchema>;
export type SensorOf<D extends DriverName> = Extract<SensorConfig, { driver: D }>;
export type OutputConfig = z.output<typeof outputSchema>;
export type MqttConfig = z.output<typeof mqttSchema>;
export type MqttSubscription = z.output<typeof mqttSubscriptionSchema>;
export type LogConfig = z.output<typeof logSchema>;
