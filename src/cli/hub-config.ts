import { FleetKeys, defaultKeysDir } from "../cloud/auth.js";
import { HUB_CONFIG_DEFAULTS, hubVersionWarning, localNatsServerVersion, renderHubConfig } from "../cloud/hub-config.js";
import { EXIT, parse, reportError, UsageError, type Command } from "./command.js";

const usage = `Usage: edge-gateway cloud hub-config [--keys DIR] [options]

Prints the hub's nats-server config: JetStream domain hub, client and leafnode listeners, a
store dir, and decentralized JWT auth (operator, system account SYS, account FLEET with the
hub stream, the config bucket, the devices and the operator tools) with a full account
resolver. Creates the fleet keys in --keys DIR the first time (keep that directory secret: it
can mint device credentials); the operator tools' credential is DIR/ops.creds.
Devices need no change here: \`cloud add-device ID --creds-out FILE\` issues a credential and
\`cloud remove-device ID\` revokes it through the resolver, without a reload.

Options:
  --keys DIR          fleet keys (default $EDGE_GATEWAY_KEYS or ~/.config/edge-gateway/fleet)
  --name NAME         server_name (default hub, or hub-1 with --cluster)
  --listen H:P        client listener (default ${HUB_CONFIG_DEFAULTS.listen})
  --leaf-listen H:P   leafnode listener (default ${HUB_CONFIG_DEFAULTS.leafListen})
  --leaf-advertise H:P  address leaves are told to reconnect to (a load balancer in front)
  --tls-cert FILE, --tls-key FILE   TLS on the leafnode listener (use it on the internet)
  --monitor H:P|off   monitoring listener (default ${HUB_CONFIG_DEFAULTS.monitor})
  --store-dir DIR     JetStream store (default ${HUB_CONFIG_DEFAULTS.storeDir})
  --resolver-dir DIR  account JWTs (default ${HUB_CONFIG_DEFAULTS.resolverDir})
  --cluster NAME      one node of a cluster named NAME; with --routes and --cluster-listen
  --routes URLS       every node's route URL, comma-separated (nats-route://hub-1:6222,…)
  --cluster-listen H:P  this node's route listener (default 0.0.0.0:6222)

Example (3-node cluster, on node 2):
  edge-gateway cloud hub-config --name hub-2 --cluster fleet-hub --routes \\
    nats-route://hub-1:6222,nats-route://hub-2:6222,nats-route://hub-3:6222 > /etc/nats/hub.conf
  nats-server -t -c /etc/nats/hub.conf`;

export const hubConfig: Command = {
  usage,
  async run(argv, io) {
    try {
      const { values } = parse(argv, {
        keys: { type: "string" },
        name: { type: "string" },
        listen: { type: "string" },
        "leaf-listen": { type: "string" },
        "leaf-advertise": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        monitor: { type: "string" },
        "store-dir": { type: "string" },
        "resolver-dir": { type: "string" },
        cluster: { type: "string" },
        routes: { type: "string" },
        "cluster-listen": { type: "string" },
      });
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      if (!!values["tls-cert"] !== !!values["tls-key"]) throw new UsageError("--tls-cert and --tls-key go together");
      if ((values.routes || values["cluster-listen"]) && !values.cluster) throw new UsageError("--routes and --cluster-listen need --cluster NAME");
      const routes = values.routes?.split(",").map((r) => r.trim()).filter(Boolean) ?? [];
      if (values.cluster && routes.length === 0) throw new UsageError("--cluster needs --routes with every node's route URL, e.g. nats-route://hub-1:6222,nats-route://hub-2:6222,nats-route://hub-3:6222");
      const keys = await FleetKeys.open(values.keys ?? defaultKeysDir());
      const version = localNatsServerVersion();
      const warning = version ? hubVersionWarning(version) : undefined;
      if (warning) io.err(warning.replace("nats-server", "the local nats-server"));
      io.out(
        renderHubConfig(keys, {
          name: values.name,
          listen: values.listen,
          leafListen: values["leaf-listen"],
          leafAdvertise: values["leaf-advertise"],
          leafTls: values["tls-cert"] ? { cert: values["tls-cert"], key: values["tls-key"]! } : undefined,
          monitor: values.monitor === "off" ? false : values.monitor,
          storeDir: values["store-dir"],
          resolverDir: values["resolver-dir"],
          cluster: values.cluster ? { name: values.cluster, listen: values["cluster-listen"] ?? "0.0.0.0:6222", routes } : undefined,
        }),
      );
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, usage);
    }
  },
};
