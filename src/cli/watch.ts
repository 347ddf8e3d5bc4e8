import type { Msg } from "@nats-io/nats-core";
import type { ReadingMessage } from "../bridge/publisher.js";
import { connectServer, serverFlags } from "./connect.js";
import { EXIT, parse, reportError, UsageError, type Command } from "./command.js";

const usage = `Usage: edge-gateway watch SUBJECT --server URL [--json] [--count N]

Live view of readings on subjects matching SUBJECT, e.g. 'sensors.*.eu-west.>' (all readings
of a region), 'sensors.temperature.>' (every temperature), 'sensors.>' (everything).
One line per reading: time, subject, value(s), unit. --json prints the raw message bodies.
--count N exits after N readings.`;

/** Checks a NATS subscription subject: non-empty tokens, no spaces, `>` only last. */
export function subjectProblem(subject: string): string | undefined {
  if (!subject) return "the subject is empty";
  if (/\s/.test(subject)) return "a subject cannot contain spaces";
  const tokens = subject.split(".");
  if (tokens.some((t) => t === "")) return "a subject cannot have empty tokens (`..`, or a leading/trailing dot)";
  const gt = tokens.indexOf(">");
  if (gt >= 0 && gt !== tokens.length - 1) return "`>` may only be the last token";
  if (tokens.some((t) => t.length > 1 && (t.includes("*") || t.includes(">")))) return "wildcards `*` and `>` must be whole tokens";
  return undefined;
}

function formatValues(r: ReadingMessage): string {
  if (r.values) {
    return Object.entries(r.values)
      .map(([k, v]) => `${k}=${v}${r.units?.[k] ? ` ${r.units[k]}` : ""}`)
      .join(" ") + (r.unit ? ` ${r.unit}` : "");
  }
  return `${r.value}${r.unit ? ` ${r.unit}` : ""}`;
}

/** One human line for a reading message; falls back to the raw text for anything else. */
export function formatReadingLine(m: Pick<Msg, "subject" | "string">): string {
  const text = m.string();
  try {
    const r = JSON.parse(text) as ReadingMessage;
    if (typeof r.ts === "number" && (r.value !== undefined || r.values !== undefined)) {
      const q = r.quality && r.quality !== "good" ? ` (${r.quality})` : "";
      return `${new Date(r.ts).toISOString()}  ${m.subject}  ${formatValues(r)}${q}  #${r.seq}`;
    }
  } catch {
    // not a reading: print it as it came
  }
  return `${new Date().toISOString()}  ${m.subject}  ${text}`;
}

export const watch: Command = {
  usage,
  async run(argv, io) {
    try {
      const { values, positionals } = parse(argv, { ...serverFlags, json: { type: "boolean" }, count: { type: "string" } }, true);
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      const subject = positionals[0];
      if (!subject) throw new UsageError("give a subject, e.g. 'sensors.*.eu-west.>'");
      const problem = subjectProblem(subject);
      if (problem) throw new UsageError(`invalid subject ${JSON.stringify(subject)}: ${problem}`);
      const max = values.count === undefined ? undefined : Number(values.count);
      if (max !== undefined && !(Number.isInteger(max) && max > 0)) throw new UsageError("--count must be a positive whole number");
      const nc = await connectServer(values.server, values.creds);
      const sub = nc.subscribe(subject, max ? { max } : {});
      const stop = () => sub.unsubscribe();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      // The server has the subscription once flush returns: only then say we are watching.
      await nc.flush();
      io.err(`watching ${subject} on ${nc.getServer()} (Ctrl-C to stop)`);
      for await (const m of sub) io.out(values.json ? m.string() : formatReadingLine(m));
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      await nc.close();
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, usage);
    }
  },
};
