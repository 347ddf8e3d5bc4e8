import { parseSize } from "../config/units.js";
import { addDevice, ensureHubConfigBucket, ensureHubStream, HUB_DEFAULTS, listDevices, removeDevice, type Change } from "../cloud/hub.js";
import { connectServer, serverFlags } from "./connect.js";
import { deviceIdArg, durationFlag, EXIT, parse, reportError, UsageError, type Command } from "./command.js";
import { ingest } from "./ingest.js";

const usage = `Usage: edge-gateway cloud <subcommand> [options] --server URL

Hub-side set-up (idempotent: running a command twice changes nothing the second time).

  cloud init [--stream NAME] [--bucket NAME] [--max-bytes SIZE] [--max-age DURATION] [--replicas N]
      creates the hub stream (no own subjects; it sources every device's leaf stream) and
      the config KV bucket
  cloud add-device ID [--stream NAME]
      adds the source {name: TELEMETRY, domain: ID} to the hub stream
  cloud remove-device ID [--stream NAME]
      removes it (the readings already stored stay)
  cloud devices [--stream NAME] [--json]
      lists the devices the hub sources, with how far behind each is (lag)
  cloud ingest --queue NAME [--filter SUBJECT] [--out FILE] [--max-deliver N] [--ack-wait 30s] [--live]
      a worker writing readings as JSON lines; workers with the same queue share the work
      (\`edge-gateway cloud ingest --help\`)

Common options: --server URL (default $NATS_URL or nats://127.0.0.1:4222), --creds FILE`;

function printChange(out: (t: string) => void, c: Change): void {
  out(`${c.result}: ${c.detail}`);
}

export const cloud: Command = {
  usage,
  async run(argv, io) {
    if (argv[0] === "ingest") return ingest.run(argv.slice(1), io);
    try {
      const { values, positionals } = parse(
        argv,
        {
          ...serverFlags,
          stream: { type: "string" },
          bucket: { type: "string" },
          "max-bytes": { type: "string" },
          "max-age": { type: "string" },
          replicas: { type: "string" },
          json: { type: "boolean" },
        },
        true,
      );
      const sub = positionals[0];
      if (values.help || !sub) {
        io.out(usage);
        return values.help ? EXIT.ok : EXIT.invalid;
      }
      if (!["init", "add-device", "remove-device", "devices"].includes(sub)) throw new UsageError(`unknown subcommand cloud ${sub}`);
      const id = sub === "add-device" || sub === "remove-device" ? deviceIdArg(positionals[1], `edge-gateway cloud ${sub} pi-0042`) : undefined;
      const maxBytes = values["max-bytes"] === undefined ? undefined : parseSize(values["max-bytes"]);
      if (values["max-bytes"] !== undefined && maxBytes === undefined) throw new UsageError(`--max-bytes ${values["max-bytes"]}: write a size like 10GiB`);
      const maxAgeMs = durationFlag("--max-age", values["max-age"], "30d");
      const replicas = values.replicas === undefined ? undefined : Number(values.replicas);
      if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) throw new UsageError("--replicas must be 1 to 5");

      const nc = await connectServer(values.server, values.creds);
      try {
        const stream = values.stream ?? HUB_DEFAULTS.stream;
        switch (sub) {
          case "init":
            printChange(io.out, await ensureHubStream(nc, { stream, maxBytes, maxAgeMs, replicas }));
            printChange(io.out, await ensureHubConfigBucket(nc, { bucket: values.bucket }));
            break;
          case "add-device":
            printChange(io.out, await addDevice(nc, id!, { stream }));
            break;
          case "remove-device":
            printChange(io.out, await removeDevice(nc, id!, { stream }));
            break;
          case "devices": {
            const devices = await listDevices(nc, { stream });
            if (values.json) io.out(JSON.stringify(devices));
            else if (devices.length === 0) io.out("no devices: add one with `edge-gateway cloud add-device ID`");
            else {
              io.out(`${"DEVICE".padEnd(24)} ${"LAG".padStart(10)}  LAST ACTIVE  ERROR`);
              for (const d of devices) {
                const active = d.lastActiveMs === undefined ? "never" : `${(d.lastActiveMs / 1000).toFixed(1)}s ago`;
                io.out(`${d.device.padEnd(24)} ${String(d.lag).padStart(10)}  ${active.padEnd(11)}  ${d.error ?? ""}`);
              }
            }
            break;
          }
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
