/**
 * The HomeBroker port (bridge mode) on the SDK's ECMA-419 MQTT client: plain TCP for `mqtt://`, the
 * native TLS client socket (the platform's roots plus the provisioned trust anchor) for `mqtts://`. Subscribes once
 * CONNACK arrives, reports the session up on SUBACK, and hands each whole message to the core.
 *
 * Limits of the SDK client, stated here so nobody relies on more: it sends PUBACK itself when a QoS 1
 * message has been read, before the core has recorded it (the Node board waits for the record), and
 * it does not expose SUBACK's return codes; `ca` (a PEM file) does not apply: `mqtts` trusts the
 * platform's roots and the provisioned trust anchor. Type-checked; not yet run on a device or the lin build.
 */
import { MQTTClient, Resolver, TCP, UDP } from "portcullis/sdk/mqtt";
import { TLSClientSocket, clientTrust, type TLSClientSecure } from "portcullis/moddable/tls-socket";
import type { HomeBroker, HomeBrokerOptions, HomeBrokerSession, UplinkFailure } from "../../src/ports.js";
import { parseBrokerUrl } from "portcullis/bridge/config";

export interface ModdableHomeBrokerOptions {
  readonly dnsServers: readonly string[];
  readonly sha256: (data: Uint8Array) => Uint8Array;
  readonly trustAnchor?: ArrayBuffer;
  /** Largest message accepted from the home broker; a larger one is dropped whole (default 4096). */
  readonly maxMessageBytes?: number;
}

class Session implements HomeBrokerSession {
  readonly #o: HomeBrokerOptions;
  readonly #max: number;
  #client: MQTTClient | undefined;
  #connected = false;
  #finished = false;
  /** The message being read (the SDK hands payloads over in fragments). */
  #topic: string | undefined;
  #parts: Uint8Array[] = [];
  #size = 0;
  #tooBig = false;

  constructor(o: HomeBrokerOptions, host: ModdableHomeBrokerOptions) {
    this.#o = o;
    this.#max = host.maxMessageBytes ?? 4096;
    const u = parseBrokerUrl(o.url);
    try {
      if (!u) throw new Error(`bad url ${o.url}`);
      const secure: TLSClientSecure | undefined = u.tls ? { trust: clientTrust(host.trustAnchor), pins: [], sha256: host.sha256, serverName: u.host } : undefined;
      this.#client = new MQTTClient({
        host: u.host,
        port: u.port,
        id: o.clientId,
        ...(o.username !== undefined ? { user: o.username } : {}),
        ...(o.password !== undefined ? { password: ArrayBuffer.fromString(o.password) } : {}),
        keepalive: o.keepalive * 1000,
        clean: false,
        dns: { io: Resolver, servers: [...host.dnsServers], socket: { io: UDP } },
        socket: u.tls ? { io: TLSClientSocket, TCP: { io: TCP }, secure } : { io: TCP },
        onControl: (message) => this._onControl(message.operation),
        onReadable: (count, options) => this._onReadable(count, options),
        onError: () => this._finish(this.#connected ? "closed" : "network", this.#connected ? "session dropped" : "connect failed (DNS, TCP, TLS or CONNACK)"),
      });
    } catch (e) {
      this.#client = undefined;
      Promise.resolve().then(() => this._finish("network", String(e)), () => {});
    }
  }

  private _onControl(operation: number): void {
    const client = this.#client;
    if (!client || this.#finished) return;
    if (operation === MQTTClient.CONNACK) {
      try {
        client.write(null, { operation: MQTTClient.SUBSCRIBE, id: 1, items: this.#o.subscribe.map((topic) => ({ topic, QoS: 1 as const })) });
      } catch (e) {
        this._finish("protocol", `subscribe failed: ${String(e)}`);
      }
    } else if (operation === MQTTClient.SUBACK && !this.#connected) {
      this.#connected = true;
      this.#o.onConnect();
    }
  }

  private _onReadable(count: number, options: { more: boolean; topic?: string }): void {
    const client = this.#client;
    if (!client) return;
    if (options.topic !== undefined) {
      this.#topic = options.topic;
      this.#parts = [];
      this.#size = 0;
      this.#tooBig = false;
    }
    const chunk = new Uint8Array(client.read(count));
    this.#size += chunk.length;
    if (this.#size > this.#max) this.#tooBig = true;
    else this.#parts.push(chunk);
    if (options.more || this.#topic === undefined) return;
    const topic = this.#topic;
    this.#topic = undefined;
    if (this.#tooBig) return; // dropped whole: the core never sees a truncated message
    const payload = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      payload.set(p, at);
      at += p.length;
    }
    this.#parts = [];
    // A message the core could not record: drop the session (the core reconnects with backoff).
    this.#o.onMessage(topic, payload).catch(() => {
      this.#client?.close();
      this._finish("closed", "the gateway could not record a message");
    });
  }

  private _finish(reason: UplinkFailure, detail: string): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#client = undefined;
    this.#o.onClose(reason, detail);
  }

  close(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#client?.close();
    this.#client = undefined;
  }
}

export class ModdableHomeBroker implements HomeBroker {
  readonly #host: ModdableHomeBrokerOptions;
  constructor(host: ModdableHomeBrokerOptions) {
    this.#host = host;
  }
  connect(options: HomeBrokerOptions): HomeBrokerSession {
    return new Session(options, this.#host);
  }
}
