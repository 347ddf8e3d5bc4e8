/**
 * scripts/install.sh in a throwaway root (`--root DIR`): the real script, real
 * systemd-sysusers and `systemctl --root`, and a real `npm ci --omit=dev` of the production
 * dependencies (native epoll built here), as on a Pi.
 */
import { cp, readFile, stat, writeFile, lstat } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseYaml, validateBootstrap } from "../../src/config/load.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";
import { REPO, explain, run, treeListing } from "./run.js";

const INSTALL = join(REPO, "scripts/install.sh");
/** The real CLI is built from src/cli (the lead's issue). */

let source: string;
let root: string;

const install = (...args: string[]) => run("bash", [INSTALL, "--source", source, "--root", root, ...args], { timeoutMs: 240_000 });

function idOf(file: string, name: string): Promise<number> {
  return readFile(file, "utf8").then((t) => {
    const line = t.split("\n").find((l) => l.startsWith(`${name}:`));
    if (!line) throw new Error(`${name} not in ${file}`);
    return Number(line.split(":")[2]);
  });
}

beforeAll(async () => {
  // A checkout as `npm ci` leaves it: package files, bin/, dist/, systemd/.
  source = await tempDir("egw-src-");
  for (const f of ["package.json", "package-lock.json", "bin", "dist", "systemd"]) {
    await cp(join(REPO, f), join(source, f), { recursive: true });
  }
  root = await tempDir("egw-root-");
  const r = await install("--device-id", "pi-test", "--region", "eu-test");
  expect(r.code, explain(r)).toBe(0);
}, 240_000);

afterAll(cleanupTempDirs);

