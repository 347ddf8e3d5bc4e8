import type { Writable } from "node:stream";

/**
 * Holds a socket's writes until the event loop's check phase, so the PUBACKs of every message in
 * one socket read go out in one `writev` (issue 13). MQTT.js corks each packet only until the
 * next tick, and reads the next packet on a later tick: without this, one syscall per PUBACK,
 * a third of the ingest's CPU per message. Cheap when already held this turn.
 */
export class TurnCork {
  private held?: Writable;

  hold(stream: Writable | undefined): void {
    if (this.held || !stream || stream.destroyed) return;
    this.held = stream;
    stream.cork();
    setImmediate(() => {
      this.held = undefined;
      stream.uncork();
    });
  }
}
