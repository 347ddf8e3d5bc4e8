/**
 * Remote configuration (DESIGN A3, A6): the device's document lives in the hub KV bucket
 * `gateway-config` under `devices.<deviceId>`; the local leaf holds a mirror of that one key,
 * readable while the uplink is down. `RemoteConfig` opens the mirror, reads and follows the key,
 * and turns every revision into a validated document or a rejection. It knows the KV, not the
 * drivers: applying is the daemon's business.
 *
 * The last applied document is kept as a cache file (last-known-good) for boots where the
 * leaf cannot be read at all.
 */
import { readFile, rm } from "node:fs/promises";
import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, KvWatchInclude, type KV, type KvEntry } from "@nats-io/kv";
import { CONFIG_MAX_VALUE_SIZE, deviceKey, leafMirrorSource } from "../bridge/remote-config-bucket.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { backoff, delay } from "../util/backoff.js";
import { errorMessage, type ConfigProblem } from "../errors.js";
import type { Logger } from "../logger.js";
import { validateDocument } from "./load.js";
import type { RemoteDocument } from "./schema.js";

/** One revision of the device's key, interpreted. */
export type RemoteRevision =
  | {
      status: "valid";
      revision: number;
      created: Date;
      document: RemoteDocument;
      /** The document as written (parsed JSON, before defaults): what the cache keeps. */
      input: Record<string, unknown>;
      bytes: number;
    }
  | { status: "invalid"; revision: number; created: Date; problems: ConfigProblem[]; bytes: number }
  /** The key was deleted or purged on the hub: the device has no remote document any more. */
  | { status: "deleted"; revision: number; created: Date };

export interface RemoteConfigOptions {
  /** Connection to the local leaf. */
  nc: NatsConnection;
  deviceId: string;
  /** Bucket name, on the hub and for the leaf's mirror (default gateway-config). */
  bucket: string;
  /** JetStream domain of the hub (default hub). */
  hubDomain: string;
  /** Documents larger than this are rejected. Default 1 MiB, the hub bucket's default limit. */
  maxDocumentBytes?: number;
  logger: Logger;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Interprets a stored value as a remote document: size limit, UTF-8 JSON object, then the whole
 * A6 schema. Pure; never throws.
 */
export function interpretDocument(value: Uint8Array, maxBytes = CONFIG_MAX_VALUE_SIZE): { ok: true; document: RemoteDocument; input: Record<string, unknown> } | { ok: false; problems: ConfigProblem[] } {
  if (value.length > maxBytes) {
    return {
      ok: false,
      problems: [{ path: "", message: `document is ${value.length} bytes, more than the ${maxBytes}-byte limit: make it smaller (e.g. split sensors across devices)` }],
    };
  }
  let input: unknown;
  try {
    input = JSON.parse(decoder.decode(value));
  } catch (err) {
    return {
      ok: false,
      problems: [{ path: "", message: `not a JSON document (${errorMessage(err)}): write it with \`edge-gateway config push\`, which checks it first` }],
    };
  }
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    return { ok: false, problems: [{ path: "", message: `the document must be a JSON object {"sensors": [...], ...}, not ${Array.isArray(input) ? "an array" : JSON.stringify(input)}` }] };
  }
  const v = validateDocument(input);
  return v.ok ? { ok: true, document: v.value, input: input as Record<string, unknown> } : { ok: false, problems: v.problems };
}

function interpretEntry(e: KvEntry, maxBytes: number): RemoteRevision {
  if (e.operation === "DEL" || e.operation === "PURGE") return { status: "deleted", revision: e.revision, created: e.created };
  const r = interpretDocument(e.value, maxBytes);
  return r.ok
    ? { status: "valid", revision: e.revision, created: e.created, document: r.document, input: r.input, bytes: e.value.length }
    : { status: "invalid", revision: e.revision, created: e.created, problems: r.problems, bytes: e.value.length };
}

/**
 * The device's view of its remote config: the leaf's mirror of the hub bucket, holding only
 * `devices.<deviceId>`. Reads work while the hub is unreachable (they return what the mirror
 * last received).
 */
export class RemoteConfig {
  readonly key: string;
  private readonly opts: RemoteConfigOptions;
  private readonly maxBytes: number;
  private bucket?: Promise<KV>;

  constructor(opts: RemoteConfigOptions) {
    this.opts = opts;
    this.key = deviceKey(opts.deviceId);
    this.maxBytes = opts.maxDocumentBytes ?? CONFIG_MAX_VALUE_SIZE;
  }

