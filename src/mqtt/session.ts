/**
 * One device connection to the broker, as an explicit state machine (MQTT 3.1.1 §3.1, §3.1.2.10, §4.1):
 *
 *        accept()
 *           │
 *           ▼
 *   ┌──────────────────┐  connect timeout, first packet not CONNECT,
 *   │ awaiting-connect │  malformed bytes, CONNECT refused (CONNACK 1/2/3/5)
 *   └──────────────────┘ ─────────────────────────────────────────────┐
 *           │ CONNECT accepted: CONNACK 0                             │
 *           ▼                                                         ▼
 *   ┌──────────────────┐  DISCONNECT, keepalive expiry, peer closed, ┌────────┐
 *   │    connected     │  protocol error, takeover, broker.close() ──▶│ closed │
 *   └──────────────────┘                                             └────────┘
 *
 * Only `closed` is final: nothing is written, published or scheduled after it. Packet handlers live in
 * `handlers.ts`, one per packet type (as in MQTT.js); this file owns state, IO, timers and closing.
 */
import type { AuditEvent, AuditKind, AuditDecision, DetailValue } from "../audit/types.js";
import type { Clock, DeviceSocket, SocketHandler, TimerId, Timers } from "../ports.js";
import { Decoder } from "./decode.js";
import { encode } from "./encode.js";
import { ConnackCode, MqttError, type ConnectPacket, type Packet, type Will } from "./packets.js";
import { handlePacket, ProtocolReason } from "./handlers.js";
import { Inbound } from "./inbound.js";
import { TokenBucket } from "./rate.js";
import type { InflightMessage, OwedMessage, ParkedSession } from "./persist.js";

/** States of a message in {@link Session.inflight}. */
export const AWAIT_PUBACK = 1;
export const AWAIT_PUBREC = 2;
export const AWAIT_PUBCOMP = 3;

export type SessionState = "awaiting-connect" | "connected" | "closed";

/** Why a connected session ended: the `reason` of its `disconnect` audit record. */
export type DisconnectReason =
  | "clean"
  | "keepalive"
  | "peer-closed"
  | "protocol"
  | "takeover"
  | "shutdown"
  | "backpressure"
  | "rate-limit"
  | "internal-error"
  /** The device was removed by the owner (its credentials are gone). */
  | "removed"
  /** The device's credentials were disabled (incident containment, src/gateway/devices.ts). */
  | "disabled"
  /** A socket still awaiting CONNECT, closed to make room for a newer one (no `disconnect` record). */
  | "evicted";

export { ProtocolReason } from "./handlers.js";

export interface SessionLimits {
  readonly maxPacketBytes: number;
  readonly maxSubscriptionsPerClient: number;
  readonly maxInflight: number;
  readonly connectTimeoutMs: number;
  readonly maxClientIdBytes: number;
  readonly maxPendingAccepts: number;
  readonly publishRatePerSec: number;
  readonly publishBurst: number;
  readonly aggregateWindowMs: number;
  /** QoS 1/2 messages kept per persistent session while offline (or waiting for in-flight room). */
  readonly maxQueuedPerSession: number;
  /** Highest QoS granted to a subscription (1 or 2). */
  readonly maxQos: 1 | 2;
}

/** What a session needs from its broker. Every callback into the gateway is guarded there. */
export interface SessionHost {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly limits: SessionLimits;
  authenticate(clientId: string, username: string | undefined, password: Uint8Array | undefined): boolean;
  authorizeSubscribe(clientId: string, filter: string): boolean;
  /** Whether a device may publish to `topic` (checked for every PUBLISH and the will). */
  authorizePublish(clientId: string, topic: string): boolean;
  /**
   * Local side of a device PUBLISH the ACL allowed: stores/clears it as retained when `retain`, and
   * delivers it to every matching subscription of connected clients (§3.3.5).
   */
  route(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1 | 2, retain: boolean): void;
  /** Records `session`'s subscription in the broker's topic tree (and delivers retained messages). */
  subscribed(session: Session, filter: string, qos: 0 | 1 | 2, fresh: boolean): void;
  unsubscribed(session: Session, filter: string): void;
  /**
   * After admission: the parked state of `session`'s client id, handed over (its subscriptions moved
   * to `session` in the topic tree) when `resume`, else discarded (clean session, §3.1.2.4).
   */
  resume(session: Session, resume: boolean): ParkedSession | undefined;
  /** A persistent session closed: keep its subscriptions and owed messages for its return. */
  park(session: Session): void;
  /**
   * Device → gateway. Returning means accepted; a promise means accepted when it resolves. A throw or a
   * rejection means not accepted (then no PUBACK is sent).
   */
  publish(clientId: string, topic: string, payload: Uint8Array, qos: 0 | 1): void | Promise<void>;
  /**
   * Registers an authenticated `session` under its client id: "takeover" when an older session with
   * that id was closed for it (§3.1.4), "full" (nothing registered) at maxConnections.
   */
  admit(session: Session): "new" | "takeover" | "full";
  /** Whether a CONNECT with this client id finds no room (maxConnections reached and no session of that id to take over). */
  full(clientId: string): boolean;
  event(event: AuditEvent): void;
  /** An aggregated event (see `tally.ts`): at most two records per `key` and window. */
  tally(key: string, event: AuditEvent): void;
  /** The session reached `closed`. */
  closed(session: Session): void;
}

