/**
 * The gateway's side of the audit log: opens it with the config's options, records events, feeds flow
 * decisions through the aggregator, and turns any refusal into fail-closed (outbound flows stop, and
 * an alarm is raised) — nothing may leave the home that the log could not record.
 */
import type { Board } from "../ports.js";
import type { AuditEvent, AuditKind } from "../audit/types.js";
import type { FlowDecision } from "../policy/types.js";
import type { GatewayConfig } from "../config.js";
import { FlashAuditLog } from "../audit/log.js";
import { isNoise } from "../audit/noise.js";
import { projectedHistoryMs } from "../audit/purge.js";
import { auditPartitionBytes } from "./outbound.js";

const DAY_MS = 24 * 3600_000;
// Noise (refused connections, bad tokens) is routed to the log's noise aggregator by `isNoise`; flow
// decisions resolve only once durable, so `src/gateway.ts` forwards after them (issue 13).
/**
 * How often allowed-flow summaries (the per-device rows, per minute) are written. What makes each
 * message durable before it leaves is the flow commit (`audit.flowCommitMs`, default 2 s; on a board
 * whose flash has `durable()`, each flush instead: see `aggregate.ts` `commitPerFlush`); the rows
 * add little on top: with both, the typical home keeps about 4.5 h in 1 MiB (bench/audit.bench.ts).
 */
export const DEFAULT_SUMMARY_EVERY_MS = 5 * 60_000;

export interface AuditHandle {
  readonly log: FlashAuditLog;
  /** True while the log refuses records: outbound flows stop until it accepts one again. */
  readonly failClosed: boolean;
  /** The legal-hold reason, when held. */
  readonly held: string | undefined;
  /**
   * Records an event: noise from unauthenticated sources is aggregated (`audit/noise.ts`), anything
   * else appended. A refusal makes the gateway fail closed.
   */
  record(event: AuditEvent): void;
  /**
   * One flow decision (allowed ones are aggregated per minute and covered by a flow commit; denials
   * kept individually). Resolves once a durable record covers it; rejects (and fails closed) when the
   * log refuses it, so nothing is forwarded or acknowledged without its record.
   */
  flow(device: string, topic: string, d: FlowDecision, bytesIn: number): Promise<void>;
  exportJsonl(from: number | undefined, to: number | undefined): Promise<string[]>;
  /** {@link exportJsonl} made as it is pulled (for streaming over HTTPS); the first `next()` seals and may throw. */
  exportLines(from: number | undefined, to: number | undefined): Promise<Iterator<string>>;
  onAlarm(listener: (text: string) => void): void;
  close(): Promise<void>;
}

export async function openAudit(
  board: Board,
  config: GatewayConfig,
  hooks: { onVerificationKey(key: Uint8Array): void },
): Promise<AuditHandle> {
  const listeners: ((text: string) => void)[] = [];
  const pendingAlarms: string[] = [];
  const alarm = (text: string): void => {
    if (listeners.length === 0) pendingAlarms.push(text);
    for (const l of listeners) l(text);
  };
  const partition = auditPartitionBytes(config);
  if (partition > board.flash.size) {
    throw new Error(`the audit partition of ${partition} bytes (gateway.json audit.partitionBytes) does not fit the board's ${board.flash.size}-byte flash region`);
  }
  const retention: Partial<Record<AuditKind, number>> = {};
  for (const [kind, days] of Object.entries(config.audit.retentionDays)) retention[kind as AuditKind] = days * DAY_MS;
  const log = await FlashAuditLog.open({
    flash: board.flash,
    crypto: board.crypto,
    random: board.random,
    keys: board.keys,
    clock: board.clock,
    timers: board.timers,
    options: {
      // The audit partition only: the outbound queue slots follow it on the same flash.
      size: partition,
      groupCommitMs: config.audit.groupCommitMs,
      ...(config.audit.flowCommitMs === undefined ? {} : { flowCommitMs: config.audit.flowCommitMs }),
      summaryEveryMs: config.audit.summaryEveryMs ?? DEFAULT_SUMMARY_EVERY_MS,
      retention,
      onVerificationKey: (key) => hooks.onVerificationKey(key),
      onAlarm: alarm,
    },
  });
  warnIfRetentionCannotFit(log, retention, board.clock.now(), alarm);
  let failClosed = false;
  const refuse = (e: unknown): void => {
    if (failClosed) return;
    failClosed = true;
    alarm(`audit log refused a record (${e instanceof Error ? e.message : String(e)}): outbound flows stopped; publishes that cannot be recorded are not acknowledged`);
  };
  /** A refused record: fail closed, and the message stays unacknowledged (one function, not a closure per message). */
  const refusedThrow = (e: unknown): never => {
    refuse(e);
    throw e;
  };
  // Flows resume only once the log takes records again (a legal hold released, space freed).
  const accepted = (): void => {
    if (!failClosed) return;
    failClosed = false;
    alarm("audit log accepts records again: outbound flows resume");
  };
  let lastRaw: Promise<unknown> | undefined;
  let lastHandled: Promise<void> | undefined;
  return {
    log,
    get failClosed() {
      return failClosed;
    },
    get held() {
      return log.held;
    },
    record(event) {
      if (isNoise(event)) log.noise(event);
      else log.append(event).then(accepted, refuse);
    },
    flow(device, topic, d, bytesIn) {
      const raw = log.aggregate({
          device,
          integration: d.integration,
          decision: d.verdict,
          rule: d.rule,
          reason: d.reason,
          topic,
          bytes: d.payload ? d.payload.length : bytesIn,
          fieldsDropped: d.fieldsDropped,
        });
      // Allowed flows of one commit window share one promise (aggregate.ts): they share its handler too.
      if (raw !== lastRaw) {
        lastRaw = raw;
        lastHandled = raw.then(accepted, refusedThrow);
      }
      return lastHandled!;
    },
    async exportJsonl(from, to) {
      await log.flushSummaries();
      return log.exportJsonl(from, to);
    },
    async exportLines(from, to) {
      await log.flushSummaries();
      return log.exportLines(from, to);
    },
    onAlarm(listener) {
      listeners.push(listener);
      for (const t of pendingAlarms.splice(0)) listener(t);
    },
    close: () => log.close(),
  };
}

/** Boot-time check: a retention longer than the history the partition holds means a fail-closed log later. */
function warnIfRetentionCannotFit(log: FlashAuditLog, retention: Partial<Record<AuditKind, number>>, now: number, alarm: (text: string) => void): void {
  const longest = Math.max(0, ...Object.values(retention).map((v) => v ?? 0));
  if (longest === 0) return;
  const s = log.stats();
  const oldest = log.query({ since: s.firstSeq, limit: 1 })[0];
  if (!oldest || !oldest.timeSet) return;
  const history = projectedHistoryMs(oldest.time, now, s.bytesUsed, s.bytesTotal);
  if (history !== undefined && history < longest) {
    alarm(`audit: retention of ${(longest / DAY_MS).toFixed(2)} days cannot fit: at the rate so far the partition holds about ${(history / 3600_000).toFixed(1)} h; the log will fail closed when full (raise audit.partitionBytes or audit.flowCommitMs, or lower audit.retentionDays)`);
  }
}
