/** Contract format v1: the types, the limits, and the entry points of the hand-written validator (runs in XS). */
import { checkContract } from "./contract-rules.js";
import { utf8Length } from "../util/bytes.js";

/** The closed set of data classes (SPEC.md "Contracts" defines each). */
export const DataClasses = Object.freeze([
  "energy",
  "presence",
  "location",
  "health",
  "audio",
  "video",
  "identifier",
  "diagnostic",
  "environment",
  "usage",
] as const);
export type DataClass = (typeof DataClasses)[number];

/** Variables a destination topic template may use (SPEC.md "Contracts", "Topic templates"). */
export const TopicVariables = Object.freeze(["integration", "flow", "device", "device-pseudonym", "topic"] as const);

/** Limits a contract is checked against; the engine's options may override each. */
export interface ContractLimits {
  /** Bytes of contract JSON text. */
  readonly contractBytes: number;
  readonly destinations: number;
  /** Flows (rules) per contract. */
  readonly rulesPerContract: number;
  readonly fieldsPerRule: number;
  readonly devicesPerRule: number;
  readonly topicsPerRule: number;
}

export const DEFAULT_CONTRACT_LIMITS: ContractLimits = Object.freeze({
  contractBytes: 32768,
  destinations: 4,
  rulesPerContract: 32,
  fieldsPerRule: 32,
  devicesPerRule: 64,
  topicsPerRule: 8,
});

export interface Destination {
  readonly id: string;
  readonly protocol: "mqtts";
  readonly host: string;
  readonly port: number;
  readonly topic: string;
  readonly pins?: readonly string[];
  readonly encryption: "hpke" | "none";
  /** Base64 of the 65-byte uncompressed P-256 point; required for hpke. */
  readonly publicKey?: string;
  readonly keyId?: string;
}

export interface Field {
  /** RFC 6901 JSON Pointer over object members ("" = the whole payload, raw flows only). */
  readonly path: string;
  readonly class: DataClass;
}

export interface Flow {
  readonly id: string;
  readonly destination: string;
  readonly devices?: readonly string[];
  readonly groups?: readonly string[];
  readonly topics: readonly string[];
  readonly fields: readonly Field[];
  readonly pseudonymize?: readonly string[];
  readonly rate: { readonly perMinute: number; readonly minIntervalMs: number };
  readonly raw?: boolean;
}

export interface Terms {
  readonly retentionDays: number;
  /** For every class the flows use: true when the household must opt in first. */
  readonly consent: Readonly<Partial<Record<DataClass, boolean>>>;
  readonly sla: { readonly uptimePercent: number; readonly maxLatencyMs: number };
  /** Default 72 (GDPR Art. 33). */
  readonly breachNotificationHours?: number;
  readonly exit: { readonly exportFormat: string; readonly deletionDays: number };
  readonly queue: { readonly maxBytes: number; readonly overflow: "drop-oldest" | "reject-new"; readonly ttlSeconds: number };
}

/** A valid contract v1. */
export interface Contract {
  readonly $schema?: string;
  readonly format: 1;
  readonly id: string;
  readonly version: string;
  readonly vendor: string;
  readonly contact: string;
  readonly purpose: string;
  /** ISO 8601 calendar date, YYYY-MM-DD. */
  readonly effective: string;
  readonly destinations: readonly Destination[];
  readonly flows: readonly Flow[];
  readonly terms: Terms;
}

/** One validation error: an RFC 6901 pointer into the contract document and what is wrong there. */
export interface ContractError {
  readonly path: string;
  readonly message: string;
  /** 1-based line of the text, for JSON syntax errors whose position the parser reports. */
  readonly line?: number;
}

export type ContractResult =
  | { readonly ok: true; readonly contract: Contract }
  | { readonly ok: false; readonly errors: readonly ContractError[] };

/**
 * Validates a parsed JSON value as contract v1, reporting every error (not just the first).
 * Never throws.
 */
export function validateContract(value: unknown, limits: ContractLimits = DEFAULT_CONTRACT_LIMITS): ContractResult {
  const errors: ContractError[] = [];
  checkContract(value, limits, errors);
  return errors.length === 0 ? { ok: true, contract: value as Contract } : { ok: false, errors };
}

/** Parses contract JSON text and validates it. Never throws. */
export function parseContract(text: string, limits: ContractLimits = DEFAULT_CONTRACT_LIMITS): ContractResult {
  if (text.length > limits.contractBytes || utf8Length(text) > limits.contractBytes) {
    return { ok: false, errors: [{ path: "", message: `contract longer than the limit of ${limits.contractBytes} bytes` }] };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    const line = jsonErrorLine(text, why);
    return { ok: false, errors: [{ path: "", message: `not valid JSON (${why})`, ...(line === undefined ? {} : { line }) }] };
  }
  return validateContract(value, limits);
}

/**
 * The line of a JSON syntax error, from the parser's message: V8 says "at position N" (and, since
 * Node 22, "line N column M"); XS says "JSON.parse: N: …" with the line. Undefined for anything else.
 */
export function jsonErrorLine(text: string, message: string): number | undefined {
  const line = /\bline (\d+)/.exec(message) ?? /^JSON\.parse: (\d+):/.exec(message);
  if (line) return Number(line[1]);
  const pos = /\bposition (\d+)/.exec(message);
  if (!pos) return undefined;
  const end = Math.min(Number(pos[1]), text.length);
  let n = 1;
  for (let i = 0; i < end; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

/** The data classes a contract's flows use, in the order of {@link DataClasses}. */
export function contractClasses(c: Contract): DataClass[] {
  const used = new Set<string>();
  for (const f of c.flows) for (const fd of f.fields) used.add(fd.class);
  return DataClasses.filter((k) => used.has(k));
}

/** The breach-notification hours in force (the declared value or the default of 72). */
export function breachHours(t: Terms): number {
  return t.breachNotificationHours ?? 72;
}
