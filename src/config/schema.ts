/**
 * The one schema: source of the config types, their defaults and their validation, for the
 * bootstrap file (DESIGN A4), sensor entries (A5) and the remote document (A6).
 * Types are inferred from it (`z.output`), never written twice. It composes what the parts
 * declare: primitives (./primitives.ts), each driver's options (src/drivers/registry.ts),
 * the MQTT source's (src/bridge/mqtt/schema.ts). Each field's `describe()` text feeds the
 * generated reference in docs/configuration.md (`npm run docs:config`).
 */
import * as z from "zod";
import { mqttSchema } from "../bridge/mqtt/schema.js";
import { outputSchema } from "../drivers/gpio/schema.js";
import { DRIVERS, DRIVER_NAMES, serialLineOf, type SensorConfig } from "../drivers/registry.js";
import { duration, positiveDuration, size, token } from "./primitives.js";

export { SUBJECT_TOKEN, token, duration, size, positiveDuration, gpioPin, sensorCommon } from "./primitives.js";
export { DRIVERS, DRIVER_NAMES, type DriverName, type SensorOf, type SensorConfig } from "../drivers/registry.js";
export { simulatedSensor } from "../drivers/simulated.js";
export { serialLinesSensor, pms5003Sensor, nmeaSensor, modbusRegister, modbusRtuSensor } from "../drivers/serial/schema.js";
export { gpioInputSensor, gpioCounterSensor, outputSchema, type OutputConfig } from "../drivers/gpio/schema.js";
export { ds18b20Sensor } from "../drivers/onewire/schema.js";
export {
  mqttSchema,
  mqttSubscriptionSchema,
  topicFilterProblem,
  topicWildcardCount,
  ID_PLACEHOLDER,
  type MqttConfig,
  type MqttSubscription,
} from "../bridge/mqtt/schema.js";

type SensorSchemas = { [D in keyof typeof DRIVERS]: (typeof DRIVERS)[D]["schema"] }[keyof typeof DRIVERS];

/** Any sensor entry: the union of every registered driver's options, by `driver`. */
export const sensorSchema = z.discriminatedUnion(
  "driver",
  Object.values(DRIVERS).map((d) => d.schema) as unknown as [SensorSchemas, ...SensorSchemas[]],
  {
    error: (issue) =>
      issue.code === "invalid_union"
        ? `unknown driver ${JSON.stringify((issue.input as { driver?: unknown } | undefined)?.driver)}: use one of ${DRIVER_NAMES.join(", ")}`
        : undefined,
  },
);

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

/** Enabled sensors naming the same serial `port` share one open port, so they must agree on its line settings. */
function checkSharedSerialPorts(list: readonly SensorConfig[] | undefined, ctx: z.RefinementCtx): void {
  const first = new Map<string, { index: number; id: string; settings: NonNullable<ReturnType<typeof serialLineOf>> }>();
  (list ?? []).forEach((sensor, i) => {
    const settings = serialLineOf(sensor);
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

/**
 * Most sensor entries one document may hold: the status reply, /metrics and the seq state grow
 * with each, and a pushed document with 10,000 entries must be refused, not applied (issue 18).
 */
export const MAX_SENSORS = 500;

const remoteFields = {
  sensors: z
    .array(sensorSchema)
    .max(MAX_SENSORS, { error: (iss) => `${(iss.input as unknown[]).length} sensors; at most ${MAX_SENSORS} per device (status, metrics and seq state grow with each): split them over several devices` })
    .check(uniqueIds("sensors"))
    .default([]),
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
        ackTimeout: positiveDuration()
          .optional()
          .describe("How long to wait for the leaf's PubAck before resending what is in flight (same msg ids). Default 2s for a leaf on loopback, 5s otherwise."),
        maxRatePerSensor: z
          .number()
          .positive()
          .optional()
          .describe("Readings per second one sensor may hand in (burst: one second's worth); the rest are dropped and counted per sensor (`rateLimited`, `events.dropped`). Guards against a chatty push source (GPIO input, MQTT device). Default: no cap."),
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
    shutdownTimeout: positiveDuration()
      .prefault("20s")
      .describe("Upper bound of the whole shutdown (stop drivers → flush queued readings → drain NATS); keep it below systemd's TimeoutStopSec."),
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
export type LogConfig = z.output<typeof logSchema>;