/** One device connection; it is the {@link SocketHandler} the host calls. */
export class Session implements SocketHandler {
  readonly host: SessionHost;
  readonly socket: DeviceSocket;
  readonly remote: string;
  /** The peer's address without the port: what the per-address limits count. */
  readonly address: string;
  readonly decoder: Decoder;
  readonly inbound: Inbound;
  /** The device's PUBLISH rate (from CONNECT accepted on). */
  bucket: TokenBucket | undefined;
  state: SessionState = "awaiting-connect";
  /** The client id from CONNECT (claimed until accepted). */
  clientId: string | undefined;
  /** CONNECT was accepted: records name `device` only from then on. */
  authenticated = false;
  /** Monotonic ms (Clock.monotonic) when CONNECT was accepted: durations, not a time of day. */
  since = 0;
  will: Will | undefined;
  // The four collections below are created on first use (a device that only publishes at QoS 0/1 and
  // never subscribes needs none of them): each Map/Set/array costs heap slots per session.
  #subscriptions: Map<string, 0 | 1 | 2> | undefined;
  #inflight: Map<number, InflightMessage> | undefined;
  #backlog: OwedMessage[] | undefined;
  #qos2In: Set<number> | undefined;
  /** Clean session 0: state is parked on close and resumed on the next CONNECT (§3.1.2.4). */
  persistent = false;
  /** Backlog messages dropped when it was full. */
  backlogDropped = 0;
  #nextId = 1;
  /** The socket refused a write and has not signalled onWritable since. */
  #blocked = false;
  #sentWhileBlocked = 0;
  /** Bytes handed to a blocked socket: a device that stops reading may not grow the host's buffer without bound. */
  #blockedBytes = 0;
  #lastSeen: number;
  #keepaliveMs = 0;
  #timer: TimerId | undefined;

