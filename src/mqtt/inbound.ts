/**
 * Device → gateway flow control for one session. The gateway's `onPublish` may accept a message later
 * (a promise that resolves once the record covering it is durable); QoS 1 PUBACKs then go out when it
 * resolves, in the order the PUBLISHes arrived (MQTT 3.1.1 §4.6). At most `maxPendingAccepts`
 * acceptances are open per session: at the limit the socket is paused (when it can be) and further
 * packets are held, in order, until one settles. Held bytes are bounded; past the bound the connection
 * closes (`backpressure`).
 */
import type { Packet, PublishPacket } from "./packets.js";
import type { Session } from "./session.js";

interface Pending {
  /** The PUBLISH's packet id for QoS 1 and 2; 0 for QoS 0 (nothing to acknowledge). */
  readonly packetId: number;
  /** PUBACK for QoS 1, PUBREC for QoS 2. */
  readonly ack: "puback" | "pubrec";
  accepted: boolean;
  /** MQTT 5 reason code of the ack (absent: success). */
  readonly reasonCode?: number;
}

/** How a host settles one device PUBLISH without a promise (BrokerOptions.onPublishAck): once, either way. */
export interface PublishAck {
  /** Accepted: its PUBACK (PUBREC for QoS 2) goes out in arrival order. */
  accept(): void;
  /** Not accepted: no PUBACK, and the connection closes (the device keeps the message). */
  refuse(reason: unknown): void;
}

/**
 * A publish awaiting its host's settlement: the pending entry and its {@link PublishAck} in one object,
 * with methods on the prototype (no closure, derived promise or reaction per message in flight).
 * Settling twice, or after the session closed, does nothing; neither method throws.
 */
class Acceptance implements Pending, PublishAck {
  readonly packetId: number;
  readonly ack: "puback" | "pubrec";
  accepted = false;
  #inbound: Inbound | undefined;

  constructor(inbound: Inbound, packetId: number, ack: "puback" | "pubrec") {
    this.#inbound = inbound;
    this.packetId = packetId;
    this.ack = ack;
  }

  accept(): void {
    const inbound = this.#inbound;
    this.#inbound = undefined;
    try {
      inbound?.settled(this, undefined, false);
    } catch {
      // A socket that throws on write is closing: nothing more to acknowledge.
    }
  }

  refuse(reason: unknown): void {
    const inbound = this.#inbound;
    this.#inbound = undefined;
    try {
      inbound?.settled(this, reason, true);
    } catch {
      // As above.
    }
  }
}

/** Rough in-memory size of a held packet (payload and topic dominate). */
function heldSize(p: Packet): number {
  return p.cmd === "publish" ? 16 + p.topic.length + p.payload.length : 16;
}

function isThenable(v: unknown): v is PromiseLike<void> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

export class Inbound {
  readonly #s: Session;
  readonly #max: number;
  readonly #maxHeldBytes: number;
  /** Publishes handed to the gateway whose PUBACK (or turn) has not come yet, in arrival order. */
  readonly #pending: Pending[] = [];
  /** Packets read while at the limit, in arrival order. */
  #held: Packet[] = [];
  #heldBytes = 0;
  #paused = false;

  constructor(session: Session, maxPendingAccepts: number, maxHeldBytes: number) {
    this.#s = session;
    this.#max = maxPendingAccepts;
    this.#maxHeldBytes = maxHeldBytes;
  }

