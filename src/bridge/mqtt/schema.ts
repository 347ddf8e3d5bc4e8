/** Options of the MQTT source (`mqtt:`): broker, session and subscriptions (docs/mqtt.md). */
import * as z from "zod";
import { positiveDuration, sensorCommon, size, token } from "../../config/primitives.js";

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
    range: sensorCommon.range,
    deadband: sensorCommon.deadband,
    heartbeat: positiveDuration().optional().describe("Longest time between two published readings of one sensor id when nothing changes (with `deadband`). Default 60s."),
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
  maxMessageSize: size()
    .prefault("256KiB")
    .describe(
      "Longest payload turned into a reading; longer ones are skipped and counted (`too-long`). With MQTT 5 the broker is also told the largest packet to send (this + 64 KiB for topic and properties): bigger ones it discards before they reach the gateway.",
    ),
});

export type MqttConfig = z.output<typeof mqttSchema>;
export type MqttSubscription = z.output<typeof mqttSubscriptionSchema>;
