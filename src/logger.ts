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

/** A logger whose level, and that of every logger derived from it, can be changed at runtime. */
export interface LevelControl {
  /** Derive all loggers from this one. */
  readonly logger: Logger;
  readonly level: LevelWithSilent;
  /** Sets the level of `logger` and of every live child and grandchild, made before or after. */
  setLevel(level: LevelWithSilent): void;
}

/**
 * pino copies the level into a child when it is made, so `parent.level = …` alone leaves the
 * existing children at the old level. This wraps `parent` in a child that tracks its
 * descendants (weakly: loggers of stopped sensors can be collected) and sets them all.
 */
export function levelControl(parent: Logger): LevelControl {
  const logger = parent.child({});
  const descendants = new Set<WeakRef<Logger>>();
  let pruneAt = 64;
  // Inherited through the prototype chain, so grandchildren report here too.
  logger.onChild = (child: Logger) => {
    descendants.add(new WeakRef(child));
    if (descendants.size >= pruneAt) {
      for (const ref of descendants) if (!ref.deref()) descendants.delete(ref);
      pruneAt = Math.max(64, descendants.size * 2);
    }
  };
  return {
    logger,
    get level() {
      return logger.level as LevelWithSilent;
    },
    setLevel(level) {
      logger.level = level;
      for (const ref of descendants) {
        const child = ref.deref();
        if (child) child.level = level;
        else descendants.delete(ref);
      }
    },
  };
}
