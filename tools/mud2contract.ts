/**
 * `npm run mud2contract -- <mud.json>`: turns an RFC 8520 MUD file into a draft contract (format v1).
 * The draft goes to stdout; stderr lists what MUD cannot say (fields, data classes, purpose, terms,
 * devices, topics, the vendor key), each with its JSON path. Those parts hold "TODO: ..." strings, which
 * contract:check reports until the owner fills them in. Exit 0 on success, 2 on bad arguments or input.
 */
import { readFileSync } from "node:fs";

const USAGE = "usage: npm run mud2contract -- <mud.json>\n  Writes a draft contract to stdout and the parts to complete to stderr.";
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 32).replace(/-+$/, "");

export interface Todo {
  readonly path: string;
  readonly hint: string;
}

interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** The accepted TCP destinations (dst-dnsname + port) of the MUD file's from-device-policy ACLs (RFC 8520 §2, §8). */
function endpoints(doc: Obj, notes: string[]): Endpoint[] {
  const mud = doc["ietf-mud:mud"] as Obj;
  const fdp = mud["from-device-policy"];
  const refs = isObj(fdp) && isObj(fdp["access-lists"]) ? (fdp["access-lists"] as Obj)["access-list"] : undefined;
  if (!Array.isArray(refs) || refs.length === 0) throw new Error('"ietf-mud:mud" has no from-device-policy access lists');
  const acls = isObj(doc["ietf-access-control-list:acls"]) ? (doc["ietf-access-control-list:acls"] as Obj).acl : undefined;
  if (!Array.isArray(acls)) throw new Error('missing "ietf-access-control-list:acls" / "acl"');
  const out: Endpoint[] = [];
  for (const ref of refs) {
    const name = isObj(ref) ? ref.name : undefined;
    const acl = acls.find((a) => isObj(a) && a.name === name) as Obj | undefined;
    if (!acl) throw new Error(`from-device-policy names ACL "${String(name)}", which the file does not define`);
    const aces = isObj(acl.aces) && Array.isArray((acl.aces as Obj).ace) ? ((acl.aces as Obj).ace as unknown[]) : [];
    for (const ace of aces) {
      if (!isObj(ace) || !isObj(ace.matches)) continue;
      const m = ace.matches as Obj;
      const label = `ACE "${String(ace.name)}"`;
      if (!isObj(ace.actions) || (ace.actions as Obj).forwarding !== "accept") {
        notes.push(`${label}: not an accept rule; skipped (default deny covers it)`);
        continue;
      }
      const ip = (isObj(m.ipv4) ? m.ipv4 : isObj(m.ipv6) ? m.ipv6 : {}) as Obj;
      const host = ip["ietf-acldns:dst-dnsname"];
      const tcp = isObj(m.tcp) ? (m.tcp as Obj)["destination-port"] : undefined;
      const port = isObj(tcp) && tcp.operator === "eq" ? tcp.port : undefined;
      if (typeof host !== "string") {
        notes.push(`${label}: no ietf-acldns:dst-dnsname (local network, controller or manufacturer match); not a vendor destination`);
      } else if (typeof port !== "number") {
        notes.push(`${label}: ${host} without a TCP "eq" destination port; skipped`);
      } else if (port === 443) {
        notes.push(`${label}: ${host}:443 looks like HTTPS, which contract v1 reserves; not converted`);
      } else if (!out.some((e) => e.host === host && e.port === port)) out.push({ host, port });
    }
  }
  if (out.length === 0) throw new Error("no accepted TCP destination with a DNS name in the from-device-policy ACLs");
  return out;
}

