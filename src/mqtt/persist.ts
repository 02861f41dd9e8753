/**
 * Persistent sessions (MQTT 3.1.1 §3.1.2.4, CONNECT with clean session 0): what the broker keeps for
 * a client while it is offline — its subscriptions (they stay in the topic tree, pointing at the
 * parked session), its QoS 1/2 messages not yet acknowledged (redelivered with DUP set, same packet
 * id, §4.4), the QoS 2 ids it sent whose PUBREL has not come, and QoS 1/2 messages that matched while
 * it was away (QoS 0 ones are not kept, as Mosquitto does by default). Bounded: at most `maxQueued`
 * messages; beyond it the oldest is dropped and counted. Kept in RAM: a reboot of the gateway ends them.
 */

import type { Properties } from "./packets.js";

/** One message owed to a client. */
export interface OwedMessage {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: 1 | 2;
  /** MQTT 5 properties passed on with it. */
  readonly properties?: Properties;
  /**
   * MQTT 5 Message Expiry (§3.3.2.3.3): the monotonic ms after which it is not delivered. When it is
   * delivered, its Message Expiry Interval is the time left, in whole seconds rounded up.
   */
  readonly expiresAt?: number;
}

/** `m` as owed from now on: with its expiry deadline when its properties carry a Message Expiry Interval. */
export function owed(topic: string, payload: Uint8Array, qos: 1 | 2, properties: Properties | undefined, now: number): OwedMessage {
  if (properties === undefined) return { topic, payload, qos };
  const e = properties.messageExpiryInterval;
  return e === undefined ? { topic, payload, qos, properties } : { topic, payload, qos, properties, expiresAt: now + e * 1000 };
}

/**
 * The properties to send an owed message with at `now`, or undefined when it expired (drop it). Without
 * an expiry deadline, its properties unchanged.
 */
export function fresh(m: OwedMessage, now: number): { properties: Properties | undefined } | undefined {
  if (m.expiresAt === undefined) return { properties: m.properties };
  const left = m.expiresAt - now;
  if (left <= 0) return undefined;
  return { properties: { ...m.properties, messageExpiryInterval: Math.ceil(left / 1000) } };
}

/** A subscription's grant: QoS in bits 0–1, MQTT 5 no-local (bit 2), retain-as-published (bit 3), retain handling (bits 4–5). */
export const NO_LOCAL = 4;
export const RETAIN_AS_PUBLISHED = 8;

/** An in-flight message to a client, by packet id (see Session.inflight). */
export interface InflightMessage extends OwedMessage {
  /** AWAIT_PUBACK, AWAIT_PUBREC or AWAIT_PUBCOMP (session.ts). */
  state: number;
}

export class ParkedSession {
  readonly clientId: string;
  /** Filter → grant (QoS and options, see {@link NO_LOCAL}). */
  readonly subscriptions: Map<string, number>;
  /** Sent before the client left and not settled: redelivered first, with DUP. */
  readonly inflight: Map<number, InflightMessage>;
  /** QoS 2 ids from the client awaiting PUBREL. */
  readonly qos2In: Set<number>;
  /** Matched while offline, oldest first. */
  readonly queue: OwedMessage[] = [];
  readonly maxQueued: number;
  /** Messages dropped because the queue was full (oldest first). */
  dropped = 0;
  /** Always "parked": a subscriber in the topic tree that is not a live connection. */
  readonly state = "parked" as const;
  /** MQTT 5 session expiry timer (absent: kept until evicted or a reboot). */
  expiry: unknown = undefined;

  /** For Message Expiry deadlines (monotonic ms, the same clock the live session drains with). */
  readonly #clock: { monotonic(): number };

  constructor(clientId: string, subscriptions: Map<string, number>, inflight: Map<number, InflightMessage>, qos2In: Set<number>, maxQueued: number, clock: { monotonic(): number }) {
    this.#clock = clock;
    this.clientId = clientId;
    this.subscriptions = subscriptions;
    this.inflight = inflight;
    this.qos2In = qos2In;
    this.maxQueued = maxQueued;
  }

  /** A message matched one of the parked subscriptions: QoS 0 is not kept; the rest queued at min(qos, granted). */
  deliver(topic: string, payload: Uint8Array, qos: 0 | 1 | 2, grant: number, _retain = false, properties?: Properties): boolean {
    const granted = grant & 3;
    const q = (qos < granted ? qos : granted) as 0 | 1 | 2;
    if (q === 0) return true;
    this.keep(owed(topic, payload, q, properties, this.#clock.monotonic()));
    return true;
  }

  /** Queues a message already owed (a live session's backlog when it parks), keeping its expiry deadline. */
  keep(m: OwedMessage): void {
    if (this.maxQueued === 0) {
      this.dropped++;
      return;
    }
    if (this.queue.length >= this.maxQueued) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push(m);
  }
}
