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
}

/** What a session needs from its broker. Every callback into the gateway is guarded there. */
export interface SessionHost {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly limits: SessionLimits;
  authenticate(clientId: string, username: string | undefined, password: Uint8Array | undefined): boolean;
  authorizeSubscribe(clientId: string, filter: string): boolean;
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
  /** Filter → granted QoS (at most 1). Bounded by maxSubscriptionsPerClient. */
  readonly subscriptions = new Map<string, 0 | 1>();
  /** Packet ids of QoS 1 messages sent to the device and not yet acknowledged. Bounded by maxInflight. */
  readonly inflight = new Set<number>();
  #nextId = 1;
  /** The socket refused a write and has not signalled onWritable since. */
  #blocked = false;
  #sentWhileBlocked = 0;
  /** Bytes handed to a blocked socket: a device that stops reading may not grow the host's buffer without bound. */
  #blockedBytes = 0;
  #lastSeen: number;
  #keepaliveMs = 0;
  #timer: TimerId | undefined;

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
  accept(connect: ConnectPacket, takeover: boolean): void {
    this.#cancelTimer();
    this.state = "connected";
    this.authenticated = true;
    this.since = this.host.clock.monotonic();
    const l = this.host.limits;
    this.bucket = new TokenBucket(l.publishRatePerSec, l.publishBurst, l.aggregateWindowMs, this.host.clock.monotonic());
    this.will = connect.will;
    this.send({ cmd: "connack", sessionPresent: false, returnCode: ConnackCode.Accepted });
    this.event("connect", "allow", undefined, { keepalive: connect.keepalive, takeover });
    if (connect.keepalive > 0) {
      // §3.1.2.10: close when nothing arrives for one and a half times the keepalive.
      this.#keepaliveMs = connect.keepalive * 1500;
      this.#armKeepalive(this.#keepaliveMs);
    }
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
  deliver(topic: string, payload: Uint8Array, qos: 0 | 1, granted: 0 | 1): boolean {
    if (this.state !== "connected") return false;
    const limit = this.host.limits.maxInflight;
    if (this.#blocked && this.#sentWhileBlocked >= limit) return false;
    const q = qos < granted ? qos : granted;
    if (q === 0) {
      this.send({ cmd: "publish", topic, payload, qos: 0, retain: false, dup: false });
    } else {
      if (this.inflight.size >= limit) return false;
      while (this.inflight.has(this.#nextId)) this.#nextId = (this.#nextId % 0xffff) + 1;
      const packetId = this.#nextId;
      this.#nextId = (this.#nextId % 0xffff) + 1;
      this.inflight.add(packetId);
      this.send({ cmd: "publish", topic, payload, qos: 1, retain: false, dup: false, packetId });
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
    this.inflight.clear();
    this.subscriptions.clear();
    const will = wasConnected && reason !== "clean" && reason !== "shutdown" ? this.will : undefined;
    this.will = undefined;
    this.socket.close();
    this.host.closed(this);
    if (wasConnected) {
      this.event("disconnect", "info", reason, { will: will !== undefined, ...(message !== undefined ? { message } : {}) });
    }
    if (will !== undefined && this.clientId !== undefined) {
      try {
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