  /**
   * Opens (creating if needed) the leaf's mirror. `create` with the same mirror settings is
   * idempotent; `open()` would lose the write redirect to the hub (DESIGN Part C).
   */
  private mirror(): Promise<KV> {
    this.bucket ??= new Kvm(this.opts.nc)
      .create(this.opts.bucket, {
        mirror: leafMirrorSource(this.opts.deviceId, this.opts.bucket, this.opts.hubDomain),
      })
      .catch((err: unknown) => {
        this.bucket = undefined;
        throw err;
      });
    return this.bucket;
  }

  /**
   * The newest revision the mirror holds, or undefined when it holds none (never written, or
   * the mirror has not received it yet).
   * @throws when the leaf's JetStream cannot be reached.
   */
  async current(): Promise<RemoteRevision | undefined> {
    const kv = await this.mirror();
    const e = await kv.get(this.key);
    return e ? interpretEntry(e, this.maxBytes) : undefined;
  }

  /**
   * Follows the key: yields the mirror's current revision, then every new one, in order, each
   * exactly once (`after`: a revision already handled, not yielded again). Failures of the leaf
   * connection are retried with backoff; ends only when `signal` aborts.
   */
  async *follow(signal: AbortSignal, after?: number): AsyncGenerator<RemoteRevision> {
    const log = this.opts.logger;
    let last = after;
    for (let attempt = 0; !signal.aborted; ) {
      try {
        const kv = await this.mirror();
        const watch = await kv.watch({ key: this.key, include: KvWatchInclude.LastValue });
        const stop = () => watch.stop();
        signal.addEventListener("abort", stop, { once: true });
        try {
          for await (const e of watch) {
            attempt = 0;
            // A watch (re)started with LastValue repeats the revision already handled.
            if (e.revision === last) continue;
            last = e.revision;
            yield interpretEntry(e, this.maxBytes);
          }
        } finally {
          signal.removeEventListener("abort", stop);
          watch.stop();
        }
        if (signal.aborted) return;
        log.warn({ key: this.key }, "config watch ended; watching again");
      } catch (err) {
        if (signal.aborted) return;
        if (attempt === 0 || attempt % 10 === 0) {
          log.warn({ err: errorMessage(err), bucket: this.opts.bucket, key: this.key, attempt }, "cannot watch the config mirror on the leaf yet; retrying");
        }
        this.bucket = undefined;
      }
      await delay(Math.min(backoff(attempt++, 250), 5000), signal);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Last-known-good cache

/** What the cache file holds: the last applied document as written, with its revision. */
export interface ConfigCacheFile {
  revision: number;
  savedAt: string;
  document: Record<string, unknown>;
}

export type CachedConfig =
  | { ok: true; revision: number; document: RemoteDocument; input: Record<string, unknown> }
  | { ok: false; reason: string };

/**
 * Writes the cache atomically and durably ({@link writeFileAtomic}, directory fsynced too):
 * a crash leaves either the old or the new file, never a torn one.
 */
export async function writeConfigCache(file: string, revision: number, document: Record<string, unknown>): Promise<void> {
  const body: ConfigCacheFile = { revision, savedAt: new Date().toISOString(), document };
  await writeFileAtomic(file, JSON.stringify(body, null, 2) + "\n", { mode: 0o600 });
}

/** Removes the cache (the remote document was deleted). Never throws for a missing file. */
export async function removeConfigCache(file: string): Promise<void> {
  await rm(file, { force: true });
}

/**
 * Reads and re-validates the cache. Undefined when there is no cache file; `{ok: false}` with
 * the reason when it exists but cannot be used. Never throws.
 */
export async function readConfigCache(file: string): Promise<CachedConfig | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return { ok: false, reason: `cannot read ${file}: ${errorMessage(err)}` };
  }
  let parsed: Partial<ConfigCacheFile>;
  try {
    parsed = JSON.parse(text) as Partial<ConfigCacheFile>;
  } catch (err) {
    return { ok: false, reason: `${file} is not JSON: ${errorMessage(err)}` };
  }
  if (typeof parsed?.revision !== "number" || !parsed.document || typeof parsed.document !== "object") {
    return { ok: false, reason: `${file} is not an edge-gateway config cache (needs revision and document)` };
  }
  const v = validateDocument(parsed.document);
  if (!v.ok) return { ok: false, reason: `${file}: ${v.problems.map((p) => `${p.path || "(root)"}: ${p.message}`).join("; ")}` };
  return { ok: true, revision: parsed.revision, document: v.value, input: parsed.document };
}
