import { discoverGateways, formatDuration } from "../cloud/control-client.js";
import { connectServer, serverFlags } from "./connect.js";
import { EXIT, parse, reportError, UsageError, type Command } from "./command.js";

const usage = `Usage: edge-gateway devices --server URL [--json] [--wait 1s]

Discovers every connected gateway: sends $SRV.PING.edge-gateway through the hub and collects
the answers for --wait (default 1 s). Lists device id, region, version and uptime.
(\`edge-gateway cloud devices\` lists the devices the hub stream sources instead, connected or not.)`;

export const devices: Command = {
  usage,
  async run(argv, io) {
    try {
      const { values } = parse(argv, { ...serverFlags, json: { type: "boolean" }, wait: { type: "string" } });
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      let waitMs = 1000;
      if (values.wait !== undefined) {
        const m = /^(\d+)(ms|s)?$/.exec(values.wait);
        if (!m) throw new UsageError(`--wait ${values.wait}: write a duration like 1s or 500ms`);
        waitMs = Number(m[1]) * (m[2] === "ms" ? 1 : 1000);
      }
      const nc = await connectServer(values.server, values.creds);
      try {
        const found = await discoverGateways(nc, waitMs);
        if (values.json) io.out(JSON.stringify(found));
        else if (found.length === 0) io.out("no gateways answered (is a device's leaf linked to this server?)");
        else {
          const rows = [["DEVICE", "REGION", "VERSION", "UPTIME"], ...found.map((g) => [g.device, g.region ?? "-", g.version, g.uptimeMs === undefined ? "?" : formatDuration(g.uptimeMs)])];
          const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
          for (const r of rows) io.out(r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd());
        }
      } finally {
        await nc.close();
      }
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, usage);
    }
  },
};
