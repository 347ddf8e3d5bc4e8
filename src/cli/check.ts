import { loadBootstrap, loadDocument } from "../config/load.js";
import { EXIT, parse, reportError, UsageError, type Command } from "./command.js";

const usage = `Usage: edge-gateway check --config FILE
       edge-gateway check --document FILE

Validates a bootstrap file (gateway.yaml) or a remote config document (JSON/YAML) and prints
every problem with its path. Exit 0 when valid, 1 when not.`;

export const check: Command = {
  usage,
  async run(argv, io) {
    try {
      const { values } = parse(argv, { config: { type: "string", short: "c" }, document: { type: "string", short: "d" } });
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      if (!!values.config === !!values.document) throw new UsageError("give exactly one of --config FILE or --document FILE");
      if (values.config) {
        const cfg = await loadBootstrap(values.config);
        io.out(`OK: ${values.config}: device ${cfg.device.id} in ${cfg.device.region}, ${cfg.sensors.length} sensor(s)`);
      } else {
        const doc = await loadDocument(values.document!);
        io.out(`OK: ${values.document}: ${doc.sensors.length} sensor(s), ${doc.outputs.length} output(s)${doc.mqtt ? ", mqtt ingest" : ""}`);
      }
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, usage);
    }
  },
};
