import { afterAll, afterEach, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { FleetKeys } from "../../src/cloud/auth.js";
import { findNatsServer } from "../../src/demo/nats-server.js";
import { runCli } from "../helpers/cli.js";
import { cleanupNats, startHub, startLeaf, waitForLeafLink } from "../helpers/nats.js";
import { cleanupTempDirs, killAll, tempDir } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { A, collect } from "./setup.js";

const exec = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

/**
 * Leaf connections the hub logged as created and did not close for failed authentication
 * (revoked, unknown), ignoring the newest one, which may still be in its handshake.
 */
function acceptedLinks(hubLog: string): string[] {
  const lid = (l: string) => /lid:(\d+)/.exec(l)?.[1] ?? "";
  const lines = hubLog.split("\n");
  const refused = new Set(lines.filter((l) => /Leafnode connection closed: (Authentication Failure|Credentials Revoked)/.test(l)).map(lid));
  const created = lines.filter((l) => /Leafnode connection created/.test(l)).map(lid);
  return created.slice(0, -1).filter((id) => !refused.has(id));
}

async function checkConfig(text: string): Promise<void> {
  const dir = await tempDir();
  const conf = join(dir, "hub.conf");
  await writeFile(conf, text);
  // -t parses and validates the whole config (operator JWT, resolver, listeners) and exits.
  await exec(findNatsServer(), ["-t", "-c", conf]);
}

describe("security › cloud hub-config", () => {
  it("prints a single-node and a cluster-node config that nats-server -t accepts, and warns about a 2.9 hub", async () => {
    const dir = await tempDir();
    const keys = join(dir, "keys");
    const store = join(dir, "js");
    const single = await runCli(["cloud", "hub-config", "--keys", keys, "--store-dir", store, "--resolver-dir", join(dir, "acc"), "--listen", "127.0.0.1:14222", "--leaf-listen", "127.0.0.1:17422"]);
    expect(single.code).toBe(0);
    expect(single.stdout).toContain('domain: "hub"');
    expect(single.stdout).toMatch(/operator: "eyJ/);
    expect(single.stdout).toMatch(/resolver \{\n {2}type: full/);
    expect(single.stdout).toContain('listen: "127.0.0.1:17422"');
    // The Debian nats-server here is 2.9.10: older than the fix for tampered leaves.
    expect(single.stderr).toMatch(/warning: the local nats-server 2\.9\.\d+ does not check/);
    await checkConfig(single.stdout);
    // The keys were created once, private, and reused by the next call.
    expect((await stat(join(keys, "fleet.nk"))).mode & 0o077).toBe(0);
    expect((await stat(keys)).mode & 0o077).toBe(0);
    const routes = "nats-route://127.0.0.1:16222,nats-route://127.0.0.1:16223,nats-route://127.0.0.1:16224";
    const node = await runCli(["cloud", "hub-config", "--keys", keys, "--store-dir", store, "--name", "hub-2", "--cluster", "fleet-hub", "--routes", routes, "--cluster-listen", "127.0.0.1:16223"]);
    expect(node.code).toBe(0);
    expect(node.stdout).toContain('server_name: "hub-2"');
    expect(node.stdout).toContain('name: "fleet-hub"');
    expect(node.stdout).toContain('"nats-route://127.0.0.1:16224"');
    // Same keys → same operator and accounts on every node.
    expect(node.stdout.match(/operator: "[^"]+"/)![0]).toBe(single.stdout.match(/operator: "[^"]+"/)![0]);
    await checkConfig(node.stdout);
    const bad = await runCli(["cloud", "hub-config", "--keys", keys, "--cluster", "x"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("--cluster needs --routes");
  }, 60_000);
});

describe("security › add-device / remove-device", () => {
  it("issues a device credential without touching the hub, and revocation drops the live link for good", async () => {
    const dir = await tempDir();
    const keysDir = join(dir, "keys");
    const keys = await FleetKeys.open(keysDir);
    const hub = await startHub("hub", keys);
    cleanups.push(() => hub.stop());
    const ops = ["--server", hub.url, "--creds", keys.opsCredsPath, "--keys", keysDir];
    const init = await runCli(["cloud", "init", ...ops]);
    expect(init.stderr).toMatch(/warning: nats-server 2\.9\.\d+ does not check/);
    expect(init.code).toBe(0);
    expect(init.stdout).toContain("created: stream LATEST");
    const credsFile = join(dir, `${A}.creds`);
    const add = await runCli(["cloud", "add-device", A, "--creds-out", credsFile, ...ops]);
    expect(add.stderr).toBe("");
    expect(add.code).toBe(0);
    expect(add.stdout).toContain(`credential for device ${A} in ${credsFile}`);
    expect((await stat(credsFile)).mode & 0o077).toBe(0);
    expect(await readFile(credsFile, "utf8")).toMatch(/BEGIN NATS USER JWT/);
    // An existing credential is never overwritten.
    const again = await runCli(["cloud", "add-device", A, "--creds-out", credsFile, ...ops]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("it must not exist yet");

    const leaf = await startLeaf(A, hub.leafPort, { creds: credsFile });
    cleanups.push(() => leaf.stop());
    await waitForLeafLink(leaf);
    const hubNc = await hub.connect();
    cleanups.push(() => hubNc.close());
    const seen = collect(hubNc, "sensors.>");
    await hubNc.flush();
    const leafNc = await leaf.connect();
    cleanups.push(() => leafNc.close());
    let n = 0;
    const pub = setInterval(() => leafNc.publish(`sensors.temperature.eu-west.${A}.t`, String(++n)), 20);
    cleanups.push(async () => clearInterval(pub));
    await waitFor(() => seen.got.length >= 5, { what: "A's live readings at the hub" });

    const remove = await runCli(["cloud", "remove-device", A, ...ops]);
    expect(remove.stderr).toBe("");
    expect(remove.code).toBe(0);
    expect(remove.stdout).toContain(`revoked: 1 credential(s) of device ${A}`);
    // The live link is closed by the hub, not only future connects refused.
    await waitFor(() => !leaf.leafLinkUp(), { timeout: 10_000, what: "the hub to drop A's live link" });
    const lastBefore = seen.got.length;
    expect(hub.log()).toMatch(/Leafnode connection closed: Credentials Revoked/);
    const refusals = () => hub.log().split("\n").filter((l) => /Leafnode connection closed: Authentication Failure/.test(l)).length;
    // It keeps trying and is refused every time.
    await waitFor(() => refusals() >= 3, { timeout: 30_000, what: "three refused reconnects of A" });
    expect(acceptedLinks(hub.log())).toEqual([]);
    expect(seen.got.length).toBe(lastBefore);

    // A hub restarted on its store keeps the revocation (the resolver's stored JWT is newer than the preload).
    await hub.restart();
    const after = refusals();
    await waitFor(() => refusals() > after + 1, { timeout: 30_000, what: "refused reconnects after the hub restart" });
    expect(acceptedLinks(hub.log())).toEqual([]);
    expect(seen.got.length).toBe(lastBefore);
    const removeAgain = await runCli(["cloud", "remove-device", A, ...ops]);
    expect(removeAgain.stderr).toBe("");
    expect(removeAgain.code).toBe(0);
    expect(removeAgain.stdout).toContain("had no credential left to revoke");
  }, 120_000);
});
