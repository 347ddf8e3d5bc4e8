/**
 * The leaf stream (DESIGN A3): created with the configured limits, or aligned to them; and the
 * one lookup the seq store may need (a sensor's last stored seq, as a floor).
 */
import { DiscardPolicy, jetstreamManager, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import { GatewayError, errorMessage } from "../../errors.js";
import type { Logger } from "../../logger.js";

export interface LeafStreamOptions {
  deviceId: string;
  stream: string;
  maxBytes: number;
  maxAgeMs: number;
  duplicateWindowMs: number;
  timeoutMs: number;
  logger: Logger;
}

export class LeafStream {
  private jsm?: Promise<JetStreamManager>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: LeafStreamOptions,
  ) {}

  private manager(): Promise<JetStreamManager> {
    this.jsm ??= jetstreamManager(this.nc, { timeout: this.opts.timeoutMs }).catch((err: unknown) => {
      this.jsm = undefined;
      throw err;
    });
    return this.jsm;
  }

  /**
   * Creates the stream (`sensors.>`, file storage, limits, discard old), or updates its limits to
   * the configured ones; resolves with how many messages it holds. Throws EGW_STREAM with the fix when the stream exists but does not
   * capture `sensors.>`, or cannot be created.
   */
  async ensure(): Promise<{ messages: number }> {
    const jsm = await this.manager();
    const want: Partial<StreamConfig> = {
      max_bytes: this.opts.maxBytes,
      max_age: nanos(this.opts.maxAgeMs),
      duplicate_window: nanos(this.opts.duplicateWindowMs),
    };
    try {
      const info = await jsm.streams.info(this.opts.stream);
      const c = info.config;
      if (!(c.subjects ?? []).includes("sensors.>")) {
        throw new GatewayError(
          "EGW_STREAM",
          `stream ${this.opts.stream} on the local leaf does not capture sensors.> (its subjects: ${JSON.stringify(c.subjects ?? [])}): delete it, or set buffer.stream to another name`,
        );
      }
      if (c.max_bytes !== want.max_bytes || c.max_age !== want.max_age || c.duplicate_window !== want.duplicate_window) {
        await jsm.streams.update(this.opts.stream, { ...c, ...want });
        this.opts.logger.info({ stream: this.opts.stream, ...want }, "updated leaf stream limits");
      }
      return { messages: info.state.messages };
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      if (!(err instanceof JetStreamApiError && err.status === 404)) {
        throw new GatewayError("EGW_STREAM", `cannot inspect stream ${this.opts.stream} on the local leaf: ${errorMessage(err)}`, { cause: err });
      }
      await this.add(jsm, want);
      return { messages: 0 };
    }
  }

  private async add(jsm: JetStreamManager, limits: Partial<StreamConfig>): Promise<void> {
    try {
      await jsm.streams.add({
        name: this.opts.stream,
        subjects: ["sensors.>"],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        ...limits,
      });
    } catch (err) {
      const hint = /insufficient storage/i.test(errorMessage(err))
        ? `: buffer.maxBytes (${this.opts.maxBytes} bytes) is more than the leaf's JetStream max_file_store allows; lower buffer.maxBytes or regenerate the leaf config with \`edge-gateway leaf-config\``
        : "";
      throw new GatewayError("EGW_STREAM", `cannot create stream ${this.opts.stream} on the local leaf: ${errorMessage(err)}${hint}`, { cause: err });
    }
    this.opts.logger.info({ stream: this.opts.stream }, "created leaf stream");
  }

  /**
   * The seq in the body of the sensor's last message in the stream (any type or region), if
   * any. "Last" is in stream order, which a late retry can make older than the highest seq:
   * a floor only.
   */
  async lastStoredSeq(sensor: string): Promise<number | undefined> {
    const jsm = await this.manager();
    try {
      const m = await jsm.streams.getMessage(this.opts.stream, { last_by_subj: `sensors.*.*.${this.opts.deviceId}.${sensor}` });
      if (!m) return undefined;
      const seq = (m.json() as { seq?: unknown }).seq;
      return typeof seq === "number" ? seq : undefined;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.status === 404) return undefined;
      throw err;
    }
  }
}
