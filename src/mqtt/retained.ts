/**
 * Retained messages (MQTT 3.1.1 §3.3.1.3): the last RETAIN=1 message per topic, delivered to every new
 * matching subscription with RETAIN set. A retained message with an empty payload clears the topic.
 * Bounded by count and bytes (topic + payload + MQTT 5 properties, per board profile): a new topic beyond either bound
 * is refused (`full`: counted by the caller), never an older one silently dropped; replacing a
 * topic's message is refused only when the new one would not fit.
 *
 * MQTT 5 Message Expiry (§3.3.2.3.3): a retained message whose publisher gave a Message Expiry Interval
 * is kept only that long; once it has passed the message is deleted (§3.3.1.3: "the retained message
 * ... is removed when it expires") and no longer delivered, and one delivered earlier carries the time
 * left, in whole seconds rounded up. Times are the caller's monotonic ms.
 */
import { topicMatches } from "./topic.js";
import { utf8Length } from "./utf8.js";
import type { Properties } from "./packets.js";
import { propsLength } from "./props.js";

export interface RetainedMessage {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: 0 | 1 | 2;
  /** MQTT 5 properties passed on with it (RAM only: the flash copy keeps topic, payload and QoS). */
  readonly properties?: Properties;
  /** Monotonic ms after which it is expired (its publisher's Message Expiry Interval); absent: never. */
  readonly expiresAt?: number;
}

export type RetainOutcome = "stored" | "replaced" | "cleared" | "absent" | "full";

/** Defaults when the board profile gives none (the esp32 profile's figures). */
export const MAX_RETAINED_MESSAGES = 64;
export const MAX_RETAINED_BYTES = 8192;

/** Bytes a retained message holds: topic (UTF-8), payload, and its MQTT 5 properties as on the wire (RAM and flash keep them). */
function cost(topic: string, payload: Uint8Array, properties?: Properties): number {
  return utf8Length(topic) + payload.length + (properties === undefined ? 0 : propsLength(properties, PUBLISH) - 1);
}

/** MQTT packet type of PUBLISH (props.ts checks which properties it may carry). */
const PUBLISH = 3;

export class RetainedStore {
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly #byTopic = new Map<string, RetainedMessage>();
  #bytes = 0;
  /** Messages with an expiry held now: the expiry scan runs only while there are any. */
  #expiring = 0;

  constructor(maxMessages = MAX_RETAINED_MESSAGES, maxBytes = MAX_RETAINED_BYTES) {
    if (!Number.isInteger(maxMessages) || maxMessages < 0) throw new RangeError(`maxMessages must be an integer >= 0, got ${maxMessages}`);
    if (!Number.isInteger(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be an integer >= 0, got ${maxBytes}`);
    this.maxMessages = maxMessages;
    this.maxBytes = maxBytes;
  }

  get size(): number {
    return this.#byTopic.size;
  }

  /** Bytes held (topics' UTF-8 plus payloads). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Stores, replaces or (empty payload) clears `topic`'s retained message. The payload is kept as given.
   * `now` (monotonic ms) starts its Message Expiry Interval, when its properties carry one.
   */
  set(topic: string, payload: Uint8Array, qos: 0 | 1 | 2, properties?: Properties, now = 0): RetainOutcome {
    this._expire(now);
    const old = this.#byTopic.get(topic);
    if (payload.length === 0) {
      if (old === undefined) return "absent";
      this.#byTopic.delete(topic);
      this.#bytes -= cost(topic, old.payload, old.properties);
      if (old.expiresAt !== undefined) this.#expiring--;
      return "cleared";
    }
    const add = cost(topic, payload, properties);
    const freed = old === undefined ? 0 : cost(topic, old.payload, old.properties);
    if (this.#bytes - freed + add > this.maxBytes) return "full";
    if (old === undefined && this.#byTopic.size >= this.maxMessages) return "full";
    if (old !== undefined) {
      this.#byTopic.delete(topic); // re-inserted last: iteration is oldest first
      if (old.expiresAt !== undefined) this.#expiring--;
    }
    const e = properties?.messageExpiryInterval;
    this.#byTopic.set(topic, properties === undefined ? { topic, payload, qos } : e === undefined ? { topic, payload, qos, properties } : { topic, payload, qos, properties, expiresAt: now + e * 1000 });
    if (e !== undefined) this.#expiring++;
    this.#bytes += add - freed;
    return old === undefined ? "stored" : "replaced";
  }

  /** `topic`'s retained message at `now` (absent once expired), as delivered: with the expiry time left. */
  get(topic: string, now = 0): RetainedMessage | undefined {
    this._expire(now);
    const m = this.#byTopic.get(topic);
    return m === undefined ? undefined : this._asOf(m, now);
  }

  /** The retained messages `filter` matches at `now` (§4.7, `$` rule included), oldest first, expired ones deleted. */
  matching(filter: string, now = 0): RetainedMessage[] {
    this._expire(now);
    const out: RetainedMessage[] = [];
    if (filter.indexOf("+") < 0 && filter.indexOf("#") < 0) {
      const m = this.#byTopic.get(filter);
      if (m !== undefined) out.push(this._asOf(m, now));
      return out;
    }
    for (const m of this.#byTopic.values()) if (topicMatches(filter, m.topic)) out.push(this._asOf(m, now));
    return out;
  }

  /** Every retained message not expired at `now`, oldest first (for persisting). */
  all(now = 0): RetainedMessage[] {
    this._expire(now);
    return [...this.#byTopic.values()];
  }

  clear(): void {
    this.#byTopic.clear();
    this.#bytes = 0;
    this.#expiring = 0;
  }

  /** Deletes every message expired at `now`. */
  private _expire(now: number): void {
    if (this.#expiring === 0) return;
    for (const m of this.#byTopic.values()) {
      if (m.expiresAt === undefined || m.expiresAt > now) continue;
      this.#byTopic.delete(m.topic);
      this.#bytes -= cost(m.topic, m.payload, m.properties);
      this.#expiring--;
    }
  }

  /** `m` as sent at `now`: its Message Expiry Interval is the time left (§3.3.2.3.3). */
  private _asOf(m: RetainedMessage, now: number): RetainedMessage {
    if (m.expiresAt === undefined) return m;
    // Called after _expire(now), so some time is left: at least 1 s is sent (persist.ts `fresh` rounds the same way).
    return { topic: m.topic, payload: m.payload, qos: m.qos, properties: { ...m.properties, messageExpiryInterval: Math.ceil((m.expiresAt - now) / 1000) }, expiresAt: m.expiresAt };
  }
}
