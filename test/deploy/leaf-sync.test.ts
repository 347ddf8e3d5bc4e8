/**
 * `leaf-config --sync`: `sync_interval` in the leaf's `jetstream {}` only where the installed
 * nats-server accepts it (2.10.0+). Checked against the real Debian nats-server 2.9.10 with
 * `nats-server -t` (it rejects the field); newer versions are stood in for by a stub that only
 * answers `--version` (no 2.10+ binary is installable here, so `-t` cannot check their output).
 */
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { renderLeafConfig } from "../../src/config/leaf-config.js";
import { decideSync, parseNatsServerVersion, parseSyncChoice, supportsSyncInterval } from "../../src/config/leaf-sync.js";
import { validateBootstrap } from "../../src/config/load.js";
import { findNatsServer } from "../../src/demo/nats-server.js";
import { leafConfig } from "../../src/cli/leaf-config.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";
import { explain, run } from "./run.js";

afterAll(cleanupTempDirs);

async function gatewayYaml(): Promise<string> {
  const file = join(await tempDir("egw-sync-"), "gateway.yaml");
  await writeFile(file, "device: { id: pi-sync, region: eu-west }\n");
  return file;
}

/** A directory with a `nats-server` that only answers `--version` as `version`. */
async function stubServer(version: string): Promise<string> {
  const dir = await tempDir("egw-stub-nats-");
  const bin = join(dir, "nats-server");
  await writeFile(bin, `#!/bin/sh\n[ "$1" = --version ] && { echo "nats-server: v${version}"; exit 0; }\nexit 1\n`);
  await chmod(bin, 0o755);
  return dir;
}

/** `nats-server -t`: parses the config and exits 0 when the installed server accepts it. */
async function serverAccepts(text: string): Promise<{ ok: boolean; output: string }> {
  const conf = join(await tempDir("egw-sync-conf-"), "leaf.conf");
  await writeFile(conf, text);
  const r = await run(findNatsServer(), ["-t", "-c", conf]);
  return { ok: r.code === 0, output: r.stdout + r.stderr };
}

/**
 * `edge-gateway leaf-config ARGS`, in this process (the command's own entry point, output
 * captured): spawning the CLI through tsx for each case is slow on a loaded machine.
 * `env.PATH` replaces PATH for the nats-server lookup while it runs.
 */
async function runCli(args: string[], opts: { env?: { PATH: string } } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const before = process.env.PATH;
  if (opts.env) process.env.PATH = opts.env.PATH;
  try {
    const code = await leafConfig.run(args.slice(1), { out: (t) => void out.push(t), err: (t) => void err.push(t) });
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    if (before === undefined) delete process.env.PATH;
    else process.env.PATH = before;
  }
}

function syncLine(config: string): string | undefined {
  return /^\s*sync_interval: (.*)$/m.exec(config)?.[1];
}

