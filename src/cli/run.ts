import { loadBootstrap } from "../config/load.js";
import { Daemon } from "../daemon/daemon.js";
import { createLogger } from "../logger.js";
import { EXIT, parse, reportError, required, type Command } from "./command.js";
import { installStopSignals } from "./signals.js";

const usage = `Usage: edge-gateway run --config FILE

Runs the gateway daemon: reads the sensors in FILE (and the remote config), publishes every
reading to sensors.<type>.<region>.<deviceId>.<sensorId> through the local leaf's JetStream. Logs JSON lines on
stdout. SIGTERM or SIGINT (also during startup): stop drivers, flush queued readings, drain
NATS, exit 0, all within shutdownTimeout (default 20s). A second signal exits at once (2).`;

export const run: Command = {
  usage,
  async run(argv, io) {
    // Normally already installed by bin/edge-gateway.js before any module was loaded.
    const stop = installStopSignals();
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
      stop.onRepeat((sig) => {
        logger.warn({ signal: sig }, "second signal: exiting now");
        logger.flush();
        process.exit(EXIT.unreachable);
      });
      if (stop.signal.aborted) {
        logger.info({ signal: stop.signal.reason }, "stop requested during startup: not starting");
        logger.flush();
        return EXIT.ok;
      }
      daemon = await Daemon.start({ config, logger, operations: { configFile } });
      if (!stop.signal.aborted) await new Promise((resolve) => stop.signal.addEventListener("abort", resolve, { once: true }));
      logger.info({ signal: stop.signal.reason }, "shutting down");
      await daemon.stop();
      logger.flush();
      return EXIT.ok;
    } catch (err) {
      await daemon?.stop();
      return reportError(err, io, usage);
    }
  },
};
