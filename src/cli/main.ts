import { readFileSync } from "node:fs";
import { check } from "./check.js";
import { config } from "./config.js";
import { EXIT, stdio, type Command, type Io } from "./command.js";
import { cloud } from "./cloud.js";
import { demo } from "./demo.js";
import { devices } from "./devices.js";
import { leafConfig } from "./leaf-config.js";
import { run } from "./run.js";
import { status } from "./status.js";
import { watch } from "./watch.js";

/** Every command; the order is the order of `--help`. */
export const commands: Record<string, Command> = {
  run,
  check,
  "leaf-config": leafConfig,
  demo,
  cloud,
  watch,
  config,
  status,
  devices,
};

export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
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
  const cmd = commands[name];
  if (!cmd) {
    io.err(`error: unknown command ${JSON.stringify(name)}\n\n${help()}`);
    return EXIT.invalid;
  }
  return cmd.run(rest, io);
}
