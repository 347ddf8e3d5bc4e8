/**
 * Renders docs/configuration.md from the schema (`npm run docs:config`), so the reference
 * cannot drift from what the daemon accepts: a test fails when the committed file is stale.
 */
import * as z from "zod";
import { bootstrapSchema, mqttSchema, mqttSubscriptionSchema, modbusRegister, outputSchema, sensorSchema } from "./schema.js";

type Json = {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  default?: unknown;
  description?: string;
  properties?: Record<string, Json>;
  required?: string[];
  items?: Json;
  anyOf?: Json[];
  oneOf?: Json[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  prefixItems?: Json[];
  format?: string;
};

function jsonSchema(schema: z.ZodType): Json {
  return z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Json;
}

function typeOf(s: Json): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((e) => `\`${String(e)}\``).join(" \\| ");
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.map(typeOf).join(" \\| ");
  if (s.type === "array") return s.prefixItems ? `[${s.prefixItems.map(typeOf).join(", ")}]` : `list of ${s.items ? typeOf(s.items) : "any"}`;
  if (s.format === "duration" || s.format === "size") return s.format;
  if (Array.isArray(s.type)) return s.type.join(" \\| ");
  if (s.type === "string" && s.pattern === "^[A-Za-z0-9_-]+$") return "token";
  if (s.type === "object" && !s.properties) return "map";
  return s.type ?? "any";
}

function row(key: string, s: Json, required: boolean): string {
  const def = s.default === undefined ? (required ? "**required**" : "") : `\`${JSON.stringify(s.default)}\``;
  const desc = (s.description ?? "").replace(/\|/g, "\\|").replace(/\n/g, " ");
  return `| \`${key}\` | ${typeOf(s)} | ${def} | ${desc} |`;
}

function table(s: Json, prefix = "", skip: string[] = []): string[] {
  const lines = ["| key | type | default | description |", "|---|---|---|---|"];
  const walk = (obj: Json, pre: string) => {
    for (const [k, v] of Object.entries(obj.properties ?? {})) {
      if (skip.includes(k)) continue;
      const key = pre + k;
      const nested = v.properties ? v : (v.anyOf ?? []).find((a) => a.properties);
      if (nested && !["sensors", "outputs", "mqtt", "registers", "subscriptions"].includes(k)) {
        if (v.anyOf) lines.push(row(key, { ...v, properties: undefined }, obj.required?.includes(k) ?? false));
        walk(nested, `${key}.`);
      } else lines.push(row(key, v, obj.required?.includes(k) ?? false));
    }
  };
  walk(s, prefix);
  return lines;
}

const COMMON = ["id", "type", "interval", "unit", "range", "deadband", "heartbeat", "enabled"];

/** The Markdown reference. Pure. */
export function renderConfigReference(): string {
  const out: string[] = [
    "# Configuration reference",
    "",
    "Generated from `src/config/schema.ts` by `npm run docs:config`; do not edit by hand.",
    "Durations accept `500ms`, `5s`, `2m`, `1h`, `7d` (or milliseconds); sizes accept `512MiB`, `1GB` (or bytes).",
    "Every `token` must match `^[A-Za-z0-9_-]+$`: it becomes a NATS subject token.",
    "",
    "## Bootstrap file (`/etc/edge-gateway/gateway.yaml`)",
    "",
    ...table(jsonSchema(bootstrapSchema), "", ["sensors", "outputs", "mqtt"]),
    "| `sensors` | list of sensor | `[]` | See below. |",
    "| `outputs` | list of output | `[]` | GPIO outputs, see below. |",
    "| `mqtt` | object \\| null | `null` | MQTT ingest, see below. |",
    "",
    "The remote document (KV `gateway-config`, key `devices.<deviceId>`) has the keys `sensors`, `outputs`, `mqtt` and `log` with the same schema.",
    "",
    "## Sensors",
    "",
    "Common to every driver:",
    "",
  ];
  const variants = (jsonSchema(sensorSchema).oneOf ?? jsonSchema(sensorSchema).anyOf ?? []) as Json[];
  const first = variants[0]!;
  out.push("| key | type | default | description |", "|---|---|---|---|");
  for (const k of COMMON) out.push(row(k, first.properties![k]!, first.required?.includes(k) ?? false));
  for (const v of variants) {
    const name = String(v.properties?.driver?.const);
    out.push("", `### \`driver: ${name}\``, "");
    const own = table({ ...v, properties: Object.fromEntries(Object.entries(v.properties ?? {}).filter(([k]) => !COMMON.includes(k) && k !== "driver")) });
    out.push(...(own.length > 2 ? own : ["No options beyond the common ones."]));
  }
  out.push("", "### Modbus `registers[]`", "", ...table(jsonSchema(modbusRegister)));
  out.push("", "## `outputs[]`", "", ...table(jsonSchema(outputSchema)));
  out.push("", "## `mqtt`", "", ...table(jsonSchema(mqttSchema), "", ["subscriptions"]), "| `subscriptions` | list | `[]` | See below. |");
  out.push("", "### `mqtt.subscriptions[]`", "", ...table(jsonSchema(mqttSubscriptionSchema)), "");
  return out.join("\n");
}
