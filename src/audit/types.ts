/** What the audit log records, and the interface the rest of the core appends and queries through. */

/** The kinds of audit record (a closed set; SPEC.md documents each). */
export const AuditKinds = Object.freeze([
  "boot",
  "shutdown",
  "flow",
  "flow-summary",
  "connect",
  "disconnect",
  "auth",
  "protocol",
  "admin",
  "consent",
  "contract",
  "incident",
  "queue",
  "uplink",
  "seal",
  "purge",
  "corruption",
  "alarm",
] as const);
export type AuditKind = (typeof AuditKinds)[number];

/** A decision as written to the log. `info` is for records that are not decisions (boot, seal, ...). */
export type AuditDecision = "allow" | "minimize" | "deny" | "info";

/** Scalar detail values only, so records stay small and canonical. */
export type DetailValue = string | number | boolean | null;

/** What a caller appends. The log assigns `seq` and `time`. */
export interface AuditEvent {
  readonly kind: AuditKind;
  readonly decision: AuditDecision;
  readonly device?: string;
  readonly integration?: string;
  readonly topic?: string;
  /** The id of the contract rule that matched, when one did. */
  readonly rule?: string;
  /** A reason code from the closed set of the subsystem that decided. */
  readonly reason?: string;
  readonly detail?: Readonly<Record<string, DetailValue>>;
  /** Only in `flow-summary` records: the per-minute aggregates of allowed flows. */
  readonly summary?: readonly FlowSummaryRow[];
}

/**
 * One aggregate of allowed (or minimized) flows: one minute × device × integration × decision × rule.
 * See `src/audit/aggregate.ts`.
 */
export interface FlowSummaryRow {
  /** Start of the minute, ms since the epoch (a multiple of 60 000). */
  readonly minute: number;
  readonly device: string;
  readonly integration: string | null;
  readonly decision: "allow" | "minimize";
  readonly rule: string | null;
  readonly count: number;
  readonly bytes: number;
  readonly fieldsDropped: number;
}

/** A stored record. */
export interface AuditRecord extends AuditEvent {
  /** Strictly increasing, never reused, continues across reboots. */
  readonly seq: number;
  /** Wall-clock ms since the epoch when appended. */
  readonly time: number;
  /** False when the board's clock was not yet set: `time` is then not evidence. */
  readonly timeSet: boolean;
}

/** A query over the log; all filters are ANDed. */
export interface AuditQuery {
  /** First sequence number (inclusive). */
  readonly since?: number;
  /** Last sequence number (inclusive). */
  readonly until?: number;
  /** Time range, ms since the epoch, inclusive. */
  readonly fromTime?: number;
  readonly toTime?: number;
  readonly kind?: AuditKind;
  readonly integration?: string;
  readonly device?: string;
  /** At most this many records (the log caps it too). */
  readonly limit?: number;
}

/** The audit log as the rest of the core sees it. */
export interface AuditLog {
  /**
   * Appends one record. The promise resolves with its sequence number once the record is durable on
   * flash (after the group-commit window, if any). Rejects only when the log cannot accept records
   * (full under legal hold, flash failure); the caller then fails closed.
   */
  append(event: AuditEvent): Promise<number>;
  /** Records matching the query, in sequence order. */
  query(q: AuditQuery): AuditRecord[];
  /** The next sequence number to be assigned. */
  readonly nextSeq: number;
  /** Counts for the console's `status`. */
  stats(): { records: number; bytesUsed: number; bytesTotal: number };
}
