import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import { ensureConfigBucket } from "../../src/bridge/remote-config-bucket.js";
import { cleanupNats, startJetStreamServer, type NatsServer } from "../helpers/nats.js";
import { cleanupTempDirs, killAll, tempDir } from "../helpers/procs.js";
import { runCli } from "../helpers/cli.js";

let server: NatsServer;
let nc: NatsConnection;
let kv: KV;
let dir: string;

beforeAll(async () => {
  server = await startJetStreamServer("cfg-hub");
  nc = await server.connect();
  // Small max value size so the "too large" case needs no megabyte files.
  kv = await ensureConfigBucket(nc, { maxValueSize: 4096 });
  dir = await tempDir("egw-cfg-cli-");
});
afterEach(async () => {
  await kv.purge("devices.pi-1").catch(() => undefined);
});
afterAll(async () => {
  await nc?.close();
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

const sensor = (id: string, interval = "1s") => ({ id, type: "temperature", driver: "simulated", interval });

async function docFile(name: string, body: unknown): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, typeof body === "string" ? body : JSON.stringify(body));
  return f;
}

const revisionOf = (out: string) => Number(/revision (\d+)/.exec(out)?.[1]);

describe("config CLI › push, get, history", () => {
  it("pushes a valid document, prints the revision; get prints document and revision; history lists revisions", async () => {
    const f1 = await docFile("one.json", { sensors: [sensor("a")] });
    const p1 = await runCli(["config", "push", "pi-1", f1, "--server", server.url]);
    expect(p1.stderr).toBe("");
    expect(p1.code).toBe(0);
    const r1 = revisionOf(p1.stdout);
    expect((await kv.get("devices.pi-1"))?.revision).toBe(r1);

    // YAML is accepted and stored as JSON.
    const f2 = await docFile("two.yaml", "sensors:\n  - { id: a, type: temperature, driver: simulated, interval: 2s }\nlog: { level: debug }\n");
    const p2 = await runCli(["config", "push", "pi-1", f2, "--server", server.url]);
    expect(p2.code).toBe(0);
    const r2 = revisionOf(p2.stdout);
    expect(r2).toBeGreaterThan(r1);
    expect((await kv.get("devices.pi-1"))?.json()).toEqual({ sensors: [sensor("a", "2s")], log: { level: "debug" } });

    const g = await runCli(["config", "get", "pi-1", "--server", server.url]);
    expect(g.code).toBe(0);
    expect(JSON.parse(g.stdout)).toEqual({ sensors: [sensor("a", "2s")], log: { level: "debug" } });
    expect(g.stderr).toMatch(new RegExp(`devices\\.pi-1 revision ${r2}`));

    const h = await runCli(["config", "history", "pi-1", "--server", server.url, "--json"]);
    expect(h.code).toBe(0);
    const rows = JSON.parse(h.stdout) as { revision: number; operation: string; size: number; created: string }[];
    // Earlier tests may have left a PURGE marker for this key: this test's two puts are last.
    const puts = rows.filter((r) => r.operation === "PUT");
    expect(puts.map((r) => r.revision)).toEqual([r1, r2]);
    expect(rows.map((r) => r.revision).slice(-2)).toEqual([r1, r2]);
    expect(puts.every((r) => r.size > 0 && !Number.isNaN(Date.parse(r.created)))).toBe(true);
  });

  it("refuses an invalid file with every error and its path, exit 1, and writes nothing", async () => {
    const good = await docFile("good.json", { sensors: [sensor("a")] });
    expect((await runCli(["config", "push", "pi-1", good, "--server", server.url])).code).toBe(0);
    const before = (await kv.get("devices.pi-1"))!.revision;
    const bad = await docFile("bad.json", {
      sensors: [
        { id: "bad id", type: "temperature", driver: "simulated", interval: "soon" },
        { id: "b", type: "temperature", driver: "warp-drive" },
      ],
      colour: "blue",
    });
    const p = await runCli(["config", "push", "pi-1", bad, "--server", server.url]);
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/nothing was written/);
    expect(p.stderr).toMatch(/sensors\[0\]\.id: .*not a valid subject token/);
    expect(p.stderr).toMatch(/sensors\[0\]\.interval: .*not a duration/);
    expect(p.stderr).toMatch(/sensors\[1\]\.driver: .*unknown driver "warp-drive"/);
    expect(p.stderr).toMatch(/\(root\): unknown key "colour"/);
    expect((await kv.get("devices.pi-1"))!.revision).toBe(before);

    const notYaml = await docFile("broken.yaml", "sensors: [ { id: a, \n");
    const q = await runCli(["config", "push", "pi-1", notYaml, "--server", server.url]);
    expect(q.code).toBe(1);
    expect(q.stderr).toMatch(/YAML syntax error/);
    expect((await kv.get("devices.pi-1"))!.revision).toBe(before);
  });

  it("--expect-revision: pushes when the revision matches, exits 1 on a conflict naming the current revision", async () => {
    const f = await docFile("e.json", { sensors: [sensor("a")] });
    // 0 = only when the device has no document yet.
    const first = await runCli(["config", "push", "pi-1", f, "--server", server.url, "--expect-revision", "0"]);
    expect(first.code).toBe(0);
    const r1 = revisionOf(first.stdout);
    const again = await runCli(["config", "push", "pi-1", f, "--server", server.url, "--expect-revision", "0"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(new RegExp(`conflict: devices\\.pi-1 is at revision ${r1}`));

    // Someone else writes meanwhile.
    const theirs = await kv.put("devices.pi-1", JSON.stringify({ sensors: [sensor("theirs")] }));
    const stale = await runCli(["config", "push", "pi-1", f, "--server", server.url, "--expect-revision", String(r1)]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(new RegExp(`conflict: devices\\.pi-1 is at revision ${theirs}, not revision ${r1}.*--expect-revision ${theirs}`, "s"));
    expect((await kv.get("devices.pi-1"))!.json()).toEqual({ sensors: [sensor("theirs")] });

    const ok = await runCli(["config", "push", "pi-1", f, "--server", server.url, "--expect-revision", String(theirs)]);
    expect(ok.code).toBe(0);
    expect(revisionOf(ok.stdout)).toBeGreaterThan(theirs);
  });

  it("refuses a document larger than the bucket's max value size with exit 1 and writes nothing", async () => {
    const many = Array.from({ length: 60 }, (_, i) => ({ ...sensor(`padding-sensor-${i}`), enabled: false, unit: "Cel" }));
    const f = await docFile("big.json", { sensors: many });
    const before = (await kv.get("devices.pi-1"))?.revision;
    const p = await runCli(["config", "push", "pi-1", f, "--server", server.url]);
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/accepts at most 4096 bytes.*Nothing was written/);
    expect((await kv.get("devices.pi-1"))?.revision).toBe(before);
  });

  it("exits 2 with a clear message when the hub cannot be reached or has no bucket; get of a missing document exits 1", async () => {
    const f = await docFile("u.json", { sensors: [] });
    const down = await runCli(["config", "push", "pi-1", f, "--server", "nats://127.0.0.1:1"]);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/cannot reach nats:\/\/127\.0\.0\.1:1/);
    const noBucket = await runCli(["config", "get", "pi-1", "--server", server.url, "--bucket", "nope"]);
    expect(noBucket.code).toBe(2);
    expect(noBucket.stderr).toMatch(/no KV bucket "nope".*cloud init/);
    const missing = await runCli(["config", "get", "pi-1", "--server", server.url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/has no config document/);
  });
});

describe("edge-gateway config get --revision", () => {
  it("prints an older revision kept in the history, so it can be pushed back (rollback)", async () => {
    const f1 = join(dir, "v1.json");
    await writeFile(f1, JSON.stringify({ sensors: [sensor("a", "1s")] }));
    const f2 = join(dir, "v2.json");
    await writeFile(f2, JSON.stringify({ sensors: [sensor("a", "2s")] }));
    const p1 = await runCli(["config", "push", "pi-1", f1, "--server", server.url]);
    const r1 = Number(/revision (\d+)/.exec(p1.stdout)![1]);
    await runCli(["config", "push", "pi-1", f2, "--server", server.url]);
    // NATS_URL stands in for --server.
    const old = await runCli(["config", "get", "pi-1", "--revision", String(r1)], { env: { ...process.env, NATS_URL: server.url } });
    expect(old.code).toBe(0);
    expect(JSON.parse(old.stdout)).toEqual({ sensors: [sensor("a", "1s")] });
    const bad = await runCli(["config", "get", "pi-1", "--revision", "x", "--server", server.url]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--revision must be a revision number/);
  });
});
