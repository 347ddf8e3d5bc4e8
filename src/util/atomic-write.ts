/** The one atomic file write of the project (config cache, pulse counters, seq numbers). */
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

let tmpCounter = 0;

/**
 * Writes `data` to `path` atomically and durably: a temp file in the same directory, fsync,
 * rename over the target, fsync the directory. After a crash or power cut the file holds
 * either the old or the new content, never a torn or empty one, and a completed call survives
 * the power cut. Creates the directory if needed. Concurrent calls for one path are safe
 * (each uses its own temp file; the last rename wins). Rejects on I/O errors, leaving no temp
 * file behind.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  try {
    const fh = await open(tmp, "w", opts.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  try {
    const dh = await open(dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  }
}
