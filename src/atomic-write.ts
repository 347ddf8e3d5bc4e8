import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Writes `text` to `path` atomically: a temp file in the same directory, fsync, rename over the
 * target, fsync the directory. After a crash or a power cut the file holds the old or the new
 * content, never a torn or empty one. Rejects on any I/O error (the temp file is removed).
 *
 * The one atomic-write helper of the project (issue 12): state files use it.
 */
export async function writeFileAtomic(path: string, text: string, opts: { mode?: number } = {}): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fh = await open(tmp, "w", opts.mode ?? 0o644);
    try {
      await fh.writeFile(text, "utf8");
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
