import { afterAll, describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { spawnCli, runCli } from "../helpers/cli.js";
import { killAll, waitForOutput } from "../helpers/procs.js";

afterAll(killAll);

/** Pids of nats-server processes whose command line mentions `dir`. */
function serversUsing(dir: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return cmd.includes("nats-server") && cmd.includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("edge-gateway demo", () => {
  it("runs hub + leaf + daemon, cuts the uplink, shows the hub catching up, and cleans up on Ctrl-C", async () => {
    const p = spawnCli(["demo", "--outage", "3s", "--interval", "200ms"]);
    try {
      const dir = ((await waitForOutput(p, /working in (\S+)/)) as RegExpMatchArray)[1]!;
      // Auth is on by default: the leaf links with its own device credential, and the live
      // wildcard view on the hub still works.
      await waitForOutput(p, "fleet auth: device credential for the leaf link", 20_000);
      await waitForOutput(p, /sensors\.temperature\.eu-west\.demo-pi\.kitchen-temp {2}\d+(\.\d+)? Cel/, 20_000);
      await waitForOutput(p, "=== uplink CUT", 20_000);
      const restored = (await waitForOutput(p, /uplink RESTORED: (\d+) readings were buffered/, 20_000)) as RegExpMatchArray;
      expect(Number(restored[1])).toBeGreaterThan(10);
      const caught = (await waitForOutput(p, /hub caught up: the (\d+) readings buffered during the outage arrived; hub stream (\d+) = leaf stream (\d+), none lost/, 60_000)) as RegExpMatchArray;
      expect(caught[1]).toBe(restored[1]);
      expect(caught[2]).toBe(caught[3]);
      expect(serversUsing(dir)).toHaveLength(2); // hub and leaf
      p.kill("SIGINT");
      expect(await p.exited).toBe(0);
      expect(p.stdout()).toContain("demo stopped, everything cleaned up");
      // The readings arrived in the embedded database: `cloud latest` of it, one row per sensor.
      const stored = /(\d+) readings in the embedded database \S+readings\.db/.exec(p.stdout());
      expect(Number(stored?.[1])).toBeGreaterThan(Number(caught[2]) / 2);
      for (const sensor of ["boiler-power", "kitchen-hum", "kitchen-temp"]) expect(p.stdout()).toMatch(new RegExp(`^demo-pi\\s+${sensor}\\s+\\w+\\s+eu-west\\s+\\d+\\s+[\\d.]+\\s+\\S+\\s+good\\s+[\\d.]+s$`, "m"));
      expect(existsSync(dir)).toBe(false);
      expect(serversUsing(dir)).toEqual([]);
    } finally {
      // On a failure, Ctrl-C first so the demo stops its own nats-servers.
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.kill("SIGINT");
        await Promise.race([p.exited, new Promise((r) => setTimeout(r, 15_000))]);
      }
    }
  });

  it("says how to install nats-server when it is missing, exit 2", async () => {
    const r = await runCli(["demo", "--duration", "1s"], { env: { ...process.env, PATH: "/usr/local/bin:/bin" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nats-server is not installed: run `sudo apt-get install nats-server`/);
  });
});