/** Builds the draft and the list of owner TODOs from a parsed MUD document. @throws Error on input that is not usable MUD. */
export function mudToDraft(doc: unknown): { draft: Obj; todos: Todo[]; notes: string[] } {
  if (!isObj(doc) || !isObj(doc["ietf-mud:mud"])) throw new Error('not a MUD file: no "ietf-mud:mud" object (RFC 8520 §2.1)');
  const mud = doc["ietf-mud:mud"] as Obj;
  const notes: string[] = [];
  const eps = endpoints(doc, notes);
  const todos: Todo[] = [];
  const todo = (path: string, hint: string): string => {
    todos.push({ path, hint });
    return `TODO: ${hint}`;
  };
  const str = (k: string): string | undefined => (typeof mud[k] === "string" ? (mud[k] as string) : undefined);
  const id = slug([str("mfg-name"), str("model-name")].filter(Boolean).join(" ")) || "mud-device";
  const doc_ = str("documentation");
  const updated = str("last-update")?.slice(0, 10);
  const destIds = new Set<string>();
  const destinations = eps.map((e, i) => {
    let did = slug(e.host) || `dest-${i}`;
    while (destIds.has(did)) did = `${did.slice(0, 28)}-${i}`;
    destIds.add(did);
    const p = `/destinations/${i}`;
    return {
      id: did,
      protocol: "mqtts",
      host: e.host,
      port: e.port,
      topic: "{integration}/{device-pseudonym}/{flow}",
      encryption: "hpke",
      publicKey: todo(`${p}/publicKey`, "vendor's P-256 public key for HPKE (base64, 65 bytes uncompressed), or set encryption to \"none\" and delete publicKey and keyId"),
      keyId: todo(`${p}/keyId`, "vendor's key id"),
    };
  });
  const flows = destinations.map((d, i) => {
    const p = `/flows/${i}`;
    return {
      id: `to-${d.id}`.slice(0, 32).replace(/-+$/, ""),
      destination: d.id,
      devices: [todo(`${p}/devices/0`, `ids of the home's devices of this model (${str("model-name") ?? "MUD device"})`)],
      topics: [todo(`${p}/topics/0`, "MQTT topic filters the devices publish on, e.g. home/<device>/telemetry")],
      fields: [{ path: todo(`${p}/fields/0/path`, "JSON Pointer of a field that may leave, e.g. /temperature_c"), class: todo(`${p}/fields/0/class`, "its data class: energy presence location health audio video identifier diagnostic environment usage") }],
      rate: { perMinute: 60, minIntervalMs: 1000 },
    };
  });
  const draft: Obj = {
    format: 1,
    id,
    version: updated ? `${updated.replace(/-/g, ".")}-draft` : "0-draft",
    vendor: str("mfg-name") ?? todo("/vendor", "vendor name"),
    contact: doc_?.startsWith("https://") ? doc_ : todo("/contact", "privacy and breach contact: e-mail or https:// URL"),
    purpose: todo("/purpose", `purpose in plain language (MUD says only: ${JSON.stringify(str("systeminfo") ?? "")})`),
    effective: updated && /^\d{4}-\d{2}-\d{2}$/.test(updated) ? updated : todo("/effective", "date the contract takes effect, YYYY-MM-DD"),
    destinations,
    flows,
    terms: {
      retentionDays: todo("/terms/retentionDays", "days the vendor keeps the data"),
      consent: { TODO: todo("/terms/consent/TODO", "replace with one entry per data class used: true when the household must opt in") },
      sla: { uptimePercent: todo("/terms/sla/uptimePercent", "vendor's uptime %"), maxLatencyMs: todo("/terms/sla/maxLatencyMs", "vendor's max latency, ms") },
      breachNotificationHours: 72,
      exit: { exportFormat: todo("/terms/exit/exportFormat", "export format on exit, e.g. json"), deletionDays: todo("/terms/exit/deletionDays", "days to delete data after exit") },
      queue: { maxBytes: 16384, overflow: "drop-oldest", ttlSeconds: 3600 },
    },
  };
  if (doc_?.startsWith("https://")) notes.push(`/contact taken from MUD "documentation" (${doc_}): check it is the privacy contact`);
  notes.push("/flows/*/rate, /terms/queue and /terms/breachNotificationHours hold defaults: review them");
  return { draft, todos, notes };
}

function main(args: string[]): number {
  if (args.length !== 1 || args[0] === "-h" || args[0] === "--help") {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const file = args[0] as string;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    process.stderr.write(`${file}: ${e instanceof SyntaxError ? `not valid JSON (${e.message})` : `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`}\n${USAGE}\n`);
    return 2;
  }
  try {
    const { draft, todos, notes } = mudToDraft(doc);
    process.stdout.write(JSON.stringify(draft, null, 2) + "\n");
    process.stderr.write(`MUD cannot say these; complete them before contract:check passes (${todos.length}):\n`);
    for (const t of todos) process.stderr.write(`  TODO ${t.path}: ${t.hint}\n`);
    for (const n of notes) process.stderr.write(`  note ${n}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`${file}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
}

process.exitCode = main(process.argv.slice(2));
