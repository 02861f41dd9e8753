/**
 * The HomeBroker port (bridge mode) on mqtt.js: plain TCP (`mqtt://`) or verified TLS (`mqtts://`,
 * no option to turn verification off). mqtt.js never reconnects by itself (`reconnectPeriod: 0`): the
 * core's HomeBridge owns backoff. The session is persistent (`clean: false`), so QoS 1 messages the
 * home broker holds while the link is down arrive after it; a QoS 1 message is acknowledged only
 * once the core's pipeline has durably recorded it (mqtt.js's `handleMessage` hook).
 */
import type { ConnectionOptions } from "node:tls";
import mqtt, { type IClientOptions, type IPublishPacket } from "mqtt";
import type { HomeBroker, HomeBrokerOptions, HomeBrokerSession, UplinkFailure } from "../../src/ports.js";
import { parseBrokerUrl } from "../../src/bridge/config.js";
import { classify } from "./uplink.js";

export interface NodeHomeBrokerOptions {
  /** Connect (+ TLS) + CONNACK must finish within this many ms. Default 10000. */
  readonly connectTimeoutMs?: number;
}

export function nodeHomeBroker(options: NodeHomeBrokerOptions = {}): HomeBroker {
  return {
    connect(o: HomeBrokerOptions): HomeBrokerSession {
      const u = parseBrokerUrl(o.url);
      if (!u) throw new Error(`bad home broker url ${o.url}`);
      let tlsDone = !u.tls;
      let connected = false;
      let finished = false;
      let firstError: (Error & { code?: unknown }) | undefined;
      const opts: IClientOptions & ConnectionOptions = {
        protocol: u.tls ? "mqtts" : "mqtt",
        host: u.host,
        port: u.port,
        clientId: o.clientId,
        ...(o.username !== undefined ? { username: o.username } : {}),
        ...(o.password !== undefined ? { password: o.password } : {}),
        keepalive: o.keepalive,
        clean: false,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: options.connectTimeoutMs ?? 10_000,
        resubscribe: false,
        ...(u.tls ? { rejectUnauthorized: true, ...(o.ca !== undefined ? { ca: o.ca } : {}) } : {}),
      };
      const client = mqtt.connect(opts);
      client.handleMessage = (packet: IPublishPacket, done: (err?: Error) => void): void => {
        const p = packet.payload;
        const bytes = typeof p === "string" ? new TextEncoder().encode(p) : new Uint8Array(p.buffer, p.byteOffset, p.byteLength).slice();
        o.onMessage(packet.topic, bytes).then(
          () => done(),
          (e: unknown) => done(e instanceof Error ? e : new Error(String(e))),
        );
      };
      const finish = (reason: UplinkFailure, detail: string): void => {
        if (finished) return;
        finished = true;
        client.end(true);
        o.onClose(reason, detail);
      };
      client.stream?.on?.("secureConnect", () => {
        tlsDone = true;
      });
      client.on("connect", () => {
        tlsDone = true;
        const filters: Record<string, { qos: 1 }> = {};
        for (const f of o.subscribe) filters[f] = { qos: 1 };
        client.subscribe(filters, (err, granted) => {
          if (finished) return;
          if (err) return finish("protocol", `subscribe failed: ${err.message}`);
          const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
          if (refused.length) return finish("refused", `home broker refused subscriptions: ${refused.join(", ")}`);
          connected = true;
          o.onConnect();
        });
      });
      client.on("error", (err: Error & { code?: unknown }) => {
        firstError ??= err;
        finish(classify(err, tlsDone), err.message);
      });
      client.on("close", () => {
        if (firstError) finish(classify(firstError, tlsDone), firstError.message);
        else finish(connected ? "closed" : "network", connected ? "connection closed" : "connection closed before CONNACK");
      });
      return {
        close(): void {
          if (finished) return;
          finished = true;
          client.end(true);
        },
      };
    },
  };
}
