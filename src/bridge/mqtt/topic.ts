/**
 * MQTT topic matching and sensor-id templating. Pure functions, no I/O.
 *
 * Rules (documented in docs/mqtt.md):
 * - `+` matches exactly one level (possibly empty); `#` matches the rest of the topic, zero or
 *   more levels, including the parent (`a/#` matches `a`).
 * - Each wildcard captures what it matched, in order: `{1}`, `{2}`… A `#` capture is the matched
 *   levels joined with `/` (then sanitised, so `/` becomes `_`); it is empty when `#` matched
 *   zero levels.
 * - A filter starting with a wildcard does not match topics starting with `$` (MQTT 4.7.2).
 * - Sanitising: every character of a capture outside `[A-Za-z0-9_-]` becomes `_` (one `_` per
 *   character; non-ASCII letters too). Distinct topics can thus map to the same id
 *   (`a.b` and `a b` → `a_b`). A rendered id that is empty is rejected (`invalid-id`).
 */
import { SUBJECT_TOKEN } from "../../config/primitives.js";
import { ID_PLACEHOLDER } from "./schema.js";

/** The wildcard captures of `topic` under `filter`, or undefined if it does not match. */
export function matchTopic(filter: string, topic: string): string[] | undefined {
  const f = filter.split("/");
  const t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return undefined;
  const captures: string[] = [];
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === "#") {
      captures.push(t.slice(i).join("/"));
      return captures;
    }
    if (i >= t.length) return undefined;
    if (level === "+") captures.push(t[i] ?? "");
    else if (level !== t[i]) return undefined;
  }
  return f.length === t.length ? captures : undefined;
}

/**
 * Each filter's captures per topic seen (frozen, so `renderId` remembers its ids per topic; null:
 * no match): a topic is matched once, not per message (issue 13: ~10 % of the ingest's CPU).
 * At most `limit` topics, then it starts over (a broker with endless topics costs no memory).
 */
export class TopicCaptures {
  private readonly byTopic = new Map<string, readonly (readonly string[] | null)[]>();

  constructor(
    private readonly filters: readonly string[],
    private readonly limit = 10_000,
  ) {}

  /** Index i: the captures of `topic` under filters[i], or null. */
  of(topic: string): readonly (readonly string[] | null)[] {
    let all = this.byTopic.get(topic);
    if (!all) {
      if (this.byTopic.size >= this.limit) this.byTopic.clear();
      all = this.filters.map((f) => {
        const c = matchTopic(f, topic);
        return c ? Object.freeze(c) : null;
      });
      this.byTopic.set(topic, all);
    }
    return all;
  }
}

/** Replaces every character that may not appear in a subject token with `_`. */
export function sanitizeLevel(level: string): string {
  return level.replace(/[^A-Za-z0-9_-]/gu, "_");
}

/**
 * Ids already rendered, per template and captures array. The ingest keeps one (frozen)
 * captures array per topic it has seen, so each topic's id is rendered once, not per message
 * (profiled: rendering was ~3 % of the ingest's CPU). Keys are weak: a dropped array frees its entry.
 */
const rendered = new Map<string, WeakMap<readonly string[], string | null>>();

/**
 * Renders an id template (`tasmota-{1}`) with sanitised captures. Returns undefined when the
 * result is not a valid subject token (only possible when it is empty, or when the template
 * names a capture that does not exist — the schema rejects such templates).
 * `captures` must not be changed afterwards (the result is remembered per array).
 */
export function renderId(template: string, captures: readonly string[]): string | undefined {
  let byCaptures = rendered.get(template);
  if (!byCaptures) rendered.set(template, (byCaptures = new WeakMap()));
  const hit = byCaptures.get(captures);
  if (hit !== undefined) return hit ?? undefined;
  let missing = false;
  const id = template.replace(ID_PLACEHOLDER, (_, n: string) => {
    const c = captures[Number(n) - 1];
    if (c === undefined) missing = true;
    return sanitizeLevel(c ?? "");
  });
  const result = !missing && SUBJECT_TOKEN.test(id) ? id : undefined;
  byCaptures.set(captures, result ?? null);
  return result;
}
