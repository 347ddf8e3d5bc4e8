/**
 * JSON-lines sink: one reading body per line, appended to a file or written to stdout.
 * `write` resolves once the lines were handed to the OS (no fsync): a crash of the machine can
 * lose the last lines, and a redelivery after a crash between the write and the ack writes a
 * line twice — use a database sink for exactly-once.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import type { ReadingSink, StoredReading } from "./types.js";

export class JsonlSink implements ReadingSink {
  readonly kind = "jsonl";
  readonly target: string;
  private readonly out: WriteStream | NodeJS.WriteStream;
  private closed = false;

  /** `file` `-` means stdout. */
  constructor(file: string) {
    this.target = file === "-" ? "stdout" : file;
    this.out = file === "-" ? process.stdout : createWriteStream(file, { flags: "a" });
  }

  /** Writes the original body of each reading when known (`raw`), else the stored form. */
  write(batch: readonly StoredReading[]): Promise<number> {
    const text = batch.map((r) => `${JSON.stringify(r.raw ?? r)}\n`).join("");
    return new Promise<number>((resolve, reject) => {
      this.out.write(text, (err) => (err ? reject(err) : resolve(batch.length)));
    });
  }

  isDataError(): boolean {
    return false;
  }

  async close(): Promise<void> {
    if (this.closed || this.out === process.stdout) return;
    this.closed = true;
    await new Promise<void>((r) => (this.out as WriteStream).end(r));
  }
}
