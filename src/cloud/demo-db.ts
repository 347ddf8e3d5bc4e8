/**
 * The demo's embedded database: an in-process `cloud ingest` into SQLite on the hub stream, so
 * `edge-gateway demo` can show the readings arriving in a database (`cloud latest` on exit).
 */
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { errorMessage } from "../errors.js";
import { silentLogger } from "../logger.js";
import { latestTable } from "./format.js";
import { SinkIngestWorker } from "./sink-worker.js";
import type { SqliteDb } from "./sinks/sqlite.js";

export interface DemoDatabase {
  /** The database file. */
  readonly file: string;
  /** Stops the worker, returns `cloud latest` for the database as text, closes it. Safe to call twice. */
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
