/**
 * Turns one MQTT message into a Reading for one subscription. Pure: no I/O, no counters.
 */
import type { MqttSubscription } from "./schema.js";
import type { Reading } from "../../drivers/types.js";
import { getPath, MISSING, parseTime, toNumber } from "./payload.js";
import { renderId } from "./topic.js";
import type { MqttRejectReason } from "./types.js";

/** Payloads longer than this are skipped (`too-long`). */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

const NOT_JSON: unique symbol = Symbol("not-json");

/** A received payload; decodes text and JSON once even when several subscriptions read it. */
export class Payload {
  readonly bytes: Buffer;
  #text: string | undefined;
  #json: unknown = undefined;
  #parsed = false;
  constructor(bytes: Buffer) {
    this.bytes = bytes;
  }
  get text(): string {
    return (this.#text ??= this.bytes.toString("utf8"));
  }
  /** The parsed JSON, or NOT_JSON. */
  json(): unknown {
    if (!this.#parsed) {
      this.#parsed = true;
      try {
        this.#json = JSON.parse(this.text);
      } catch {
        this.#json = NOT_JSON;
      }
    }
    return this.#json;
  }
}

export type Decoded =
  | { ok: true; reading: Reading; badTime: boolean }
  | { ok: false; reason: MqttRejectReason };

const fail = (reason: MqttRejectReason): Decoded => ({ ok: false, reason });

/**
 * Decodes `payload` for `sub`, whose topic filter matched with `captures`. Never throws.
 * `receivedAt` is used as `ts` unless `timePath` names a usable time.
 */
export function decodeMessage(sub: MqttSubscription, captures: readonly string[], payload: Payload, receivedAt: number): Decoded {
  const sensor = renderId(sub.id, captures);
  if (sensor === undefined) return fail("invalid-id");
  if (payload.bytes.length === 0) return fail("empty");
  if (payload.bytes.length > MAX_PAYLOAD_BYTES) return fail("too-long");

  let value: number | undefined;
  let values: Record<string, number> | undefined;

  if (sub.valuePath === undefined && sub.values === undefined) {
    value = toNumber(payload.text);
    if (value === undefined) {
      const j = payload.json();
      // A JSON string or boolean (`"21.5"`, `true`) is still a plain value; objects are not.
      if (j !== NOT_JSON && (typeof j === "string" || typeof j === "boolean")) value = toNumber(j);
    }
    if (value === undefined) return fail("not-numeric");
  } else {
    const root = payload.json();
    if (root === NOT_JSON) return fail("not-json");
    if (sub.valuePath !== undefined) {
      const v = getPath(root, sub.valuePath);
      if (v === MISSING || v === null) return fail("missing-path");
      value = toNumber(v);
      if (value === undefined) return fail("not-numeric");
    } else {
      // Each named value stands alone: absent or non-numeric ones are left out; the message is
      // skipped only when none is left (devices often omit fields in some messages).
      let firstFailure: MqttRejectReason | undefined;
      for (const [name, path] of Object.entries(sub.values ?? {})) {
        const v = getPath(root, path);
        const n = v === MISSING || v === null ? undefined : toNumber(v);
        if (n === undefined) {
          firstFailure ??= v === MISSING || v === null ? "missing-path" : "not-numeric";
          continue;
        }
        (values ??= {})[name] = n;
      }
      if (values === undefined) return fail(firstFailure ?? "missing-path");
    }
  }

  let ts = receivedAt;
  let badTime = false;
  if (sub.timePath !== undefined) {
    const root = payload.json();
    const raw = root === NOT_JSON ? MISSING : getPath(root, sub.timePath);
    const t = raw === MISSING ? undefined : parseTime(raw, receivedAt);
    if (t === undefined) badTime = true;
    else ts = t;
  }

  // Built field by field (no spreads: this runs for every message).
  const reading = { sensor, type: sub.type, ts } as Reading;
  if (values !== undefined) reading.values = values;
  else reading.value = value;
  if (sub.unit !== undefined) reading.unit = sub.unit;
  if (values !== undefined && sub.units !== undefined) reading.units = pick(sub.units, values);
  reading.quality = badTime ? "uncertain" : "good";
  return { ok: true, reading, badTime };
}

function pick(units: Record<string, string>, values: Record<string, number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(values)) if (units[k] !== undefined) out[k] = units[k];
  return out;
}
