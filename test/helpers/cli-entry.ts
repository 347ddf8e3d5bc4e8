// Same as bin/edge-gateway.js, but on the TypeScript sources (for tests).
import { installStopSignals } from "../../src/cli/signals.js";

if (process.argv[2] === "run") installStopSignals();
const { main } = await import("../../src/cli/main.js");

const code = await main(process.argv.slice(2));
process.exitCode = code;
// The command has finished: a handle a library left open (e.g. the socket of a failed connect
// to a port that does not speak NATS) must not keep the process alive.
setTimeout(() => process.exit(code), 500).unref();
