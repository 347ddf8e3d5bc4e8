import { loadBootstrap } from "../config/load.js";
import { LEAF_DEFAULTS, renderLeafConfig } from "../config/leaf-config.js";
import { decideSync, detectNatsServerVersion, parseSyncChoice, SYNC_INTERVAL_SINCE } from "../config/leaf-sync.js";
import { GatewayError } from "../errors.js";
import { EXIT, parse, reportError, required, UsageError, type Command } from "./command.js";

const usage = `Usage: edge-gateway leaf-config --config FILE --hub URL [--hub URL…] [options]

Prints the nats-server config of this device's local leaf node: server name and JetStream
domain = device id, a file store sized from buffer.maxBytes, a loopback monitoring port, and a
leaf remote to the hub that refuses the fleet's telemetry (deny_imports: sensors.>).

Options:
  --config FILE     the bootstrap file (gateway.yaml)
  --hub URL         the hub's leafnode URL, e.g. nats-leaf://hub.example.com:7422 or tls://…;
                    repeat it (or give a comma-separated list) for every node of a hub cluster:
                    a leaf booting while one node is down then connects to another
  --creds FILE      credentials file for the leaf link
  --tls-ca FILE     CA certificate to verify the hub (TLS)
  --listen H:P      client listener of the leaf (default ${LEAF_DEFAULTS.listen})
  --store-dir DIR   JetStream store directory (default ${LEAF_DEFAULTS.storeDir})
  --monitor H:P     monitoring listener, or "off" (default ${LEAF_DEFAULTS.monitor})
  --sync MODE       when JetStream fsyncs (sync_interval, nats-server ${SYNC_INTERVAL_SINCE}+): always,
                    a duration (1s, 500ms, 2m), default (the server's schedule), or auto
                    (default: always if the installed nats-server supports it, else nothing)

Example:
  edge-gateway leaf-config --config /etc/edge-gateway/gateway.yaml \\
    --hub tls://hub.example.com:7422 --creds /etc/edge-gateway/leaf.creds > /etc/edge-gateway/leaf.conf`;

/** Every --hub value, comma-separated lists split; at least one. */
function hubUrls(values: string[] | undefined): string[] {
  const urls = (values ?? []).flatMap((v) => v.split(",")).map((u) => u.trim()).filter(Boolean);
  if (urls.length === 0) throw new UsageError("--hub is required");
  return urls;
}

export const leafConfig: Command = {
  usage,
  async run(argv, io) {
    try {
      const { values } = parse(argv, {
        config: { type: "string", short: "c" },
        hub: { type: "string", multiple: true },
        creds: { type: "string" },
        "tls-ca": { type: "string" },
        listen: { type: "string" },
        "store-dir": { type: "string" },
        monitor: { type: "string" },
        sync: { type: "string" },
      });
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      const cfg = await loadBootstrap(required(values.config, "--config"));
      const monitor = values.monitor === "off" ? false : values.monitor;
      const sync = await leafSync(values.sync);
      io.out(
        renderLeafConfig(cfg, {
          hub: hubUrls(values.hub),
          creds: values.creds,
          tlsCa: values["tls-ca"],
          listen: values.listen,
          storeDir: values["store-dir"],
          monitor,
          sync,
        }),
      );
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, usage);
    }
  },
};

/** `--sync` against the installed nats-server; a choice the server would reject is a usage error (exit 1). */
async function leafSync(flag: string | undefined) {
  try {
    const choice = parseSyncChoice(flag);
    return decideSync(choice, choice === "default" ? undefined : await detectNatsServerVersion());
  } catch (err) {
    if (err instanceof GatewayError && err.code === "EGW_USAGE") throw new UsageError(err.message);
    throw err;
  }
}
