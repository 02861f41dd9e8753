/** Shared builders for the policy tests: a valid contract, an engine on test ports, payload helpers. */
import { PolicyEngine, type PolicyEngineOptions } from "../../src/policy/engine.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { tryUtf8 as utf8Decode, utf8 as utf8Encode } from "../../src/util/bytes.js";

/** A base64 P-256 point that validates (TEST VECTOR: the private key was discarded). */
export const TEST_PUBLIC_KEY = "BL4t2satWZZs+b4iwoqvTHrU67Thuz/AHsPwcAfz9JgakdvHQIVqfBk8mEHROdSlQPupoPmzlP0cOrTtpaLLl5Q=";

export type Json = any;

/** A valid contract object; `patch` edits a deep copy. */
export function contract(id = "acme", patch?: (c: Json) => void): Json {
  const c: Json = {
    format: 1,
    id,
    version: "1",
    vendor: "Acme",
    contact: "privacy@acme.example",
    purpose: "Energy reports for the household.",
    effective: "2026-01-01",
    destinations: [
      { id: "main", protocol: "mqtts", host: "localhost", port: 18883, topic: "v/{integration}/{device}/{flow}", encryption: "hpke", publicKey: TEST_PUBLIC_KEY, keyId: "k1" },
    ],
    flows: [
      {
        id: "r1",
        destination: "main",
        devices: ["plug-1"],
        topics: ["home/plug-1/telemetry"],
        fields: [
          { path: "/power", class: "energy" },
          { path: "/serial", class: "identifier" },
        ],
        pseudonymize: ["/serial"],
        rate: { perMinute: 6000, minIntervalMs: 0 },
      },
    ],
    terms: {
      retentionDays: 30,
      consent: { energy: false, identifier: false },
      sla: { uptimePercent: 99, maxLatencyMs: 1000 },
      exit: { exportFormat: "json", deletionDays: 30 },
      queue: { maxBytes: 4096, overflow: "drop-oldest", ttlSeconds: 600 },
    },
  };
  patch?.(c);
  return c;
}

export interface Rig {
  engine: PolicyEngine;
  events: AuditEvent[];
  clock: FakeClock;
  keys: MemoryKeys;
}

export function rig(extra: Partial<PolicyEngineOptions> = {}, keys = new MemoryKeys(), seed = "policy"): Rig {
  const events: AuditEvent[] = [];
  const clock = new FakeClock();
  const random = seededRandom(seed);
  const engine = new PolicyEngine({ crypto: nobleCrypto(random), keys, random, clock, onEvent: (e) => events.push(e), ...extra });
  return { engine, events, clock, keys };
}

export const bytes = (v: unknown): Uint8Array => utf8Encode(typeof v === "string" ? v : JSON.stringify(v));
export const parse = (b: Uint8Array | undefined): Json => JSON.parse(utf8Decode(b as Uint8Array) as string);
export const text = (c: Json): string => JSON.stringify(c);
