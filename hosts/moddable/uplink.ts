/**
 * The Uplink port on the SDK's ECMA-419 MQTT client (`embedded:network/mqtt/client`) over TLS.
 * TLS is the native byte pump in client mode (tls-socket.ts): mbedTLS always verifies the chain, validity
 * and server name, and the socket checks pins before MQTT CONNECT is sent.
 * Publishes that do not fit the socket's writable window wait in a bounded queue; QoS 1 resolves on PUBACK.
 */
import { MQTTClient, Resolver, TCP, UDP, type ControlMessage } from "portcullis/sdk/mqtt";
import { TLSClientSocket, clientTrust, type TLSClientSecure } from "portcullis/moddable/tls-socket";
import type { Uplink, UplinkFailure, UplinkOptions, UplinkSession } from "../../src/ports.js";

export interface ModdableUplinkOptions {
  /** DNS servers for the SDK's UDP resolver (it does not read the DHCP-provided ones). */
  readonly dnsServers: readonly string[];
  /** SHA-256 for certificate pins (the Crypto port's). */
  readonly sha256: (data: Uint8Array) => Uint8Array;
  /** Extra trust anchor (DER), e.g. a vendor's private CA from provisioning; the SDK bundle still applies. */
  readonly trustAnchor?: ArrayBuffer;
  /** Publishes waiting for the socket at most; more are rejected (the core keeps the message). */
  readonly maxQueued?: number;
}

export const DEFAULT_MAX_QUEUED = 16;

interface Waiting {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: 0 | 1;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

class MqttSession implements UplinkSession {
  readonly #options: UplinkOptions;
  readonly #maxQueued: number;
  #client: MQTTClient | undefined;
  #connected = false;
  #finished = false;
  #nextId = 0;
  #queue: Waiting[] = [];
  #inFlight = new Map<number, Waiting>();

  constructor(options: UplinkOptions, host: ModdableUplinkOptions) {
    this.#options = options;
    this.#maxQueued = host.maxQueued ?? DEFAULT_MAX_QUEUED;
    // serverName: the name as configured. The SDK resolver hands the socket "127.0.0.1" for "localhost",
    // and the certificate must be checked against the name the contract gave, not the address.
    try {
      const secure: TLSClientSecure = { trust: clientTrust(host.trustAnchor), pins: options.pins ?? [], sha256: host.sha256, serverName: options.host };
      this.#client = new MQTTClient({
        host: options.host,
        port: options.port,
        id: options.clientId,
        ...(options.username !== undefined ? { user: options.username } : {}),
        ...(options.password !== undefined ? { password: ArrayBuffer.fromString(options.password) } : {}),
        keepalive: options.keepalive * 1000,
        clean: true,
        dns: { io: Resolver, servers: [...host.dnsServers], socket: { io: UDP } },
        socket: { io: TLSClientSocket, TCP: { io: TCP }, secure },
        // `target` puts this session on the client, so the four callbacks are shared functions (the client
        // calls them with `this` = itself), not four closures per uplink connection.
        target: this,
        onControl: MqttSession.#controlCallback,
        onWritable: MqttSession.#writableCallback,
        onReadable: MqttSession.#readableCallback,
        onError: MqttSession.#errorCallback,
      });
    } catch (e) {
      // A synchronous failure (bad host string, no memory) still arrives as onClose, never as a throw.
      this.#client = undefined;
      queueFail(() => this._finish("network", String(e)));
    }
  }

  static #controlCallback(this: MQTTClient, message: ControlMessage): void {
    (this.target as MqttSession)._onControl(message.operation, message.id ?? 0);
  }

  static #writableCallback(this: MQTTClient): void {
    (this.target as MqttSession)._flush();
  }

  /** We subscribe to nothing: whatever arrives is read and discarded. */
  static #readableCallback(this: MQTTClient, count: number): void {
    this.read(count);
  }

  static #errorCallback(this: MQTTClient): void {
    const session = this.target as MqttSession;
    const connected = session.#connected;
    session._finish(connected ? "closed" : "network", connected ? "session dropped" : "connect failed (DNS, TCP, TLS or CONNACK)");
  }

  publish(topic: string, payload: Uint8Array, qos: 0 | 1): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#finished || !this.#connected) return reject(new Error("uplink not connected"));
      if (this.#queue.length >= this.#maxQueued) return reject(new Error("uplink queue full"));
      this.#queue.push({ topic, payload: payload.slice(), qos, resolve, reject });
      this._flush();
    });
  }

  close(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#client?.close();
    this.#client = undefined;
    this._rejectAll("uplink closed");
  }

  private _onControl(operation: number, id: number): void {
    if (operation === MQTTClient.CONNACK) {
      this.#connected = true;
      this.#options.onConnect();
      this._flush();
    } else if (operation === MQTTClient.PUBACK) {
      const waiting = this.#inFlight.get(id);
      this.#inFlight.delete(id);
      waiting?.resolve();
    }
  }

  private _flush(): void {
    const client = this.#client;
    while (client !== undefined && this.#connected && this.#queue.length > 0) {
      const next = this.#queue[0]!;
      const id = next.qos === 1 ? this._allocateId() : 0;
      try {
        client.write(next.payload, { topic: next.topic, QoS: next.qos, ...(id ? { id } : {}) });
      } catch {
        return; // not enough writable space ("overflow"): onWritable calls again
      }
      this.#queue.shift();
      if (id) this.#inFlight.set(id, next);
      else next.resolve();
    }
  }

  /** MQTT 3.1.1 §2.3.1: non-zero 16-bit packet identifiers, unique among those in flight. */
  private _allocateId(): number {
    do this.#nextId = (this.#nextId % 65535) + 1;
    while (this.#inFlight.has(this.#nextId));
    return this.#nextId;
  }

  private _finish(reason: UplinkFailure, detail: string): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#client = undefined; // the SDK client closes itself after onError
    this._rejectAll(`uplink ${reason}: ${detail}`);
    this.#options.onClose(reason, detail);
  }

  private _rejectAll(message: string): void {
    const waiting = [...this.#queue, ...this.#inFlight.values()];
    this.#queue = [];
    this.#inFlight.clear();
    for (const w of waiting) w.reject(new Error(message));
  }
}

/** Defers a callback out of the current call (ports.ts: never call back re-entrantly). */
function queueFail(callback: () => void): void {
  Promise.resolve().then(callback, () => {});
}

export class ModdableUplink implements Uplink {
  readonly #host: ModdableUplinkOptions;

  constructor(host: ModdableUplinkOptions) {
    this.#host = host;
  }

  connect(options: UplinkOptions): UplinkSession {
    return new MqttSession(options, this.#host);
  }
}
