import { afterAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { spawnCli, runCli } from "../helpers/cli.js";
import { killAll, waitForOutput } from "../helpers/procs.js";

afterAll(killAll);

describe("edge-gateway demo", () => {
  it("runs hub + leaf + daemon, cuts the uplink, shows the hub catching up, and cleans up on Ctrl-C", async () => {
    const p = spawnCli(["demo", "--outage", "3s", "--interval", "200ms"]);
    const dir = ((await waitForOutput(p, /working in (\S+)/)) as RegExpMatchArray)[1]!;
    await waitForOutput(p, /sensors\.temperature\.eu-west\.kitchen-temp {2}\d+(\.\d+)? Cel/, 20_000);
    await waitForOutput(p, "=== uplink CUT", 20_000);
    const restored = (await waitForOutput(p, /uplink RESTORED: (\d+) readings were buffered/, 20_000)) as RegExpMatchArray;
    expect(Number(restored[1])).toBeGreaterThan(10);
    const caught = (await waitForOutput(p, /hub caught up: the (\d+) readings buffered during the outage arrived; hub stream (\d+) = leaf stream (\d+), none lost/, 60_000)) as RegExpMatchArray;
    expect(caught[1]).toBe(restored[1]);
    expect(caught[2]).toBe(caught[3]);
    p.kill("SIGINT");
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toContain("demo stopped, everything cleaned up");
    expect(existsSync(dir)).toBe(false);
  });

  it("says how to install nats-server when it is missing, exit 2", async () => {
    const r = await runCli(["demo", "--duration", "1s"], { env: { ...process.env, PATH: "/usr/local/bin:/bin" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nats-server is not installed: run `sudo apt-get install nats-server`/);
  });
});
