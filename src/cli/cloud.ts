import { parseSize } from "../config/units.js";
import { addDevice, ensureHubConfigBucket, ensureHubStream, HUB_DEFAULTS, listDevices, removeDevice, type Change } from "../cloud/hub.js";
import { connectServer, serverFlags, serverUrl } from "./connect.js";
import { deviceIdArg, durationFlag, EXIT, parse, reportError, UsageError, type Command } from "./command.js";
import { ingest } from "./ingest.js";
import { gaps, history, latest } from "./query.js";
import { hubConfig } from "./hub-config.js";
import { defaultKeysDir } from "../cloud/auth.js";
import { issueDeviceCredsFile, revokeDeviceCreds } from "../cloud/device-creds.js";
import { hubVersionWarning } from "../cloud/hub-config.js";
import { addDeviceLive, ensureLiveStreams, removeDeviceLive } from "../cloud/live.js";

const usage = `Usage: edge-gateway cloud <subcommand> [options] --server URL

Hub-side set-up (idempotent: running a command twice changes nothing the second time).

  cloud hub-config [--keys DIR] [--cluster NAME --routes URLS]
      prints the hub's nats-server config with fleet auth (\`edge-gateway cloud hub-config --help\`)
  cloud init [--stream NAME] [--bucket NAME] [--max-bytes SIZE] [--max-age DURATION] [--replicas N]
      creates the hub stream (no own subjects; it sources every device's leaf stream) and
      the config KV bucket, and the streams LATEST and EVENTS (live readings and events)
  cloud add-device ID [--stream NAME] [--creds-out FILE] [--keys DIR]
      adds the device's source to the hub stream and its live subjects; with --creds-out,
      issues its own credential (leaf link, permissions for this device only) into FILE
  cloud remove-device ID [--stream NAME] [--keys DIR]
      removes it (the readings already stored stay) and revokes its credentials: the hub
      drops its link and refuses it from then on
  cloud devices [--stream NAME] [--json]
      lists the devices the hub sources, with how far behind each is (lag)
  cloud ingest --queue NAME [--sink sqlite:FILE|postgres://…|jsonl:FILE] [--filter SUBJECT] [--live]
      a worker storing readings exactly once in a database (or as JSON lines); workers with
      the same queue share the work (\`edge-gateway cloud ingest --help\`)
  cloud history DEVICE SENSOR --db DB [--since 1h] [--until TIME] [--json|--csv]
  cloud latest --db DB [--region R] [--type T]
  cloud gaps --db DB [--device D] [--since TIME] [--queue NAME]
      queries on the ingest database: one sensor's readings, the last reading per sensor,
      the completeness audit (missing seqs per device and sensor)

Common options: --server URL (default $NATS_URL or nats://127.0.0.1:4222), --creds FILE (with
fleet auth: DIR/ops.creds), --keys DIR (default $EDGE_GATEWAY_KEYS or ~/.config/edge-gateway/fleet)`;

function printChange(out: (t: string) => void, c: Change): void {
  out(`${c.result}: ${c.detail}`);
}

function warnOldHub(version: string | undefined, err: (t: string) => void): void {
  const w = version ? hubVersionWarning(version) : undefined;
  if (w) err(w);
}

export const cloud: Command = {
  summary: "hub side: hub-config | init | add-device ID | remove-device ID | devices | ingest | history | latest | gaps",
  usage,
  async run(argv, io) {
    const sub = { ingest, history, latest, gaps, "hub-config": hubConfig }[argv[0] ?? ""];
    if (sub) return sub.run(argv.slice(1), io);
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
          keys: { type: "string" },
          "creds-out": { type: "string" },
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
            for (const c of await ensureLiveStreams(nc, { replicas })) printChange(io.out, c);
            warnOldHub(nc.info?.version, io.err);
            break;
          case "add-device":
            printChange(io.out, await addDevice(nc, id!, { stream }));
            printChange(io.out, await addDeviceLive(nc, id!));
            if (values["creds-out"]) io.out(await issueDeviceCredsFile(values.keys ?? defaultKeysDir(), id!, values["creds-out"]));
            break;
          case "remove-device":
            printChange(io.out, await removeDevice(nc, id!, { stream }));
            printChange(io.out, await removeDeviceLive(nc, id!));
            io.out(await revokeDeviceCreds(values.keys ?? defaultKeysDir(), id!, serverUrl(values.server)));
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