describe("leaf-config › sync_interval by nats-server version", () => {
  it("versions: 2.10.0 and later support it, 2.9.x does not; --sync values are checked", () => {
    expect(parseNatsServerVersion("nats-server: v2.9.10\n")).toBe("2.9.10");
    expect(parseNatsServerVersion("nats-server: v2.11.0-RC.1")).toBe("2.11.0");
    expect(parseNatsServerVersion("command not found")).toBeUndefined();
    for (const v of ["2.9.10", "2.9.25", "1.4.1"]) expect(supportsSyncInterval(v), v).toBe(false);
    for (const v of ["2.10.0", "2.10.22", "2.11.4", "3.0.0"]) expect(supportsSyncInterval(v), v).toBe(true);
    expect(parseSyncChoice(undefined)).toBe("auto");
    for (const v of ["always", "default", "auto", "1s", "500ms", "2m", "1m30s"]) expect(parseSyncChoice(v)).toBe(v);
    for (const v of ["7d", "fast", "1", "-1s"]) expect(() => parseSyncChoice(v), v).toThrow(/--sync .*use always, a duration like 1s/);
    expect(() => decideSync("always", "2.9.10")).toThrow(/nats-server 2\.9\.10 rejects sync_interval \(it needs 2\.10\.0 or newer\)/);
    expect(decideSync("auto", undefined).value).toBeUndefined();
    expect(decideSync("1s", undefined).value).toBe("1s");
  });

  it("the installed nats-server 2.9.10 really rejects sync_interval (so it is never written for it)", async () => {
    const version = parseNatsServerVersion((await run(findNatsServer(), ["--version"])).stdout);
    expect(version).toBe("2.9.10");
    const v = validateBootstrap({ device: { id: "pi-sync", region: "eu-west" } });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const dir = await tempDir("egw-sync-store-");
    for (const value of ["always", "1s"]) {
      const forced = renderLeafConfig(v.value, { hub: "nats-leaf://127.0.0.1:7422", storeDir: dir, sync: { value, note: "forced by the test" } });
      const r = await serverAccepts(forced);
      expect(r.ok, r.output).toBe(false);
      expect(r.output).toMatch(/sync_interval/);
    }
    const without = renderLeafConfig(v.value, { hub: "nats-leaf://127.0.0.1:7422", storeDir: dir });
    expect((await serverAccepts(without)).ok).toBe(true);
  });

  it("with the installed 2.9.10: auto writes no sync_interval (and says why), the config passes -t; --sync always exits 1 with the fix", async () => {
    const cfg = await gatewayYaml();
    const auto = await runCli(["leaf-config", "--config", cfg, "--hub", "nats-leaf://hub:7422", "--store-dir", await tempDir("egw-sync-js-")]);
    expect(auto.code, explain(auto)).toBe(0);
    expect(syncLine(auto.stdout)).toBeUndefined();
    expect(auto.stdout).toMatch(/# sync_interval not set: nats-server 2\.9\.10 does not support it \(2\.10\.0\+\)/);
    const t = await serverAccepts(auto.stdout);
    expect(t.ok, t.output).toBe(true);

    for (const flag of ["always", "1s"]) {
      const r = await runCli(["leaf-config", "--config", cfg, "--hub", "nats-leaf://hub:7422", "--sync", flag]);
      expect(r.code, explain(r)).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(`--sync ${flag}: the installed nats-server 2.9.10 rejects sync_interval`);
      expect(r.stderr).toContain("use --sync default");
    }
    const def = await runCli(["leaf-config", "--config", cfg, "--hub", "nats-leaf://hub:7422", "--sync", "default"]);
    expect(def.code, explain(def)).toBe(0);
    expect(syncLine(def.stdout)).toBeUndefined();
  });

  it("with a 2.10+ nats-server: auto writes `sync_interval: always`, --sync takes a duration or default", async () => {
    const cfg = await gatewayYaml();
    const env = { PATH: `${await stubServer("2.10.22")}:${process.env.PATH ?? ""}` };
    const auto = await runCli(["leaf-config", "--config", cfg, "--hub", "nats-leaf://hub:7422"], { env });
    expect(auto.code, explain(auto)).toBe(0);
    expect(syncLine(auto.stdout)).toBe("always");
    // Inside jetstream {}, not elsewhere.
    expect(auto.stdout).toMatch(/jetstream \{[^}]*sync_interval: always\n\}/);
    const second = await runCli(["leaf-config", "--config", cfg, "--hub", "nats-leaf://hub:7422", "--sync", "1s"], { env });
    expect(syncLine(second.stdout)).toBe('"1s"');
    const def = await runCli(["leaf-config", "--config", cfg, "--hub", "nats-leaf://hub:7422", "--sync", "default"], { env });
    expect(syncLine(def.stdout)).toBeUndefined();
    const bad = await runCli(["leaf-config", "--config", cfg, "--hub", "nats-leaf://hub:7422", "--sync", "7d"], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--sync "7d": use always, a duration like 1s/);
  });
});
