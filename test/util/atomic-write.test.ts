import { afterAll, describe, expect, it } from "vitest";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../../src/util/atomic-write.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";

afterAll(cleanupTempDirs);

describe("util › writeFileAtomic", () => {
  it("creates the directory, replaces the content, keeps the mode and leaves no temp file", async () => {
    const dir = join(await tempDir(), "state", "deep");
    const file = join(dir, "config.json");
    await writeFileAtomic(file, "first\n", { mode: 0o600 });
    await Promise.all([writeFileAtomic(file, "second\n", { mode: 0o600 }), writeFileAtomic(file, "second\n", { mode: 0o600 })]);
    expect(await readFile(file, "utf8")).toBe("second\n");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(["config.json"]);
  });

  it("rejects when the target cannot be replaced, and removes its temp file", async () => {
    const dir = await tempDir();
    const target = join(dir, "is-a-dir");
    await writeFileAtomic(join(target, "x"), "x");
    await expect(writeFileAtomic(target, "y")).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(["is-a-dir"]);
  });
});
