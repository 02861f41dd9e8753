/**
 * Retained messages (MQTT 3.1.1 §3.3.1.3): the last RETAIN=1 message per topic, delivered to every new
 * matching subscription with RETAIN set. A retained message with an empty payload clears the topic.
 * Bounded by count and bytes (topic + payload, per board profile): a new topic beyond either bound
 * is refused (`full`: counted by the caller), never an older one silently dropped; replacing a
 * topic's message is refused only when the new one would not fit.
 */
import { topicMatches } from "./topic.js";
import { utf8Length } from "./utf8.js";
import type { Properties } from "./packets.js";

export interface RetainedMessage {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: 0 | 1 | 2;
  /** MQTT 5 properties passed on with it (RAM only: the flash copy keeps topic, payload and QoS). */
  readonly properties?: Properties;
}

export type RetainOutcome = "stored" | "replaced" | "cleared" | "absent" | "full";

/** Defaults when the board profile gives none (the esp32 profile's figures). */
export const MAX_RETAINED_MESSAGES = 64;
export const MAX_RETAINED_BYTES = 8192;

function cost(topic: string, payload: Uint8Array): number {
  return utf8Length(topic) + payload.length;
}

export class RetainedStore {
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly #byTopic = new Map<string, RetainedMessage>();
  #bytes = 0;

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

  /** Stores, replaces or (empty payload) clears `topic`'s retained message. The payload is kept as given. */
  set(topic: string, payload: Uint8Array, qos: 0 | 1 | 2, properties?: Properties): RetainOutcome {
    const old = this.#byTopic.get(topic);
    if (payload.length === 0) {
      if (old === undefined) return "absent";
      this.#byTopic.delete(topic);
      this.#bytes -= cost(topic, old.payload);
      return "cleared";
    }
    const add = cost(topic, payload);
    const freed = old === undefined ? 0 : cost(topic, old.payload);
    if (this.#bytes - freed + add > this.maxBytes) return "full";
    if (old === undefined && this.#byTopic.size >= this.maxMessages) return "full";
    if (old !== undefined) this.#byTopic.delete(topic); // re-inserted last: iteration is oldest first
    this.#byTopic.set(topic, properties === undefined ? { topic, payload, qos } : { topic, payload, qos, properties });
    this.#bytes += add - freed;
    return old === undefined ? "stored" : "replaced";
  }

  get(topic: string): RetainedMessage | undefined {
    return this.#byTopic.get(topic);
  }

  /** The retained messages `filter` matches (§4.7, `$` rule included), oldest first. */
  matching(filter: string): RetainedMessage[] {
    const out: RetainedMessage[] = [];
    if (filter.indexOf("+") < 0 && filter.indexOf("#") < 0) {
      const m = this.#byTopic.get(filter);
      if (m !== undefined) out.push(m);
      return out;
    }
    for (const m of this.#byTopic.values()) if (topicMatches(filter, m.topic)) out.push(m);
    return out;
  }

  /** Every retained message, oldest first (for persisting). */
  all(): RetainedMessage[] {
    return [...this.#byTopic.values()];
  }

  clear(): void {
    this.#byTopic.clear();
    this.#bytes = 0;
  }
}
