import { packageVersion } from "../version.js";
import { EXIT, stdio, type Command, type Io } from "./command.js";

/**
 * A command's one-line summary and its module, imported only when the command runs: `check`
 * then does not load nats.js, and `run` does not load the demo, the cloud side or the watch
 * view (measured in bench/RESULTS.md, "Footprint").
 */
interface CommandEntry {
  summary: string;
  load(): Promise<Command>;
}

/** Every command; the order is the order of `--help`. */
export const commands: Record<string, CommandEntry> = {
  run: { summary: "run the gateway daemon", load: async () => (await import("./run.js")).run },
  check: { summary: "validate a bootstrap file or a remote config document", load: async () => (await import("./check.js")).check },
  "leaf-config": { summary: "print the nats-server config of this device's leaf node", load: async () => (await import("./leaf-config.js")).leafConfig },
  demo: { summary: "run hub + leaf + daemon with simulated sensors locally, with a live view", load: async () => (await import("./demo.js")).demo },
  cloud: { summary: "hub side: hub-config | init | add-device ID… | remove-device ID… | reconcile | devices | ingest | history | latest | gaps", load: async () => (await import("./cloud.js")).cloud },
  watch: { summary: "live view of readings matching a wildcard subject", load: async () => (await import("./watch.js")).watch },
  config: { summary: "a device's remote config in the hub KV: push ID FILE | get ID | history ID", load: async () => (await import("./config.js")).config },
  status: { summary: "ask a device for its status (through the hub)", load: async () => (await import("./status.js")).status },
  devices: { summary: "discover the connected gateways ($SRV.PING)", load: async () => (await import("./devices.js")).devices },
};

/** The package version, or `unknown` when package.json cannot be read. */
export function version(): string {
  const v = packageVersion();
  return v === "0.0.0" ? "unknown" : v;
}

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    "edge-gateway: sensors → NATS subjects through a local leaf JetStream, configured through NATS KV",
    "",
    "Usage: edge-gateway <command> [options]     (edge-gateway <command> --help for its options)",
    "",
    "Commands:",
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Exit codes: 0 ok, 1 invalid input, 2 cannot reach what it needs.",
  ].join("\n");
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    io.err(help());
    return EXIT.invalid;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    io.out(help());
    return EXIT.ok;
  }
  if (name === "--version" || name === "-v") {
    io.out(version());
    return EXIT.ok;
  }
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!entry) {
    io.err(`error: unknown command ${JSON.stringify(name)}\n\n${help()}`);
    return EXIT.invalid;
  }
  return (await entry.load()).run(rest, io);
}
