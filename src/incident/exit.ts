/**
 * Exit for an integration (the integration-governance article's exit provisions): first an export
 * for the owner (the audit export of everything retained — the contract records with their review
 * decisions, the consent records, every record of the integration — verifiable with
 * `npm run audit:verify`), then, in order and each recorded: quarantine, purge its queue, destroy its
 * pseudonym key (crypto-shredding), remove the contract, and a deletion record listing what was
 * destroyed. The certificate cites the deletion record's seq and chain value and the seal over it.
 */
import type { Board } from "../ports.js";
import type { AuditHandle } from "../gateway/audit.js";
import type { PolicyHandle } from "../gateway/policy.js";
import type { OutboundHandle } from "../gateway/outbound.js";
import { KeyPrefix } from "../policy/ledger.js";
import { toHex, utf8 } from "../util/bytes.js";
import { IncidentError, actorDetail, type Actor } from "./manager.js";

export interface ExitParts {
  readonly audit: AuditHandle;
  readonly policy: PolicyHandle;
  readonly outbound: OutboundHandle;
}

export interface DeletionCertificate {
  readonly format: "portcullis-deletion-certificate-1";
  readonly integration: string;
  readonly vendor: string | null;
  readonly contractVersion: string | null;
  readonly deletion: { readonly seq: number; readonly chain: string; readonly time: string };
  readonly seal: { readonly seq: number; readonly chain: string };
  readonly destroyed: { readonly pseudonymKey: string | null; readonly queueItems: number; readonly queueBytes: number; readonly contract: boolean };
  readonly export: { readonly from: number; readonly to: number; readonly lines: number; readonly sha256: string };
}

export interface ExitResult {
  readonly certificate: DeletionCertificate;
  readonly markdown: string;
  /** The owner's export (JSON Lines), made before anything was destroyed. */
  readonly exportLines: readonly string[];
}

export async function exitIntegration(board: Board, p: ExitParts, id: string, actor: Actor): Promise<ExitResult> {
  const engine = p.policy.engine;
  const status = engine.integrations().find((i) => i.id === id);
  if (!status) throw new IncidentError("integration", `unknown integration "${id}" (see \`integrations\`)`, 404);
  const contract = engine.contract(id);
  const who = actorDetail(actor);
  const log = p.audit.log;
  // 1. The export, before anything is destroyed.
  await log.flushSummaries();
  const exportLines = await p.audit.exportJsonl(undefined, undefined);
  const header = JSON.parse(exportLines[0]!) as { from: number; to: number };
  const exportSha = toHex(board.crypto.sha256(utf8(exportLines.join("\n"))));
  // 2. Quarantine (deny every flow, freeze the queue).
  engine.quarantine(id, "exit", actor.who);
  p.outbound.freeze(id, "quarantine");
  // 3. Purge the queue.
  let items = 0;
  let bytes = 0;
  for (const [k, v] of Object.entries(p.outbound.summary())) if (k.startsWith(id + "/")) { items += v.queued; bytes += v.queuedBytes; }
  await p.outbound.purge(id, "exit");
  // 4. Crypto-shredding: the pseudonym key (its fingerprint first, for the record).
  const keyName = KeyPrefix.pseudonym + toHex(board.crypto.sha256(utf8(id))).slice(0, 12);
  const key = board.keys.get(keyName);
  const fingerprint = key ? toHex(board.crypto.sha256(key)).slice(0, 8) : null;
  engine.destroyKey(id, actor.who);
  // 5. The contract.
  const removed = p.policy.remove(id, actor.who);
  // 6. The deletion record, then a seal over it.
  const seq = await log.append({
    kind: "admin", decision: "info", integration: id, reason: "integration-deleted",
    detail: { ...who, keyFingerprint: fingerprint, queueItems: items, queueBytes: bytes, contractRemoved: removed, contractVersion: contract?.version ?? null, exportFrom: header.from, exportTo: header.to, exportSha256: exportSha },
  });
  const proof = await p.audit.exportJsonl(seq, undefined);
  const line = proof.map((l) => JSON.parse(l) as { seq?: number; chain?: string; kind?: string; time?: number }).filter((o) => o.seq !== undefined);
  const del = line.find((o) => o.seq === seq);
  const seal = line.filter((o) => o.kind === "seal").pop();
  if (!del?.chain || !seal?.chain || seal.seq === undefined) throw new Error("the deletion record could not be read back with its chain value");
  const certificate: DeletionCertificate = {
    format: "portcullis-deletion-certificate-1",
    integration: id,
    vendor: contract?.vendor ?? null,
    contractVersion: contract?.version ?? null,
    deletion: { seq, chain: del.chain, time: new Date(del.time ?? board.clock.now()).toISOString() },
    seal: { seq: seal.seq, chain: seal.chain },
    destroyed: { pseudonymKey: fingerprint, queueItems: items, queueBytes: bytes, contract: removed },
    export: { from: header.from, to: header.to, lines: exportLines.length, sha256: exportSha },
  };
  return { certificate, markdown: certificateMarkdown(certificate), exportLines };
}

export function certificateMarkdown(c: DeletionCertificate): string {
  return [
    `# Deletion certificate — ${c.integration}${c.vendor ? ` (${c.vendor})` : ""}`,
    "",
    `At ${c.deletion.time} the gateway ended the integration ${c.integration}${c.contractVersion ? ` (contract v${c.contractVersion})` : ""} and destroyed:`,
    `- its pseudonym key${c.destroyed.pseudonymKey ? ` (SHA-256 fingerprint ${c.destroyed.pseudonymKey})` : " (none existed)"}: pseudonyms it made can no longer be linked to devices;`,
    `- its outbound queue: ${c.destroyed.queueItems} messages, ${c.destroyed.queueBytes} bytes;`,
    `- its contract${c.destroyed.contract ? "" : " (could not be removed)"}.`,
    "",
    `Audit record ${c.deletion.seq} says so; its chain value is ${c.deletion.chain}, sealed by record ${c.seal.seq} (chain ${c.seal.chain}).`,
    `The owner's export before deletion: records ${c.export.from}–${c.export.to}, ${c.export.lines} lines, SHA-256 ${c.export.sha256}.`,
    "Check it with the audit export covering these records and the verification key: `npm run audit:verify`.",
    "",
  ].join("\n");
}