describe("scripts/install.sh --root", () => {
  it("passes shellcheck", async () => {
    const have = (await run("shellcheck", ["--version"])).code === 0;
    if (!have) {
      const r = await run("bash", [join(REPO, "scripts/install-lint-tools.sh")], { timeoutMs: 180_000 });
      expect(r.code, explain(r)).toBe(0);
    }
    const r = await run("shellcheck", [INSTALL, join(REPO, "scripts/install-lint-tools.sh")]);
    expect(r.code, explain(r)).toBe(0);
  });

  it("--help explains the options; an unknown option exits 1", async () => {
    const help = await run("bash", [INSTALL, "--help"]);
    expect(help.code).toBe(0);
    for (const opt of ["--hub", "--creds", "--tls-ca", "--root", "--uninstall", "--purge"]) expect(help.stdout).toContain(opt);
    const bad = await run("bash", [INSTALL, "--frobnicate"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("unknown argument '--frobnicate'");
  });

  it("refuses a checkout that was not built (no dist/bundle/main.js), exit 2", async () => {
    const unbuilt = await tempDir("egw-unbuilt-");
    await cp(join(REPO, "package.json"), join(unbuilt, "package.json"));
    const r = await run("bash", [INSTALL, "--source", unbuilt, "--root", await tempDir("egw-root2-")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("run 'npm ci'");
  });

  it("creates the users, with edge-gateway in dialout and gpio", async () => {
    const passwd = await readFile(join(root, "etc/passwd"), "utf8");
    expect(passwd).toMatch(/^edge-gateway:x:\d+:\d+:[^:]*:\/nonexistent:\/usr\/sbin\/nologin$/m);
    expect(passwd).toMatch(/^edge-gateway-nats:x:\d+:\d+:/m);
    const group = await readFile(join(root, "etc/group"), "utf8");
    expect(group).toMatch(/^dialout:x:\d+:(.*,)?edge-gateway(,.*)?$/m);
    expect(group).toMatch(/^gpio:x:\d+:(.*,)?edge-gateway(,.*)?$/m);
  });

  it("installs the units, enabled through multi-user.target", async () => {
    for (const unit of ["edge-gateway.service", "edge-gateway-nats.service"]) {
      expect(await readFile(join(root, "etc/systemd/system", unit), "utf8")).toBe(await readFile(join(REPO, "systemd", unit), "utf8"));
      const link = join(root, "etc/systemd/system/multi-user.target.wants", unit);
      expect((await lstat(link)).isSymbolicLink()).toBe(true);
    }
    expect(existsSync(join(root, "usr/lib/sysusers.d/edge-gateway.conf"))).toBe(true);
  });

  it("installs the app with production dependencies and the native epoll module, no dev tools", async () => {
    const app = join(root, "opt/edge-gateway");
    expect((await stat(join(app, "bin/edge-gateway.js"))).mode & 0o111).toBe(0o111);
    expect(existsSync(join(app, "dist/bundle/main.js"))).toBe(true);
    expect(existsSync(join(app, "node_modules/epoll/build/Release/epoll.node"))).toBe(true);
    expect(existsSync(join(app, "node_modules/serialport/package.json"))).toBe(true);
    expect(existsSync(join(app, "node_modules/typescript"))).toBe(false);
    expect(existsSync(join(app, "node_modules/vitest"))).toBe(false);
  });

  it("creates state and config directories with the right owners and modes", async () => {
    const uid = await idOf(join(root, "etc/passwd"), "edge-gateway");
    const natsUid = await idOf(join(root, "etc/passwd"), "edge-gateway-nats");
    const gid = await idOf(join(root, "etc/group"), "edge-gateway");
    const state = await stat(join(root, "var/lib/edge-gateway"));
    expect([state.uid, state.mode & 0o777]).toEqual([uid, 0o750]);
    const natsState = await stat(join(root, "var/lib/edge-gateway-nats"));
    expect([natsState.uid, natsState.mode & 0o777]).toEqual([natsUid, 0o750]);
    const cfg = await stat(join(root, "etc/edge-gateway/gateway.yaml"));
    // Readable by the daemon's group only; root-owned, so the daemon cannot change it.
    expect([cfg.uid, cfg.gid, cfg.mode & 0o777]).toEqual([0, gid, 0o640]);
  });

  it("writes a sample gateway.yaml that is a valid bootstrap file", async () => {
    const text = await readFile(join(root, "etc/edge-gateway/gateway.yaml"), "utf8");
    const parsed = parseYaml(text);
    expect(parsed.ok).toBe(true);
    const v = validateBootstrap(parsed.ok ? parsed.value : undefined, { STATE_DIRECTORY: "/var/lib/edge-gateway" });
    expect(v.ok, JSON.stringify(v)).toBe(true);
    if (v.ok) {
      expect(v.value.device).toEqual({ id: "pi-test", region: "eu-test" });
      expect(v.value.state).toBe("/var/lib/edge-gateway");
    }
  });

  it("the installed app runs: `check` accepts the sample config", async () => {
    const r = await run("node", [join(root, "opt/edge-gateway/bin/edge-gateway.js"), "check", "--config", join(root, "etc/edge-gateway/gateway.yaml")], {
      env: { PATH: process.env.PATH, STATE_DIRECTORY: join(root, "var/lib/edge-gateway") },
    });
    expect(r.code, explain(r)).toBe(0);
  });

  it("the installed bin, executed directly as systemd's ExecStart runs it, starts node with its shebang's --max-semi-space-size=1 and MALLOC_ARENA_MAX=1", async () => {
    const probe = join(await tempDir("egw-probe-"), "probe.mjs");
    // Loaded before the CLI: reports the node flags at exit.
    await writeFile(
      probe,
      'process.on("exit", () => process.stderr.write("PROBE " + JSON.stringify([...process.execArgv, "MALLOC_ARENA_MAX=" + process.env.MALLOC_ARENA_MAX]) + "\\n"));\n',
    );
    const r = await run(join(root, "opt/edge-gateway/bin/edge-gateway.js"), ["--version"], {
      env: { PATH: process.env.PATH, NODE_OPTIONS: `--import=${probe}` },
    });
    expect(r.code, explain(r)).toBe(0);
    const line = r.stderr.split("\n").find((l) => l.startsWith("PROBE "));
    expect(line, explain(r)).toBeDefined();
    expect(JSON.parse(line!.slice(6))).toContain("--max-semi-space-size=1");
    expect(JSON.parse(line!.slice(6))).toContain("MALLOC_ARENA_MAX=1");
  });

  it("a second run changes nothing (same tree: content, modes, owners, links)", async () => {
    const before = await treeListing(root);
    const r = await install("--device-id", "pi-test", "--region", "eu-test");
    expect(r.code, explain(r)).toBe(0);
    expect(r.stderr).toContain("nothing changed");
    expect(await treeListing(root)).toEqual(before);
  });

  it("--hub writes leaf.conf with `edge-gateway leaf-config`, readable by the leaf user only, accepted by nats-server -t", async () => {
    const r = await install("--hub", "nats-leaf://127.0.0.1:7422");
    expect(r.code, explain(r)).toBe(0);
    const leafConf = join(root, "etc/edge-gateway/leaf.conf");
    const text = await readFile(leafConf, "utf8");
    expect(text).toContain("/var/lib/edge-gateway-nats/jetstream");
    expect(text).toContain("nats-leaf://127.0.0.1:7422");
    expect(text).toContain('deny_imports: ["sensors.>"]');
    const st = await stat(leafConf);
    expect([st.gid, st.mode & 0o777]).toEqual([await idOf(join(root, "etc/group"), "edge-gateway-nats"), 0o640]);
    const t = await run("nats-server", ["--config", leafConf, "-t"]);
    expect(t.code, explain(t)).toBe(0);
    // Same inputs again: nothing changes.
    const before = await treeListing(root);
    const again = await install("--hub", "nats-leaf://127.0.0.1:7422");
    expect(again.code, explain(again)).toBe(0);
    expect(await treeListing(root)).toEqual(before);
  });

  it("--creds and --tls-ca are copied next to leaf.conf, which refers to them by their device paths", async () => {
    const creds = join(source, "device.creds");
    const ca = join(source, "ca.pem");
    await writeFile(creds, "-----BEGIN NATS USER JWT-----\nxyz\n------END NATS USER JWT------\n");
    await writeFile(ca, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
    const r = await install("--hub", "tls://127.0.0.1:7422", "--creds", creds, "--tls-ca", ca);
    expect(r.code, explain(r)).toBe(0);
    const natsGid = await idOf(join(root, "etc/group"), "edge-gateway-nats");
    const c = await stat(join(root, "etc/edge-gateway/leaf.creds"));
    expect([c.uid, c.gid, c.mode & 0o777]).toEqual([0, natsGid, 0o640]);
    expect(await readFile(join(root, "etc/edge-gateway/leaf.creds"), "utf8")).toBe(await readFile(creds, "utf8"));
    expect(await readFile(join(root, "etc/edge-gateway/hub-ca.pem"), "utf8")).toBe(await readFile(ca, "utf8"));
    const text = await readFile(join(root, "etc/edge-gateway/leaf.conf"), "utf8");
    expect(text).toContain('"/etc/edge-gateway/leaf.creds"');
    expect(text).toContain('"/etc/edge-gateway/hub-ca.pem"');
  });

  it("never overwrites an existing gateway.yaml", async () => {
    const file = join(root, "etc/edge-gateway/gateway.yaml");
    const mine = "# operator's own\ndevice: { id: pi-mine, region: north }\n";
    await writeFile(file, mine);
    const r = await install("--device-id", "someone-else");
    expect(r.code, explain(r)).toBe(0);
    expect(r.stderr).toContain("kept existing /etc/edge-gateway/gateway.yaml");
    expect(await readFile(file, "utf8")).toBe(mine);
  });

  it("--uninstall removes units, app and sysusers file but keeps config, state and users", async () => {
    const r = await install("--uninstall");
    expect(r.code, explain(r)).toBe(0);
    for (const gone of [
      "etc/systemd/system/edge-gateway.service",
      "etc/systemd/system/edge-gateway-nats.service",
      "etc/systemd/system/multi-user.target.wants/edge-gateway.service",
      "etc/systemd/system/multi-user.target.wants/edge-gateway-nats.service",
      "usr/lib/sysusers.d/edge-gateway.conf",
      "opt/edge-gateway",
    ]) {
      expect(existsSync(join(root, gone)), gone).toBe(false);
    }
    for (const kept of ["etc/edge-gateway/gateway.yaml", "var/lib/edge-gateway", "var/lib/edge-gateway-nats"]) {
      expect(existsSync(join(root, kept)), kept).toBe(true);
    }
    expect(await readFile(join(root, "etc/passwd"), "utf8")).toMatch(/^edge-gateway:/m);
    // Uninstalling twice is fine.
    const again = await install("--uninstall");
    expect(again.code, explain(again)).toBe(0);
  });

  it("--uninstall --purge also removes config, state and the users", async () => {
    const r = await install("--uninstall", "--purge");
    expect(r.code, explain(r)).toBe(0);
    for (const gone of ["etc/edge-gateway", "var/lib/edge-gateway", "var/lib/edge-gateway-nats"]) {
      expect(existsSync(join(root, gone)), gone).toBe(false);
    }
    const passwd = await readFile(join(root, "etc/passwd"), "utf8");
    expect(passwd).not.toMatch(/^edge-gateway(-nats)?:/m);
  });
});