  /** Acceptances not yet settled or acknowledged. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Whether reading is paused for this session. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * True when `p` must wait: earlier packets are held, or it is a PUBLISH and the acceptance limit is
   * reached. The packet is then held (and the socket paused).
   */
  hold(p: Packet): boolean {
    if (this.#held.length === 0 && (p.cmd !== "publish" || this.#pending.length < this.#max)) return false;
    this.#held.push(p);
    this.#heldBytes += heldSize(p);
    this._pause();
    if (this.#heldBytes > this.#maxHeldBytes) this.#s.close("backpressure", "device sent past the acceptance limit");
    return true;
  }

  /**
   * Acknowledges a PUBLISH without handing it to the gateway (refused by the ACL, or a QoS 2 resend),
   * in turn after earlier pending ones.
   */
  acknowledge(p: PublishPacket, reasonCode = 0): void {
    if (p.qos === 0) return;
    const ack = p.qos === 1 ? "puback" : "pubrec";
    if (this.#pending.length === 0) this.#s.send(reasonCode === 0 ? { cmd: ack, packetId: p.packetId! } : { cmd: ack, packetId: p.packetId!, reasonCode });
    else this.#pending.push({ packetId: p.packetId!, ack, accepted: true, ...(reasonCode !== 0 ? { reasonCode } : {}) });
  }

  /** Hands one device PUBLISH to the gateway (QoS 2 as 1) and acknowledges it when accepted. */
  publish(p: PublishPacket): void {
    const s = this.#s;
    if (s.host.settlesAcks) return this._publishAck(p);
    let result: unknown;
    try {
      result = s.host.publish(s.clientId!, p.topic, p.payload, p.qos === 0 ? 0 : 1);
    } catch (e) {
      // Not accepted: no PUBACK, so the device keeps the message; fail closed on this connection.
      if (p.qos === 2) s.qos2In.delete(p.packetId!);
      this._forgetUnaccepted();
      s.close("internal-error", String(e));
      return;
    }
    const packetId = p.qos === 0 ? 0 : p.packetId!;
    const ack = p.qos === 2 ? "pubrec" : "puback";
    if (!isThenable(result)) {
      if (this.#pending.length === 0) {
        if (packetId !== 0) s.send({ cmd: ack, packetId });
      } else {
        this.#pending.push({ packetId, ack, accepted: true }); // acknowledged in turn, after the earlier ones
      }
      return;
    }
    const entry: Pending = { packetId, ack, accepted: false };
    this.#pending.push(entry);
    if (this.#pending.length >= this.#max) this._pause();
    result.then(
      () => this._accepted(entry),
      (e: unknown) => {
        if (s.state === "closed") return;
        this._forgetUnaccepted();
        s.close("internal-error", String(e));
      },
    );
  }

  /** {@link publish} through the host's `publishAck`: the entry is pending before the host may settle it. */
  private _publishAck(p: PublishPacket): void {
    const s = this.#s;
    const entry = new Acceptance(this, p.qos === 0 ? 0 : p.packetId!, p.qos === 2 ? "pubrec" : "puback");
    this.#pending.push(entry);
    if (this.#pending.length >= this.#max) this._pause();
    try {
      s.host.publishAck(s.clientId!, p.topic, p.payload, p.qos === 0 ? 0 : 1, entry);
    } catch (e) {
      entry.refuse(e);
    }
  }

  /** An {@link Acceptance} settled: accepted ones are acknowledged in turn; a refusal closes the connection. */
  settled(entry: Pending, reason: unknown, refused: boolean): void {
    const s = this.#s;
    if (s.state === "closed" || !this.#pending.includes(entry)) return;
    if (!refused) return this._accepted(entry);
    // Not accepted: no PUBACK, so the device keeps the message (its QoS 2 id forgotten with the other
    // unaccepted ones); fail closed on this connection.
    this._forgetUnaccepted();
    s.close("internal-error", String(reason));
  }

  /** Forgets everything (the session closed). Later settlements are ignored. */
  clear(): void {
    this.#pending.length = 0;
    this.#held = [];
    this.#heldBytes = 0;
  }

  /**
   * Before closing for a refusal: QoS 2 ids not yet accepted must not count as received, or a persistent
   * session's resend after reconnecting would be acknowledged without reaching the gateway.
   */
  private _forgetUnaccepted(): void {
    for (const e of this.#pending) if (e.ack === "pubrec" && !e.accepted) this.#s.qos2In.delete(e.packetId);
  }

  private _accepted(entry: Pending): void {
    const s = this.#s;
    if (s.state === "closed") return;
    entry.accepted = true;
    while (this.#pending.length > 0 && this.#pending[0]!.accepted) {
      const head = this.#pending.shift()!;
      if (head.packetId !== 0) s.send(head.reasonCode === undefined ? { cmd: head.ack, packetId: head.packetId } : { cmd: head.ack, packetId: head.packetId, reasonCode: head.reasonCode });
      if ((s.state as string) === "closed") return;
    }
    this._drain();
  }

  /** Runs held packets while there is room, then resumes reading. */
  private _drain(): void {
    const s = this.#s;
    while (this.#held.length > 0 && s.state !== "closed") {
      const next = this.#held[0]!;
      if (next.cmd === "publish" && this.#pending.length >= this.#max) return;
      this.#held.shift();
      this.#heldBytes -= heldSize(next);
      s.dispatch(next);
    }
    if (s.state !== "closed" && this.#held.length === 0 && this.#pending.length < this.#max && this.#paused) {
      this.#paused = false;
      s.socket.resume?.();
    }
  }

  private _pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#s.socket.pause?.();
  }
}