  /** Filter → granted QoS. Bounded by maxSubscriptionsPerClient. */
  get subscriptions(): Map<string, 0 | 1 | 2> {
    return (this.#subscriptions ??= new Map());
  }

  /**
   * QoS 1/2 messages sent to the device and not yet settled, by packet id: AWAIT_PUBACK, AWAIT_PUBREC
   * or AWAIT_PUBCOMP (§4.3). Bounded by maxInflight.
   */
  get inflight(): Map<number, InflightMessage> {
    return (this.#inflight ??= new Map());
  }

  /** QoS 1/2 messages waiting for in-flight room (persistent sessions only), oldest first; bounded. */
  get backlog(): OwedMessage[] {
    return (this.#backlog ??= []);
  }

  /** QoS 2 packet ids from the device whose PUBREL has not come (§4.3.3 method B). Bounded by maxInflight. */
  get qos2In(): Set<number> {
    return (this.#qos2In ??= new Set());
  }

  constructor(host: SessionHost, socket: DeviceSocket) {
    this.host = host;
    this.socket = socket;
    this.remote = socket.remote;
    this.address = addressOf(socket.remote);
    const { maxPendingAccepts, maxInflight, maxPacketBytes } = host.limits;
    this.inbound = new Inbound(this, maxPendingAccepts, maxInflight * maxPacketBytes);
    this.decoder = new Decoder({ onPacket: (p) => this.#onPacket(p), maxPacketBytes: host.limits.maxPacketBytes });
    this.#lastSeen = host.clock.monotonic();
    this.#timer = host.timers.after(host.limits.connectTimeoutMs, () => {
      this.#timer = undefined;
      this.protocolError(ProtocolReason.ConnectTimeout, "no CONNECT in time");
    });
  }

  onData(data: Uint8Array): void {
    if (this.state === "closed") return;
    try {
      const error = this.decoder.push(data);
      if (error === undefined || (this.state as SessionState) === "closed") return;
      if (error.code === MqttError.UnsupportedProtocolLevel && this.state === "awaiting-connect") {
        this.send({ cmd: "connack", sessionPresent: false, returnCode: ConnackCode.UnacceptableProtocol });
      }
      this.protocolError(error.code, error.message);
    } catch (e) {
      // Nothing may escape into the host's socket loop; an unexpected fault closes this connection only.
      this.close("internal-error", String(e));
    }
  }

  onClose(): void {
    this.close("peer-closed");
  }

  onWritable(): void {
    this.#blocked = false;
    this.#sentWhileBlocked = 0;
    this.#blockedBytes = 0;
  }

  #onPacket(packet: Packet): void {
    if (this.state === "closed") return;
    this.#lastSeen = this.host.clock.monotonic();
    if (!this.inbound.hold(packet)) handlePacket(this, packet);
  }

  /** Handles one packet now (held packets come back through here, in order). */
  dispatch(packet: Packet): void {
    if (this.state !== "closed") handlePacket(this, packet);
  }

  /** Encodes and writes one packet; false when the socket is above its high-water mark. */
  send(packet: Packet): boolean {
    if (this.state === "closed") return false;
    const bytes = encode(packet);
    const ok = this.socket.write(bytes);
    if (!ok || this.#blocked) {
      this.#blocked = true;
      this.#blockedBytes += bytes.length;
      const { maxInflight, maxPacketBytes } = this.host.limits;
      if (this.#blockedBytes > maxInflight * maxPacketBytes) this.close("backpressure");
    }
    return ok;
  }

  /** Writes an audit event about this connection. */
  event(kind: AuditKind, decision: AuditDecision, reason: string | undefined, extra?: Record<string, DetailValue>, topic?: string): void {
    // Until CONNECT is accepted the client id is only a claim: it goes in `detail.claimed`, never `device`.
    const claimed = !this.authenticated && this.clientId !== undefined ? { claimed: clip(this.clientId, this.host.limits.maxClientIdBytes) } : {};
    this.host.event({
      kind,
      decision,
      ...(this.authenticated ? { device: this.clientId! } : {}),
      ...(topic !== undefined ? { topic } : {}),
      ...(reason !== undefined ? { reason } : {}),
      detail: { remote: this.remote, ...claimed, ...extra },
    });
  }

  /** Refuses CONNECT with `code`, records why, and closes. */
  refuse(code: ConnackCode, kind: AuditKind, reason: string): void {
    this.send({ cmd: "connack", sessionPresent: false, returnCode: code });
    this.event(kind, "deny", reason);
    this.close("protocol");
  }

  /** Accepts CONNECT (after authentication and admission). */
  accept(connect: ConnectPacket, takeover: boolean, parked?: ParkedSession): void {
    this.#cancelTimer();
    this.state = "connected";
    this.authenticated = true;
    this.since = this.host.clock.monotonic();
    const l = this.host.limits;
    this.bucket = new TokenBucket(l.publishRatePerSec, l.publishBurst, l.aggregateWindowMs, this.host.clock.monotonic());
    this.will = connect.will;
    this.persistent = !connect.cleanSession;
    this.send({ cmd: "connack", sessionPresent: parked !== undefined, returnCode: ConnackCode.Accepted });
    this.event("connect", "allow", undefined, {
      keepalive: connect.keepalive,
      takeover,
      ...(this.persistent ? { persistent: true, resumed: parked !== undefined } : {}),
      ...(parked !== undefined && parked.dropped > 0 ? { dropped: parked.dropped } : {}),
    });
    if (parked !== undefined) this.#resume(parked);
    if (connect.keepalive > 0) {
      // §3.1.2.10: close when nothing arrives for one and a half times the keepalive.
      this.#keepaliveMs = connect.keepalive * 1500;
      this.#armKeepalive(this.#keepaliveMs);
    }
  }

  /** §4.4: resend unacknowledged PUBLISHes with DUP and the same ids, PUBREL for received ones, then the queue. */
  #resume(p: ParkedSession): void {
    for (const id of p.qos2In) this.qos2In.add(id);
    for (const [id, m] of p.inflight) {
      this.inflight.set(id, m);
      if (m.state === AWAIT_PUBCOMP) this.send({ cmd: "pubrel", packetId: id });
      else this.send({ cmd: "publish", topic: m.topic, payload: m.payload, qos: m.qos, retain: false, dup: true, packetId: id });
    }
    for (const m of p.queue) this.backlog.push(m);
    this.drainBacklog();
  }

  /** Sends backlog messages while there is in-flight room. */
  drainBacklog(): void {
    const backlog = this.#backlog;
    while (backlog !== undefined && backlog.length > 0 && this.state === "connected" && this.inflight.size < this.host.limits.maxInflight && !this.#blocked) {
      const m = backlog.shift()!;
      this.#sendQos(m.topic, m.payload, m.qos, false);
    }
  }

  #sendQos(topic: string, payload: Uint8Array, q: 1 | 2, retain: boolean): void {
    while (this.inflight.has(this.#nextId)) this.#nextId = (this.#nextId % 0xffff) + 1;
    const packetId = this.#nextId;
    this.#nextId = (this.#nextId % 0xffff) + 1;
    this.inflight.set(packetId, { topic, payload, qos: q, state: q === 1 ? AWAIT_PUBACK : AWAIT_PUBREC });
    this.send({ cmd: "publish", topic, payload, qos: q, retain, dup: false, packetId });
  }

  #armKeepalive(ms: number): void {
    this.#timer = this.host.timers.after(ms, () => {
      this.#timer = undefined;
      const idle = this.host.clock.monotonic() - this.#lastSeen;
      if (idle >= this.#keepaliveMs) this.close("keepalive");
      else this.#armKeepalive(this.#keepaliveMs - idle);
    });
  }

  /** Records a protocol violation and closes (publishing the will if connected, §3.1.2.5). */
  protocolError(reason: string, message: string): void {
    if (this.state === "closed") return;
    this.event("protocol", "deny", reason, { message });
    this.close("protocol");
  }

  /**
   * Delivers one gateway message if a subscription matches, at min(qos, granted). Refuses (returns
   * false) at the in-flight limit for QoS 1, and while the socket is blocked beyond the same limit.
   */
  deliver(topic: string, payload: Uint8Array, qos: 0 | 1 | 2, granted: 0 | 1 | 2, retain = false): boolean {
    if (this.state !== "connected") return false;
    const limit = this.host.limits.maxInflight;
    if (this.#blocked && this.#sentWhileBlocked >= limit) return false;
    const q = qos < granted ? qos : granted;
    if (q === 0) {
      this.send({ cmd: "publish", topic, payload, qos: 0, retain, dup: false });
    } else {
      if (this.inflight.size >= limit || (this.#backlog !== undefined && this.#backlog.length > 0)) {
        if (!this.persistent) return false;
        // A persistent session keeps QoS 1/2 messages until there is room (bounded, oldest dropped).
        if (this.backlog.length >= this.host.limits.maxQueuedPerSession) {
          this.backlog.shift();
          this.backlogDropped++;
        }
        if (this.host.limits.maxQueuedPerSession > 0) this.backlog.push({ topic, payload, qos: q });
        else this.backlogDropped++;
        return true;
      }
      this.#sendQos(topic, payload, q, retain);
    }
    if (this.#blocked) this.#sentWhileBlocked++;
    return true;
  }

  /** Ends the session. Harmless twice; publishes the will unless the close was clean or a shutdown. */
  close(reason: DisconnectReason, message?: string): void {
    if (this.state === "closed") return;
    const wasConnected = this.state === "connected";
    this.state = "closed";
    this.#cancelTimer();
    this.decoder.stop();
    this.inbound.clear();
    if (this.persistent && wasConnected && reason !== "shutdown") this.host.park(this);
    else if (this.#subscriptions !== undefined) for (const f of this.#subscriptions.keys()) this.host.unsubscribed(this, f);
    this.#inflight?.clear();
    this.#qos2In?.clear();
    if (this.#backlog !== undefined) this.#backlog.length = 0;
    this.#subscriptions?.clear();
    const will = wasConnected && reason !== "clean" && reason !== "shutdown" ? this.will : undefined;
    this.will = undefined;
    this.socket.close();
    this.host.closed(this);
    if (wasConnected) {
      this.event("disconnect", "info", reason, { will: will !== undefined, ...(message !== undefined ? { message } : {}) });
    }
    if (will !== undefined && this.clientId !== undefined) {
      if (!this.host.authorizePublish(this.clientId, will.topic)) {
        this.host.tally(`acl-publish|${this.clientId}`, { kind: "auth", decision: "deny", device: this.clientId, topic: will.topic, reason: "not-authorized", detail: { op: "will" } });
        return;
      }
      try {
        this.host.route(this.clientId, will.topic, will.payload, will.qos, will.retain);
        const r = this.host.publish(this.clientId, will.topic, will.payload, will.qos === 0 ? 0 : 1);
        if (r !== undefined) r.then(undefined, () => {});
      } catch {
        // The gateway refused the will; the connection is already gone, there is no one to tell.
      }
    }
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.host.timers.cancel(this.#timer);
    this.#timer = undefined;
  }
}

/** "192.0.2.1:50000" → "192.0.2.1"; "[2001:db8::1]:50000" → "2001:db8::1". */
export function addressOf(remote: string): string {
  if (remote.startsWith("[")) {
    const end = remote.indexOf("]");
    return end > 0 ? remote.slice(1, end) : remote;
  }
  const colon = remote.lastIndexOf(":");
  return colon > 0 ? remote.slice(0, colon) : remote;
}

/** At most `max` UTF-16 units of a claimed id, never ending in half a surrogate pair. */
function clip(id: string, max: number): string {
  if (id.length <= max) return id;
  const cut = id.charCodeAt(max - 1) >= 0xd800 && id.charCodeAt(max - 1) <= 0xdbff ? max - 1 : max;
  return id.slice(0, cut);
}
