/** edge-gateway as a library: the config schema, drivers, bridge and daemon. */
export * from "./config/index.js";
export * from "./drivers/index.js";
export { Publisher, readingSubject, deviceReadingsFilter, readingMsgId, readingMessage, type ReadingMessage, type PublisherStats } from "./bridge/publisher.js";
export { Daemon, type DaemonOptions, type AppliedConfig, type ConfigSource, type ConfigChanges } from "./daemon/daemon.js";
export type { GatewayView, GatewayControl, SensorView, SensorState, MqttView } from "./daemon/view.js";
export { writeFileAtomic } from "./util/atomic-write.js";
export { ensureConfigBucket, deviceKey, CONFIG_BUCKET, CONFIG_HISTORY, CONFIG_MAX_VALUE_SIZE, type ConfigBucketOptions } from "./bridge/remote-config-bucket.js";
export { GatewayError, ConfigError, type ConfigProblem, type GatewayErrorCode } from "./errors.js";
