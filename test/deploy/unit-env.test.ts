/**
 * The CLI under the environment systemd gives edge-gateway.service: an unprivileged user
 * whose HOME does not exist (/nonexistent, from sysusers.d), no writable config directory,
 * the state directory passed as $STATE_DIRECTORY, a minimal environment (no inherited
 * variables), working directory = the state directory. Simulated as far as possible
 * without systemd as PID 1: when the test runs as root the child runs as `nobody`
 * (uid 65534) so the read-only config directory is really read-only for it. `nobody` runs a
 * staged copy of the CLI (see stage.ts): the checkout itself may sit in a 0700 home directory.
 */
import { chmod, chown, mkdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, startProc, tempDir } from "../helpers/procs.js";
import { startJetStreamServer } from "../helpers/nats.js";
import { streamCount } from "../helpers/stream.js";
import { waitFor } from "../helpers/wait.js";
import { REPO, explain, run, treeListing } from "./run.js";
import { stageCli } from "./stage.js";

const AS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;

let base: string;
let configDir: string;
let stateDir: string;
/** The CLI the child runs: the checkout's, or as root a copy `nobody` can read. */
let cli: string;

/** The environment systemd builds for the unit (no variables inherited from the caller). */
function unitEnv(home: "nonexistent" | "unset" = "nonexistent"): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C.UTF-8",
    HOME: "/nonexistent",
    USER: "edge-gateway",
    LOGNAME: "edge-gateway",
    SHELL: "/usr/sbin/nologin",
    NODE_ENV: "production",
    STATE_DIRECTORY: stateDir,
    CONFIGURATION_DIRECTORY: configDir,
  };
  if (home === "unset") delete env.HOME;
  return env;
}

function asUnit(args: string[], home: "nonexistent" | "unset" = "nonexistent") {
  return run(process.execPath, [cli, ...args], {
    env: unitEnv(home),
    cwd: stateDir,
    ...(AS_ROOT ? { uid: NOBODY, gid: NOBODY } : {}),
  });
}

async function readOnlyConfig(name: string, text: string): Promise<string> {
  await chmod(configDir, 0o755);
  const file = join(configDir, name);
  await writeFile(file, text);
  await chmod(file, 0o444);
  await chmod(configDir, 0o555);
  return file;
}

beforeAll(async () => {
  cli = join(AS_ROOT ? await stageCli() : REPO, "bin/edge-gateway.js");
  base = await tempDir("egw-unitenv-");
  await chmod(base, 0o755);
  configDir = join(base, "etc/edge-gateway");
  stateDir = join(base, "var/lib/edge-gateway");
  await mkdir(configDir, { recursive: true });
  await mkdir(stateDir, { recursive: true, mode: 0o750 });
  for (const d of [join(base, "etc"), join(base, "var"), join(base, "var/lib")]) await chmod(d, 0o755);
  if (AS_ROOT) await chown(stateDir, NOBODY, NOBODY);
});

afterAll(async () => {
  if (configDir) await chmod(configDir, 0o755);
  await cleanupTempDirs();
});

describe("CLI with edge-gateway.service's environment", () => {
  it.each(["nonexistent", "unset"] as const)("check (HOME %s): a bootstrap file without `state:` is valid, the config dir stays untouched", async (home) => {
    const file = await readOnlyConfig(
      `gateway-${home}.yaml`,
      "device: { id: pi-unit, region: test }\nnats: { servers: [nats://127.0.0.1:4222] }\nremoteConfig: { bucket: gateway-config }\n",
    );
    const before = await treeListing(configDir);
    const r = await asUnit(["check", "--config", file], home);
    expect(r.code, explain(r)).toBe(0);
    expect(await treeListing(configDir)).toEqual(before);
  });

  it("check: an invalid file exits 1 naming the path, also under this environment", async () => {
    const file = await readOnlyConfig("bad.yaml", "device: { id: 'pi 7', region: test }\n");
    const r = await asUnit(["check", "--config", file]);
    expect(r.code, explain(r)).toBe(1);
    expect(r.stdout + r.stderr).toContain("device.id");
  });

  it("run: publishes through the leaf and persists state only under $STATE_DIRECTORY; SIGTERM exits 0", async () => {
    const server = await startJetStreamServer();
    try {
      const file = await readOnlyConfig(
        "gateway-run.yaml",
        `device: { id: pi-unit, region: test }\nnats: { servers: ["${server.url}"] }\nremoteConfig: false\nhttp: false\n` +
          "sensors:\n  - { id: unit-temp, type: temperature, driver: simulated, interval: 200ms }\n",
      );
      const before = await treeListing(configDir);
      const daemon = startProc(process.execPath, [cli, "run", "--config", file], {
        env: unitEnv(),
        cwd: stateDir,
        ...(AS_ROOT ? { uid: NOBODY, gid: NOBODY } : {}),
      });
      const nc = await server.connect();
      try {
        await waitFor(async () => (await streamCount(nc, "TELEMETRY")) >= 5, { what: "readings from the daemon under the unit's environment", timeout: 20_000 });
        daemon.kill("SIGTERM");
        expect(await daemon.exited, daemon.stdout() + daemon.stderr()).toBe(0);
      } finally {
        await nc.close();
        daemon.kill("SIGKILL");
      }
      // seq state went to STATE_DIRECTORY; the read-only config dir is untouched.
      expect(existsSync(join(stateDir, "seq.json"))).toBe(true);
      expect(await treeListing(configDir)).toEqual(before);
    } finally {
      await server.stop();
    }
  });
});
