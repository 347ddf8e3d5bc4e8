import type { GatewayStatus } from "../daemon/status.js";
import type { Reading } from "../drivers/types.js";
import { ControlServiceError, formatDuration, requestGateway } from "../cloud/control-client.js";
import { connectServer, serverFlags } from "./connect.js";
import { deviceIdArg, durationFlag, EXIT, parse, reportError, type Command } from "./command.js";

const usage = `Usage: edge-gateway status ID --server URL [--json] [--timeout 5s]

Asks device ID's control service (gateway.ID.status, through the hub) for its status: version,
uptime, uplink and buffer, publisher counters, one line per sensor (last reading, health,
counters) and the GPIO outputs. --json prints the raw status document.
Exit 2 when the device is not connected or does not answer.`;

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function readingText(r: Reading | undefined): string {
  if (!r) return "-";
  const v = r.values
    ? Object.entries(r.values)
        .map(([k, x]) => `${k}=${x}`)
        .join(" ")
    : String(r.value);
  const unit = r.unit ? ` ${r.unit}` : "";
  return `${v}${unit}${r.quality !== "good" ? ` (${r.quality})` : ""}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

/** The human form of a status document. */
export function formatStatus(s: GatewayStatus, now = Date.now()): string {
  const lines: string[] = [];
  const rev = s.configRevision === null ? "bootstrap config" : `config rev ${s.configRevision}`;
  lines.push(`device ${s.device} (${s.region})  edge-gateway ${s.version}  up ${formatDuration(s.uptimeMs)}  ${rev}`);
  const oldest = s.buffer.oldestAgeMs === undefined ? "" : `, oldest ${formatDuration(s.buffer.oldestAgeMs)}`;
  const lag = s.hubLag === null ? "unknown" : String(s.hubLag);
  // `sourcing` is absent from the status of a device running an older version.
  const sourcing = s.link.sourcing ? `, hub sourcing ${s.link.sourcing}` : "";
  lines.push(`link: hub ${s.link.hub} for ${formatDuration(now - s.link.since)}${sourcing}  buffer: ${s.buffer.messages} readings, ${bytes(s.buffer.bytes)}${oldest}  hub lag: ${lag}`);
  const p = s.publisher;
  const state = p.healthy ? "publishing" : p.leafConnected ? "leaf stream not ready" : "LOCAL LEAF UNREACHABLE";
  lines.push(`publisher: ${state}  accepted ${p.accepted}  acked ${p.published}  queued ${p.queued + p.inFlight}  dropped ${p.dropped}  retries ${p.retries}`);
  lines.push("");
  if (s.sensorsTotal > s.sensors.length) lines.push(`showing ${s.sensors.length} of ${s.sensorsTotal} sensors (the reply is bounded to fit one NATS message)`);
  if (s.sensors.length === 0) lines.push("no sensors");
  else {
    const rows = [["SENSOR", "DRIVER", "HEALTH", "LAST READING", "AGE", "READ", "PUBLISHED", "REJECTED", "ERRORS", "ERROR"]];
    for (const x of s.sensors) {
      const rejected = Object.values(x.counters.rejected).reduce((a, b) => a + b, 0);
      rows.push([
        x.id,
        x.driver,
        x.health,
        readingText(x.lastReading),
        x.lastReading ? formatDuration(now - x.lastReading.ts) : "-",
        String(x.counters.read),
        String(x.published),
        rejected ? `${rejected} (${Object.entries(x.counters.rejected).map(([k, v]) => `${k} ${v}`).join(", ")})` : "0",
        String(x.counters.errors),
        x.error ?? "",
      ]);
    }
    lines.push(...table(rows));
  }
  if (s.outputs.length > 0) {
    lines.push("");
    const rows = [["OUTPUT", "PIN", "VALUE", "ERROR"]];
    for (const o of s.outputs) rows.push([o.id, String(o.pin), o.value === undefined ? "?" : o.value ? "on" : "off", o.error ?? ""]);
    lines.push(...table(rows));
  }
  return lines.join("\n");
}

export const status: Command = {
  usage,
  async run(argv, io) {
    try {
      const { values, positionals } = parse(argv, { ...serverFlags, json: { type: "boolean" }, timeout: { type: "string" } }, true);
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      const id = deviceIdArg(positionals[0], "edge-gateway status pi-0042 --server URL");
      const timeout = durationFlag("--timeout", values.timeout, "5s") ?? 5000;
      const nc = await connectServer(values.server, values.creds);
      try {
        const s = await requestGateway<GatewayStatus>(nc, id, "status", {}, timeout);
        io.out(values.json ? JSON.stringify(s) : formatStatus(s));
      } finally {
        await nc.close();
      }
      return EXIT.ok;
    } catch (err) {
      if (err instanceof ControlServiceError) {
        io.err(`error: the device answered: ${err.message} (${err.status})`);
        return EXIT.unreachable;
      }
      return reportError(err, io, usage);
    }
  },
};

