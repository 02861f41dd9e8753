/**
 * gateway.json `homeBroker`: bridge mode, where the home's own MQTT broker stays and the gateway is a
 * client of it. Validated here with JSON-pointer paths, like the rest of src/config.ts.
 *
 *   "homeBroker": {
 *     "url": "mqtts://192.168.1.5:8883", "username": "portcullis", "passwordFile": "home-broker.pw",
 *     "ca": "home-ca.pem", "subscribe": ["tele/+/SENSOR"],
 *     "devices": [{ "id": "thermostat-hall", "pattern": "tele/thermostat/SENSOR", "topic": "home/thermostat-hall/telemetry" }]
 *   }
 *
 * `pattern` is an MQTT topic filter; a message's device is the first entry whose pattern matches.
 * `topic` (optional) is the local topic the contracts are evaluated against; absent, the home
 * broker's topic is used as is. `password`/`passwordFile` and `ca` are resolved by the host.
 */
import { isValidTopicFilter } from "../mqtt/topic.js";

export interface BridgeDevice {
  readonly id: string;
  readonly pattern: string;
  readonly topic?: string;
}

export interface HomeBrokerConfig {
  readonly url: string;
  readonly clientId: string;
  readonly username?: string;
  /** In clear in gateway.json (discouraged) ... */
  readonly password?: string;
  /** ... or a file next to gateway.json, read by the host. */
  readonly passwordFile?: string;
  /** PEM file (relative to the config folder) for `mqtts`. */
  readonly ca?: string;
  readonly subscribe: readonly string[];
  readonly devices: readonly BridgeDevice[];
  readonly keepalive: number;
  /** Reconnect backoff: first wait, doubled per failure up to the maximum (ms). */
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
}

export const BRIDGE_LIMITS = Object.freeze({ subscribe: 16, devices: 128 });
const URL_RE = /^(mqtts?):\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;
const KEYS = ["url", "clientId", "username", "password", "passwordFile", "ca", "subscribe", "devices", "keepalive", "reconnectMinMs", "reconnectMaxMs"];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Splits a validated url into its parts. */
export function parseBrokerUrl(url: string): { tls: boolean; host: string; port: number } | undefined {
  const m = URL_RE.exec(url);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (!(port > 0 && port < 65536)) return undefined;
  const host = m[2]!.startsWith("[") ? m[2]!.slice(1, -1) : m[2]!;
  return { tls: m[1] === "mqtts", host, port };
}

/**
 * Parses `homeBroker`; `deviceIds` are gateway.json's devices (a bridged device must be one, so its
 * groups and contracts apply). Pushes every problem onto `errors`.
 */
export function parseHomeBroker(raw: unknown, deviceIds: ReadonlySet<string>, errors: { path: string; message: string }[]): HomeBrokerConfig | undefined {
  if (raw === undefined) return undefined;
  const at = "/homeBroker";
  if (!isObject(raw)) {
    errors.push({ path: at, message: "must be an object" });
    return undefined;
  }
  const before = errors.length;
  for (const k of Object.keys(raw)) if (!KEYS.includes(k)) errors.push({ path: `${at}/${k}`, message: `unknown option; one of ${KEYS.join(", ")}` });
  const url = raw.url;
  if (typeof url !== "string" || parseBrokerUrl(url) === undefined) errors.push({ path: `${at}/url`, message: 'must be "mqtt://host:port" or "mqtts://host:port"' });
  const str = (k: string): string | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v.length === 0 || v.length > 256) {
      errors.push({ path: `${at}/${k}`, message: "must be a non-empty string of at most 256 characters" });
      return undefined;
    }
    return v;
  };
  const clientId = str("clientId") ?? "portcullis-bridge";
  const username = str("username");
  const password = str("password");
  const passwordFile = str("passwordFile");
  const ca = str("ca");
  if (password !== undefined && passwordFile !== undefined) errors.push({ path: `${at}/password`, message: "give password or passwordFile, not both" });
  if (ca !== undefined && typeof url === "string" && url.startsWith("mqtt://")) errors.push({ path: `${at}/ca`, message: "only with an mqtts:// url" });
  const int = (k: string, min: number, max: number, dflt: number): number => {
    const v = raw[k];
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      errors.push({ path: `${at}/${k}`, message: `must be an integer from ${min} to ${max}` });
      return dflt;
    }
    return v;
  };
  const keepalive = int("keepalive", 5, 3600, 60);
  const reconnectMinMs = int("reconnectMinMs", 100, 60_000, 1000);
  const reconnectMaxMs = int("reconnectMaxMs", 1000, 3_600_000, 60_000);
  if (reconnectMinMs > reconnectMaxMs) errors.push({ path: `${at}/reconnectMinMs`, message: "must not exceed reconnectMaxMs" });
  const subscribe: string[] = [];
  if (!Array.isArray(raw.subscribe) || raw.subscribe.length === 0) errors.push({ path: `${at}/subscribe`, message: "must be a non-empty array of topic filters" });
  else {
    if (raw.subscribe.length > BRIDGE_LIMITS.subscribe) errors.push({ path: `${at}/subscribe`, message: `at most ${BRIDGE_LIMITS.subscribe} filters` });
    raw.subscribe.forEach((f: unknown, i: number) => {
      if (typeof f !== "string" || !isValidTopicFilter(f)) errors.push({ path: `${at}/subscribe/${i}`, message: "must be a valid MQTT topic filter" });
      else subscribe.push(f);
    });
  }
  const devices: BridgeDevice[] = [];
  if (!Array.isArray(raw.devices) || raw.devices.length === 0) errors.push({ path: `${at}/devices`, message: "must be a non-empty array of {id, pattern[, topic]}" });
  else {
    if (raw.devices.length > BRIDGE_LIMITS.devices) errors.push({ path: `${at}/devices`, message: `at most ${BRIDGE_LIMITS.devices} entries` });
    raw.devices.forEach((d: unknown, i: number) => {
      const p = `${at}/devices/${i}`;
      if (!isObject(d)) return errors.push({ path: p, message: "must be an object" });
      for (const k of Object.keys(d)) if (k !== "id" && k !== "pattern" && k !== "topic") errors.push({ path: `${p}/${k}`, message: "unknown option; one of id, pattern, topic" });
      const ok = errors.length;
      if (typeof d.id !== "string" || !deviceIds.has(d.id)) errors.push({ path: `${p}/id`, message: "must be the id of a device in /devices" });
      if (typeof d.pattern !== "string" || !isValidTopicFilter(d.pattern)) errors.push({ path: `${p}/pattern`, message: "must be a valid MQTT topic filter" });
      if (d.topic !== undefined && (typeof d.topic !== "string" || d.topic.length === 0 || /[+#]/.test(d.topic))) errors.push({ path: `${p}/topic`, message: "must be a topic name (no wildcards)" });
      if (errors.length === ok) devices.push({ id: d.id as string, pattern: d.pattern as string, ...(d.topic === undefined ? {} : { topic: d.topic as string }) });
      return undefined;
    });
  }
  if (errors.length > before) return undefined;
  return {
    url: url as string, clientId, subscribe, devices, keepalive, reconnectMinMs, reconnectMaxMs,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(passwordFile === undefined ? {} : { passwordFile }),
    ...(ca === undefined ? {} : { ca }),
  };
}
