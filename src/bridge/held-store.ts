import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Reading } from "../drivers/types.js";
import type { Logger } from "../logger.js";
import { writeFileAtomic } from "../util/atomic-write.js";

/**
 * Readings the publisher still held when the daemon stopped without reaching its leaf (or when
 * it withheld the systemd watchdog on a publish stall, just before systemd kills it): kept in
 * `<state>/held.json` so the next start publishes them first, under the same seqs. A reading of
 * the file that the leaf did store after all has the same `Nats-Msg-Id`, so the leaf drops the
 * second copy (within its duplicate window, `buffer.duplicateWindow`).
 *
 * The file is removed once every reading of it was stored (or counted as lost), so a crash in
 * between loads it again: nothing of it is lost to a restart loop either.
 */
export interface HeldReading {
  reading: Reading;
  /** The seq it was given (kept: the msg id names it), or none yet. */
  seq?: number;
}

const FILE = "held.json";
const VERSION = 1;

function path(stateDir: string): string {
  return join(stateDir, FILE);
}

/** Writes `readings` (in order) durably. Rejects on I/O errors. */
export async function saveHeld(stateDir: string, readings: HeldReading[]): Promise<void> {
  await writeFileAtomic(path(stateDir), JSON.stringify({ v: VERSION, savedAt: Date.now(), readings }));
}

function isReading(r: unknown): r is Reading {
  if (!r || typeof r !== "object") return false;
  const x = r as Record<string, unknown>;
  return typeof x.sensor === "string" && typeof x.type === "string" && typeof x.ts === "number" && typeof x.quality === "string" && (typeof x.value === "number" || (typeof x.values === "object" && x.values !== null));
}

/**
 * The readings of the file, or none. A file that cannot be parsed is logged and set aside as
 * `held.json.bad` (never a reason not to start).
 */
export async function loadHeld(stateDir: string, logger: Logger): Promise<HeldReading[]> {
  let text: string;
  try {
    text = await readFile(path(stateDir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    logger.error({ err, file: path(stateDir) }, "cannot read the readings held at the last stop; starting without them");
    return [];
  }
  try {
    const data = JSON.parse(text) as { v?: unknown; readings?: unknown };
    if (data.v !== VERSION || !Array.isArray(data.readings)) throw new Error(`expected {"v":${VERSION},"readings":[…]}`);
    const out: HeldReading[] = [];
    let skipped = 0;
    for (const h of data.readings as { reading?: unknown; seq?: unknown }[]) {
      if (!isReading(h?.reading) || (h.seq !== undefined && !(Number.isInteger(h.seq) && (h.seq as number) > 0))) {
        skipped++;
        continue;
      }
      out.push(h.seq === undefined ? { reading: h.reading } : { reading: h.reading, seq: h.seq as number });
    }
    if (skipped > 0) logger.warn({ file: path(stateDir), skipped }, "held readings file: skipped entries that are not readings");
    return out;
  } catch (err) {
    logger.error({ err: (err as Error).message, file: path(stateDir) }, "held readings file is not valid; set aside as held.json.bad");
    await writeFileAtomic(`${path(stateDir)}.bad`, text).catch(() => undefined);
    await clearHeld(stateDir);
    return [];
  }
}

/** Removes the file (no error when it does not exist). */
export async function clearHeld(stateDir: string): Promise<void> {
  await rm(path(stateDir), { force: true });
}
