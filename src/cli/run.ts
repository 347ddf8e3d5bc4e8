import { loadBootstrap } from "../config/load.js";
import { Daemon } from "../daemon/daemon.js";
import { createLogger } from "../logger.js";
import { EXIT, parse, reportError, required, type Command } from "./command.js";

const usage = `Usage: edge-gateway run --config FILE

Runs the gateway daemon: reads the sensors in FILE (and the remote config), publishes every
reading to sensors.<type>.<region>.<deviceId>.<sensorId> through the local leaf's JetStream. Logs JSON lines on
stdout. SIGTERM or SIGINT: stop drivers, flush queued readings, drain NATS, exit 0.`;

export const run: Command = {
  usage,
  async run(argv, io) {
    let daemon: Daemon | undefined;
    try {
      const { values } = parse(argv, { config: { type: "string", short: "c" } });
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      const configFile = required(values.config, "--config");
      const config = await loadBootstrap(configFile);
      const logger = createLogger(config.log.level);
      daemon = await Daemon.start({ config, logger, operations: { configFile } });
      const d = daemon;
      const stopped = new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (sig: NodeJS.Signals) => {
          if (++signals > 1) {
            logger.warn({ signal: sig }, "second signal: exiting now");
            process.exit(EXIT.unreachable);
          }
          logger.info({ signal: sig }, "shutting down");
          void d.stop().then(resolve);
        };
        process.on("SIGTERM", onSignal);
        process.on("SIGINT", onSignal);
      });
      await stopped;
      logger.flush();
      return EXIT.ok;
    } catch (err) {
      await daemon?.stop();
      return reportError(err, io, usage);
    }
  },
};
