/** edge-gateway as a library: the config schema, drivers, bridge and daemon. */
export * from "./config/index.js";
export * from "./drivers/index.js";
export { Publisher, readingSubject, readingMsgId, readingMessage, type ReadingMessage, type PublisherStats } from "./bridge/publisher.js";
export { Daemon, type DaemonOptions } from "./daemon/daemon.js";
export { GatewayError, ConfigError, type ConfigProblem, type GatewayErrorCode } from "./errors.js";
