import { readFile } from "node:fs/promises";

export { writeFileAtomic } from "../../util/atomic-write.js";

/** Reads a JSON file; `undefined` when it does not exist. Rejects on unreadable or invalid JSON. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") return undefined;
    throw err;
  }
  return JSON.parse(text) as unknown;
}
