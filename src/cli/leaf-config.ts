import { loadBootstrap } from "../config/load.js";
import { LEAF_DEFAULTS, renderLeafConfig } from "../config/leaf-config.js";
import { EXIT, parse, reportError, required, type Command } from "./command.js";

const usage = `Usage: edge-gateway leaf-config --config FILE --hub URL [options]

Prints the nats-server config of this device's local leaf node: server name and JetStream
domain = device id, a file store sized from buffer.maxBytes, a loopback monitoring port, and a
leaf remote to the hub that refuses the fleet's telemetry (deny_imports: sensors.>).

Options:
  --config FILE     the bootstrap file (gateway.yaml)
  --hub URL         the hub's leafnode URL, e.g. nats-leaf://hub.example.com:7422 or tls://…
  --creds FILE      credentials file for the leaf link
  --tls-ca FILE     CA certificate to verify the hub (TLS)
  --listen H:P      client listener of the leaf (default ${LEAF_DEFAULTS.listen})
  --store-dir DIR   JetStream store directory (default ${LEAF_DEFAULTS.storeDir})
  --monitor H:P     monitoring listener, or "off" (default ${LEAF_DEFAULTS.monitor})

Example:
  edge-gateway leaf-config --config /etc/edge-gateway/gateway.yaml \\
    --hub tls://hub.example.com:7422 --creds /etc/edge-gateway/leaf.creds > /etc/edge-gateway/leaf.conf`;

export const leafConfig: Command = {
  usage,
  async run(argv, io) {
    try {
      const { values } = parse(argv, {
        config: { type: "string", short: "c" },
        hub: { type: "string" },
        creds: { type: "string" },
        "tls-ca": { type: "string" },
        listen: { type: "string" },
        "store-dir": { type: "string" },
        monitor: { type: "string" },
      });
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      const cfg = await loadBootstrap(required(values.config, "--config"));
      const monitor = values.monitor === "off" ? false : values.monitor;
      io.out(
        renderLeafConfig(cfg, {
          hub: required(values.hub, "--hub"),
          creds: values.creds,
          tlsCa: values["tls-ca"],
          listen: values.listen,
          storeDir: values["store-dir"],
          monitor,
        }),
      );
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, usage);
    }
  },
};
