import { pino, destination, stdTimeFunctions, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

/** JSON lines on stdout (journald reads them); `dest` lets the CLI send logs to stderr. */
export function createLogger(level: LevelWithSilent = "info", dest: 1 | 2 = 1): Logger {
  return pino({ level, base: { name: "edge-gateway" }, timestamp: stdTimeFunctions.isoTime }, destination({ fd: dest, sync: false }));
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
