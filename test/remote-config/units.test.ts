import { afterAll, describe, expect, it } from "vitest";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { interpretDocument, readConfigCache, writeConfigCache } from "../../src/config/remote.js";
import { levelControl } from "../../src/logger.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";

afterAll(cleanupTempDirs);

const enc = (s: string) => new TextEncoder().encode(s);

describe("remote config › log level control", () => {
  it("sets the level of every child and grandchild, made before or after the change", () => {
    const lines: { msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as { msg: string });
        done();
      },
    });
    const levels = levelControl(pino({ level: "warn" }, sink));
    const before = levels.logger.child({ part: "a" });
    const grandBefore = before.child({ sensor: "x" });
    before.debug("hidden");
    levels.setLevel("debug");
    const after = levels.logger.child({ part: "b" });
    const grandAfter = after.child({ sensor: "y" });
    for (const [name, l] of [["before", before], ["grandBefore", grandBefore], ["after", after], ["grandAfter", grandAfter]] as const) l.debug(name);
    expect(levels.level).toBe("debug");
    expect(lines.map((l) => l.msg)).toEqual(["before", "grandBefore", "after", "grandAfter"]);
    levels.setLevel("error");
    for (const l of [before, grandBefore, after, grandAfter]) l.warn("hidden");
    expect(lines).toHaveLength(4);
  });
});

describe("remote config › interpreting a stored value", () => {
  it("accepts a valid document, rejects non-JSON, non-objects, oversized and invalid ones with clear errors", () => {
    expect(interpretDocument(enc(JSON.stringify({ sensors: [] })))).toMatchObject({ ok: true, document: { sensors: [], outputs: [], mqtt: null } });
    expect(interpretDocument(enc("{oops"))).toMatchObject({ ok: false, problems: [{ path: "", message: expect.stringMatching(/^not a JSON document/) }] });
    expect(interpretDocument(new Uint8Array([0xff, 0xfe, 0x7b]))).toMatchObject({ ok: false, problems: [{ message: expect.stringMatching(/^not a JSON document/) }] });
    expect(interpretDocument(enc("null"))).toMatchObject({ ok: false, problems: [{ message: expect.stringMatching(/must be a JSON object/) }] });
    expect(interpretDocument(enc(JSON.stringify({ sensors: [] })), 5)).toMatchObject({ ok: false, problems: [{ message: expect.stringMatching(/more than the 5-byte limit/) }] });
    expect(interpretDocument(enc(JSON.stringify({ sensors: [{ id: "a" }] })))).toMatchObject({ ok: false });
  });
});

describe("remote config › last-known-good cache", () => {
  it("writes atomically (no temp file left, old file replaced whole) and reads back the validated document", async () => {
    const dir = await tempDir("egw-cache-");
    const file = join(dir, "sub", "config.json");
    expect(await readConfigCache(file)).toBeUndefined();
    await writeConfigCache(file, 3, { sensors: [{ id: "a", type: "t", driver: "simulated", interval: "1s" }] });
    await writeConfigCache(file, 4, { sensors: [{ id: "b", type: "t", driver: "simulated", interval: "2s" }] });
    expect(await readdir(join(dir, "sub"))).toEqual(["config.json"]);
    const got = await readConfigCache(file);
    expect(got).toMatchObject({ ok: true, revision: 4, document: { sensors: [{ id: "b", interval: 2000 }] } });
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ revision: 4, document: { sensors: [{ id: "b", interval: "2s" }] } });

    await writeFile(file, "{torn");
    expect(await readConfigCache(file)).toMatchObject({ ok: false, reason: expect.stringMatching(/is not JSON/) });
    await writeFile(file, JSON.stringify({ revision: 1, document: { sensors: [{ id: "bad id" }] } }));
    expect(await readConfigCache(file)).toMatchObject({ ok: false, reason: expect.stringMatching(/sensors\[0\]/) });
  });
});
