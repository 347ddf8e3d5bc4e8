/**
 * The demo's embedded database: an in-process `cloud ingest` into SQLite on the hub stream, so
 * `edge-gateway demo` can show the readings arriving in a database (`cloud latest` on exit).
 */
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { errorMessage } from "../errors.js";
import { delay } from "../util/backoff.js";
import { HUB_DEFAULTS } from "./hub.js";
import { silentLogger } from "../logger.js";
import { latestTable } from "./format.js";
import { SinkIngestWorker } from "./sink-worker.js";
import type { SqliteDb } from "./sinks/sqlite.js";

export interface DemoDatabase {
  /** The database file. */
  readonly file: string;
  /**
   * Lets the worker store what the hub stream holds (at most 5 s), stops it, returns `cloud
   * latest` for the database as text, closes it. Safe to call twice.
   */
  finish(): Promise<string>;
}

/**
 * Starts ingesting the hub stream into `DIR/readings.db`. Resolves with a message instead when
 * the SQLite binding is not installed (the demo goes on without the database). Never rejects.
 */
export async function startDemoDatabase(hubNc: NatsConnection, dir: string): Promise<DemoDatabase | string> {
  const file = join(dir, "readings.db");
  let db: SqliteDb | undefined;
  try {
    db = await (await import("./sinks/sqlite.js")).SqliteDb.open(file);
    const worker = await SinkIngestWorker.start(hubNc, { queue: "demo-db", sink: db, logger: silentLogger(), batch: 100 });
    let finished: Promise<string> | undefined;
    const store = db;
    return {
      file,
      finish: () =>
        (finished ??= (async () => {
          // The demo stops right after the hub caught up: the worker may still be a batch behind.
          const deadline = Date.now() + 5000;
          const jsm = await jetstreamManager(hubNc, { checkAPI: false }).catch(() => undefined);
          while (jsm && Date.now() < deadline) {
            const ci = await jsm.consumers.info(HUB_DEFAULTS.stream, "demo-db").catch(() => undefined);
            if (!ci || ci.num_pending + ci.num_ack_pending === 0) break;
            await delay(100);
          }
          await worker.stop();
          const text = `${store.count()} readings in the embedded database ${file}; \`edge-gateway cloud latest --db sqlite:${file}\`:\n${latestTable(await store.latest({}))}`;
          await store.close();
          return text;
        })()),
    };
  } catch (err) {
    await db?.close();
    return `embedded database skipped: ${errorMessage(err)}`;
  }
}
