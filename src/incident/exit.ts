/**
 * Exit for an integration (the integration-governance article's exit provisions): first an export
 * for the owner (the audit export of everything retained — the contract records with their review
 * decisions, the consent records, every record of the integration — verifiable with
 * `npm run audit:verify`), then, in order and each recorded: quarantine, purge its queue, destroy its
 * pseudonym key (crypto-shredding), remove the contract, and a deletion record listing what was
 * destroyed. The certificate cites the deletion record's seq and chain value and the seal over it.
 */
import type { Board, KeyStore } from "../ports.js";
import type { AuditHandle } from "../gateway/audit.js";
import type { PolicyHandle } from "../gateway/policy.js";
import type { OutboundHandle } from "../gateway/outbound.js";
import { KeyPrefix } from "../policy/ledger.js";
import { toHex, tryUtf8, utf8 } from "../util/bytes.js";
import { IncidentError, actorDetail, type Actor } from "./manager.js";

/**
 * The KeyStore entry that keeps exits across reboots: JSON {integration: deletion record's seq, or null
 * while the exit is under way}. The contract file stays in the config until the owner removes it; at
 * boot a contract of an exited integration is not loaded (its flows deny `no-contract`, no pseudonym
 * key is made), and an entry whose file is gone is forgotten (the id may be used again).
 */
export const EXITED_KEY = "ex.integrations";
/** Most exits remembered (the entry stays well under a KeyStore value's 4000 bytes). */
export const MAX_EXITED = 64;

export function exitedIntegrations(keys: KeyStore): Record<string, number | null> {
  const raw = keys.get(EXITED_KEY);
  if (!raw) return {};
  try {
    const o = JSON.parse(tryUtf8(raw) ?? "") as unknown;
    const out: Record<string, number | null> = {};
    if (typeof o === "object" && o !== null && !Array.isArray(o)) for (const [k, v] of Object.entries(o)) if (v === null || (typeof v === "number" && Number.isSafeInteger(v))) out[k] = v;
    return out;
  } catch {
    return {};
  }
}

function writeExited(keys: KeyStore, map: Record<string, number | null>): void {
  const ids = Object.keys(map);
  if (ids.length > MAX_EXITED) throw new RangeError(`more than ${MAX_EXITED} exited integrations still have their contract file; remove some files`);
  if (ids.length === 0) keys.delete(EXITED_KEY);
  else keys.set(EXITED_KEY, utf8(JSON.stringify(map)));
}

/** The `id` of a contract text, when it is JSON with a string id. */
function idOf(text: string): string | undefined {
  try {
    const o = JSON.parse(text) as { id?: unknown };
    return typeof o?.id === "string" ? o.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * At boot: the contracts to load (those of exited integrations left out) and the exited ones still in
 * the config with their deletion record's seq; forgets exits whose contract file is gone.
 */
export function skipExited<C extends { readonly text: string; readonly source: string }>(keys: KeyStore, contracts: readonly C[]): { contracts: C[]; exited: { id: string; source: string; seq: number | null }[] } {
  const map = exitedIntegrations(keys);
  if (Object.keys(map).length === 0) return { contracts: contracts.slice(), exited: [] };
  const kept: C[] = [];
  const exited: { id: string; source: string; seq: number | null }[] = [];
  const present = new Set<string>();
  for (const c of contracts) {
    const id = idOf(c.text);
    if (id !== undefined && Object.prototype.hasOwnProperty.call(map, id)) present.add(id);
    const seq = id !== undefined ? map[id] : undefined;
    // An exit cut short (null: no deletion record yet) loads again, quarantined since step 2 is
    // persisted before anything is destroyed, so that `exit` can be run again.
    if (id !== undefined && typeof seq === "number") exited.push({ id, source: c.source, seq });
    else kept.push(c);
    if (id !== undefined && seq === null) exited.push({ id, source: c.source, seq: null });
  }
  let forgot = false;
  for (const id of Object.keys(map)) if (!present.has(id)) { delete map[id]; forgot = true; }
  if (forgot) writeExited(keys, map);
  return { contracts: kept, exited };
}

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
  // The exit is remembered first (fail closed: a reboot mid-way does not bring the contract back).
  writeExited(board.keys, { ...exitedIntegrations(board.keys), [id]: null });
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
  writeExited(board.keys, { ...exitedIntegrations(board.keys), [id]: seq });
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
