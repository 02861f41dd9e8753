// The dashboard: hand-written DOM (no framework), hash routes, every API call through api.js.
// Text goes in with textContent only (never innerHTML), so nothing the gateway returns is markup.
import qrcode from "qrcode-generator";
import * as api from "./api.js";

const $ = (s) => document.querySelector(s);
/** h("p.mut", {onclick}, "text", child…): an element; a string child is text. */
function h(tag, attrs, ...kids) {
  const [name, ...cls] = tag.split(".");
  const el = document.createElement(name);
  if (cls.length) el.className = cls.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k in el && k !== "list") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined && c !== false) el.append(typeof c === "object" ? c : String(c));
  return el;
}
/** Appends the children that are not null/undefined/false (DOM append would write "null"). */
const add = (el, ...xs) => el.append(...xs.flat().filter((x) => x !== null && x !== undefined && x !== false));
const table = (heads, rows) => h("div.scroll", null, h("table", null, h("thead", null, h("tr", null, heads.map((x) => h("th", { scope: "col" }, x)))), rows instanceof Element ? rows : h("tbody", null, rows)));
const dl = (pairs) => h("dl", null, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
const when = (t) => (t ? new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "—");
const absentNote = (what) => h("p.note", { "data-absent": "" }, `This gateway does not offer ${what} over HTTPS yet; use the serial console for now.`);
const failNote = (r) => h("p.err", { role: "alert" }, `The gateway refused: ${r.error || "error " + r.status}`);
/** The note for an answer that is not usable, or null when it is. */
const problem = (r, what) => (r.ok ? null : r.absent ? absentNote(what) : failNote(r));

/** Saves `text` as a download named `name` (a blob URL: nothing leaves the page). */
function save(text, name, type = "text/plain") {
  const a = h("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
const stamp = () => new Date().toISOString().slice(0, 19).replace(/:/g, "");
/**
 * A button whose action needs an explicit second step: the first press shows what will happen and
 * "Yes, …" / "Cancel" in its place (keyboard focus moves to "Cancel"); only "Yes" runs `run`.
 */
function twoStep(label, question, yes, run, cls = "button.sec") {
  const box = h("div.row");
  const first = h(cls, { type: "button", onclick: () => ask() }, label);
  const ask = () => {
    const no = h("button.sec", { type: "button", onclick: () => (box.replaceChildren(first), first.focus()) }, "Cancel");
    box.replaceChildren(h("p.note", { role: "alert" }, question), h("button.danger", { type: "button", onclick: () => (box.replaceChildren(first), run()) }, yes), no);
    no.focus();
  };
  box.append(first);
  return box;
}
/** A status line for the outcome of an action. */
const outcome = () => h("p", { role: "status", "aria-live": "polite" });
const said = (out, r, done) => (out.textContent = r.ok ? done : `Refused: ${r.error}`, r.ok);

let me = null;
let timer = null;
// Each page with the roles whose routes it reads (SPEC.md's route × role table): a page a role cannot
// use is not offered, so nobody meets a 403 they did not ask for.
const ALL = ["owner", "auditor", "installer"];
const READERS = ["owner", "auditor"];
const PAGES = [
  ["overview", "Overview", overview, ALL],
  ["datamap", "Data map", datamap, READERS],
  ["flows", "Flows", flows, READERS],
  ["contracts", "Contracts", contracts, ALL],
  ["consent", "Consent", consent, READERS],
  ["incidents", "Incidents", incidents, READERS],
  ["audit", "Audit", audit, READERS],
  ["accounts", "Accounts", accounts, ALL],
  ["devices", "Devices", devices, ["owner", "installer"]],
];
let incidentsRoute = false;
/** Whether the signed-in role may call routes open to `roles`. */
const may = (roles) => !!me && roles.includes(me.role);
const offered = ([id, , , roles]) => may(roles) && (id !== "incidents" || incidentsRoute);

function navigation() {
  const nav = $("#nav");
  const here = location.hash.slice(2).split("/")[0] || "overview";
  nav.replaceChildren(...PAGES.filter(offered).map(([id, title]) => h("a", { href: "#/" + id, "aria-current": id === here ? "page" : null }, title)),
    h("button.sec", { type: "button", onclick: () => signOut(false) }, "Sign out"),
    me && me.via === "session" ? h("button.sec", { type: "button", onclick: () => signOut(true) }, "Sign out everywhere") : null);
  nav.hidden = false;
}

async function route() {
  clearInterval(timer);
  timer = null;
  const main = $("#main");
  if (!api.signedIn()) return login(main);
  // "#/incidents/inc-1": the page, then what it shows (one incident).
  const [id, arg] = location.hash.slice(2).split("/").map((x) => decodeURIComponent(x));
  const page = PAGES.find((x) => x[0] === (id || "overview") && offered(x)) || PAGES[0];
  navigation();
  document.title = page[1] + " · Portcullis";
  const body = h("div");
  main.replaceChildren(h("h1", null, page[1]), body);
  main.focus();
  try {
    await page[2](body, arg);
  } catch (e) {
    add(body, h("p.err", { role: "alert" }, "This page failed: " + e.message));
  }
}

async function signIn(r) {
  if (!r.ok) return false;
  me = r.data;
  const m = await api.me();
  if (m.ok && m.data) me = m.data;
  $("#who").textContent = `${me.account} (${me.role}${me.via === "token" ? ", break-glass token" : ""})`;
  incidentsRoute = may(READERS) && !(await api.incidents()).absent;
  route();
  return true;
}
/** Ends this session (or, `everywhere`, every session of the account), then the sign-in page. */
async function signOut(everywhere) {
  if (everywhere && !confirm("Sign out on every browser and device where this account is signed in?")) return;
  await api.logout(everywhere);
  me = null;
  $("#who").textContent = "";
  $("#nav").hidden = true;
  location.hash = "";
  route();
}

/** The QR code of `text` as an SVG (one path of dark modules), drawn by the page: no image service. */
function qr(text) {
  const code = qrcode(0, "M");
  code.addData(text);
  code.make();
  const n = code.getModuleCount();
  let d = "";
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (code.isDark(r, c)) d += `M${c + 4} ${r + 4}h1v1h-1z`;
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${n + 8} ${n + 8}`);
  svg.setAttribute("class", "qr");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code of the authenticator link");
  const bg = document.createElementNS(NS, "rect");
  bg.setAttribute("width", "100%");
  bg.setAttribute("height", "100%");
  bg.setAttribute("fill", "#fff");
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(bg, path);
  return svg;
}

/** What setup (or an MFA reset) answered: the authenticator QR code, its link and secret, the recovery codes. */
function enrolment(r, main) {
  main.replaceChildren(
    h("h1", null, "Set up your authenticator"),
    h("p", null, `Account ${r.data.account} (${r.data.role}) is created. Scan this code with an authenticator app (or type the secret), then sign in with your password and the app's 6-digit code.`),
    ...enrolParts(r.data),
    h("button", { type: "button", onclick: () => login(main) }, "I have saved them: sign in"),
  );
  main.focus();
}
/** The QR code, secret and link of a TOTP enrolment, and its recovery codes (shown this once). */
function enrolParts(d) {
  const t = d.totp;
  return [
    h("div", { id: "enrol" }, qr(t.uri),
      dl([["Secret", h("code", { id: "totp-secret" }, t.secret)], ["Link", h("code", { id: "totp-uri" }, t.uri)]])),
    h("h2", null, "Recovery codes"),
    h("p", null, "Each works once instead of an authenticator code. Write them down now: they are shown only this once and the gateway keeps only their hashes."),
    h("ul", { id: "recovery" }, d.recoveryCodes.map((c) => h("li", null, h("code", null, c)))),
  ];
}

function login(main) {
  $("#nav").hidden = true;
  const out = h("p", { role: "status", "aria-live": "polite" });
  const acc = h("input", { name: "account", autocomplete: "username", required: true });
  const pw = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  // Not required: an auditor has no authenticator (owners and installers are refused without a code).
  const totp = h("input", { name: "totp", inputMode: "numeric", autocomplete: "one-time-code", spellcheck: false });
  const tok = h("input", { name: "token", type: "password", autocomplete: "off", required: true, spellcheck: false });
  const code = h("input", { name: "code", autocomplete: "off", required: true, spellcheck: false, placeholder: "XXXX-XXXX-XXXX-XXXX" });
  const sAcc = h("input", { name: "account", autocomplete: "username", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}" });
  const sPw = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true });
  const submit = (fn) => async (ev) => {
    ev.preventDefault();
    out.textContent = "Checking…";
    const r = await fn();
    if (!(await signIn(r))) out.textContent = r.absent ? "Password sign-in is not available on this gateway yet: use the break-glass token." : `Not signed in: ${r.error || r.status}`;
  };
  const first = async (ev) => {
    ev.preventDefault();
    out.textContent = "Creating the owner account…";
    const r = await api.setup(code.value, sAcc.value, sPw.value);
    if (r.ok && r.data && r.data.totp) return enrolment(r, main);
    out.textContent = `Not set up: ${r.error || r.status}`;
  };
  main.replaceChildren(
    h("h1", null, "Sign in"),
    h("form", { id: "login-password", onsubmit: submit(() => api.loginPassword(acc.value, pw.value, totp.value)) },
      h("label", null, "Account", acc), h("label", null, "Password", pw), h("label", null, "Authenticator code (or a recovery code; empty for an auditor)", totp), h("button", { type: "submit" }, "Sign in")),
    out,
    h("details", { id: "first-boot" }, h("summary", null, "First sign-in: create the owner account"),
      h("p.mut", null, "At first boot the gateway's serial console (npm start: its terminal) shows a one-time setup code. It creates the first owner account and is then used up."),
      h("form", { id: "setup", onsubmit: first }, h("label", null, "Setup code", code), h("label", null, "New account name", sAcc), h("label", null, "New password (at least 10 characters)", sPw), h("button", { type: "submit" }, "Create owner"))),
    h("details", null, h("summary", null, "Break-glass token"),
      h("p.mut", null, "The owner token the gateway wrote at first boot (owner.token in its data folder). It is kept in this tab's memory only; every use is recorded."),
      h("form", { id: "login-token", onsubmit: submit(() => api.loginToken(tok.value)) }, h("label", null, "Owner token", tok), h("button", { type: "submit" }, "Use token"))),
  );
  main.focus();
}

// --- plain words from a contract -------------------------------------------------------------

const andList = (xs) => (xs.length < 2 ? xs.join("") : xs.slice(0, -1).join(", ") + " and " + xs[xs.length - 1]);
const day = (t) => (t ? new Date(t).toLocaleDateString(undefined, { day: "numeric", month: "short" }) : "");
/** Whether a class may leave: an explicit choice, else the contract's default (consent required = no). */
const given = (g) => g.state === "opt-in" || (g.state === null && !g.required);
const consentWords = (g) => `${g.class}: ${g.state === null ? (g.required ? "waits for your consent" : "no consent needed") : given(g) ? "consent given" : "consent withdrawn"}${g.since ? " " + day(g.since) : ""}${g.who ? " by " + g.who : ""}`;

/** "ThermoCloud receives thermostat-hall's environment and usage data, keeps it 90 days, for: …" */
function describe(c, grants, map) {
  const devs = [];
  for (const d of (map && map.devices) || []) {
    const cls = (d.classes || []).filter((k) => (k.integrations || []).some((i) => i.integration === c.integration)).map((k) => k.class);
    if (cls.length) devs.push(`${d.device}'s ${andList(cls)} data`);
  }
  const what = devs.length ? andList(devs) : (c.classes || []).length ? `${andList(c.classes)} data` : "nothing";
  const keep = c.retentionDays !== null && c.retentionDays !== undefined ? `${c.retentionDays} days` : "";
  const to = (c.destinations || []).length ? `, sent to ${andList(c.destinations)}` : "";
  const purpose = (c.purpose || "no stated purpose").replace(/\.$/, "");
  return {
    flows: [`${c.vendor || c.integration} receives ${what}${to}, keeps it ${keep || "for an unstated time"}, for: ${purpose}.`],
    consent: grants.filter((g) => g.integration === c.integration).map(consentWords),
  };
}

// --- pages -------------------------------------------------------------------------------------

async function overview(body) {
  const none = { ok: false, absent: true, data: null };
  const [s, cs, gs, dm, td] = await Promise.all([api.status(), api.contracts(), may(READERS) ? api.consent() : none, may(READERS) ? api.datamap() : none, api.today()]);
  if (!s.ok) return add(body, failNote(s));
  const st = s.data;
  const contractsById = {};
  for (const c of api.list(cs.data, "contracts")) contractsById[c.integration] = c;
  const grants = api.list(gs.data, "consent");
  const live = h("p.mut", { role: "status" });
  add(body,
    h("p", null, `${st.name}: ${st.devicesConnected} of ${st.devicesConfigured} devices connected, up ${Math.round(st.uptimeSeconds / 60)} min.`),
    st.audit && st.audit.failClosed ? h("p.err", null, "The audit log cannot record: the gateway is refusing all traffic (fail closed).") : null,
    st.audit && st.audit.hold ? h("p.note", null, "The audit log is on hold: nothing is deleted by retention.") : null,
    cs.ok ? null : cs.absent ? h("p.note", { "data-absent": "" }, "Contract details are not offered over HTTPS: integrations are shown by name.") : failNote(cs),
  );
  const cards = h("div", { id: "integrations" });
  add(body, h("h2", null, "Integrations"), cards, live);
  // The owner's actions per integration, made once and moved into each repaint (a half-confirmed step survives it).
  const acts = {};
  const actions = (i) => {
    if (!me || me.role !== "owner" || i.state === "exited") return null;
    if (acts[i.id]) return acts[i.id];
    const out = outcome();
    const name = (contractsById[i.id] && contractsById[i.id].vendor) || i.id;
    const exit = async () => {
      out.textContent = "Exporting, purging and deleting…";
      const r = await api.exitIntegration(i.id);
      if (!said(out, r, `Exited: ${name}'s data is exported and deleted here; deletion certificate at record ${r.data && r.data.certificate && r.data.certificate.deletion ? r.data.certificate.deletion.seq : "?"}.`)) return;
      add(acts[i.id], h("div.row", null,
        h("button.sec", { type: "button", onclick: () => save(r.data.markdown, `portcullis-deletion-${i.id}-${stamp()}.md`, "text/markdown") }, "Download the certificate"),
        h("button.sec", { type: "button", onclick: () => save(r.data.export.join("\n") + "\n", `portcullis-exit-${i.id}-${stamp()}.jsonl`, "application/x-ndjson") }, "Download the export")));
    };
    acts[i.id] = h("div", { "data-actions": i.id },
      h("div.row", null,
        twoStep("Rotate pseudonym key", `${name} will see new pseudonyms from the next message on and cannot link them to the old ones.`, "Yes, rotate the key",
          async () => said(out, await api.rotate(i.id), "Key rotated: new pseudonyms from the next message.")),
        twoStep(`End ${name} (exit)`, `Exit exports everything kept about ${name}, quarantines it, purges its queue, destroys its pseudonym key, removes its contract and writes a deletion certificate. This cannot be undone.`, `Yes, end ${name}`, exit, "button.danger")),
      out);
    return acts[i.id];
  };
  /** "Left today" per integration, from the audit log since the gateway's local midnight (a reboot keeps it). */
  const leftToday = (t, id) => {
    if (!t || !t.ok) return null;
    const c = t.data.integrations.find((x) => x.integration === id) || { messages: 0, minimized: 0, bytes: 0 };
    return [`Left today (since ${when(t.data.since)}${t.data.clockSet ? "" : ", clock not set"})`,
      h("span", { "data-today": id }, `${c.messages} messages${c.minimized ? `, ${c.minimized} minimized` : ""} (${c.bytes} B of data)`)];
  };
  const paint = (st, t) => {
    cards.replaceChildren(...(st.integrations || []).map((i) => {
      // outbound is keyed "<integration>/<destination>": add up the integration's destinations.
      const links = Object.entries(st.outbound || {}).filter(([k]) => k === i.id || k.startsWith(i.id + "/")).map(([, v]) => v);
      const sum = (f) => links.reduce((n, l) => n + (l[f] || 0), 0);
      const dropped = links.reduce((n, l) => n + Object.values(l.dropped || {}).reduce((a, b) => a + b, 0), 0);
      const c = contractsById[i.id];
      const d = c ? describe(c, grants, dm.ok ? dm.data : null) : null;
      return h("section.card", { "data-integration": i.id },
        h("h3", null, c && c.vendor ? `${c.vendor} (${i.id})` : i.id),
        d ? d.flows.map((t) => h("p", null, t)) : h("p", null, `Integration ${i.id}, contract version ${i.version || "unknown"}.`),
        d && d.consent.length ? h("p.mut", null, "Consent — " + d.consent.join("; ")) : null,
        dl([
          ["State", h("span", { class: i.state === "active" ? "ok" : "warn" }, i.state)],
          leftToday(t, i.id),
          ["Delivered since boot", `${sum("sent")} messages (${sum("payloadBytes")} B of data)`],
          ["Waiting", `${sum("queued")} messages`],
          ["Dropped", String(dropped)],
          ["Link", links.map((l) => l.state).join(", ") || "—"],
        ]),
        actions(i));
    }));
    live.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  paint(st, td);
  timer = setInterval(async () => {
    const [n, t] = await Promise.all([api.status(), api.today()]);
    if (n.ok) paint(n.data, t);
  }, 5000);
}

async function datamap(body) {
  const r = await api.datamap();
  const p = problem(r, "the data map");
  if (p) return add(body, p);
  const devs = api.list(r.data, "devices");
  add(body, h("p.mut", null, "Declared: what the contracts allow each device's data classes to reach. Observed: what actually left since boot, and what was attempted and denied."),
    h("h2", null, "Declared"),
    table(["Device", "Class", "Integration", "Destination", "Seen"], devs.flatMap((d) => (d.classes || []).flatMap((k) => (k.integrations || []).map((i) =>
      h("tr", null, h("td", null, d.device), h("td", null, k.class), h("td", null, i.integration), h("td", null, (i.destinations || []).join(", ") || "—"), h("td", null, i.seen ? "yes" : "not yet")))))),
    h("h2", null, "Observed"),
    table(["Device", "Integration", "Allowed", "Minimized", "Denied", "Bytes out", "Note"], devs.flatMap((d) => (d.integrations || []).map((i) =>
      h("tr", { "data-observed": `${d.device}/${i.integration || "none"}` }, h("td", null, d.device), h("td", null, i.integration || "no contract"),
        h("td", null, String(i.counts.allowed)), h("td", null, String(i.counts.minimized)), h("td", null, h("span", { class: i.counts.denied ? "bad" : "" }, String(i.counts.denied))), h("td", null, String(i.counts.bytesOut)),
        h("td", null, i.attemptedDenied ? h("span.bad", null, "attempted and denied") : i.declaredNeverSeen ? "declared, never seen" : "—")))))
  );
}

async function flows(body) {
  const dev = h("input", { name: "device", placeholder: "any" });
  const integ = h("input", { name: "integration", placeholder: "any" });
  const dec = h("select", { name: "decision" }, ["", "allow", "minimize", "deny"].map((v) => h("option", { value: v }, v || "any")));
  const tbody = h("tbody");
  const live = h("p.mut", { role: "status", "aria-live": "off" });
  let rows = [];
  let next = 0;
  const paint = () => {
    const shown = rows.filter((x) => (x.kind === "flow" || x.kind === "flow-summary") && (!dec.value || x.decision === dec.value)).slice(-100).reverse();
    tbody.replaceChildren(...shown.map((x) => h("tr", null, h("td", null, when(x.time)), h("td", { class: x.decision === "deny" ? "bad" : x.decision === "minimize" ? "warn" : "ok" }, x.decision),
      h("td", null, x.device || "—"), h("td", null, x.integration || "—"), h("td", null, x.rule || "—"), h("td", null, x.reason || "—"), h("td", null, x.count ? String(x.count) : "1"))));
    if (!shown.length) tbody.append(h("tr", null, h("td", { colSpan: 7 }, "No flows match yet.")));
  };
  const pull = async (fresh) => {
    if (fresh) {
      rows = [];
      const s = await api.status();
      next = s.ok && s.data.audit ? Math.max(1, s.data.audit.nextSeq - 500) : 1;
    }
    const r = await api.audit({ since: next, limit: 500, device: dev.value.trim(), integration: integ.value.trim() });
    if (!r.ok) return body.replaceChildren(failNote(r));
    for (const x of r.data) next = Math.max(next, x.seq + 1);
    rows = rows.concat(r.data).slice(-1000);
    paint();
    live.textContent = `Live: updated ${new Date().toLocaleTimeString()}`;
  };
  const apply = (ev) => (ev.preventDefault(), pull(true));
  add(body, h("form.row", { onsubmit: apply, "aria-label": "Filter flows" }, h("label", null, "Device", dev), h("label", null, "Integration", integ), h("label", null, "Decision", dec), h("button", { type: "submit" }, "Filter")),
    live, table(["Time", "Decision", "Device", "Integration", "Rule", "Reason", "Count"], []));
  body.querySelector("table").replaceChild(tbody, body.querySelector("tbody"));
  dec.addEventListener("change", paint);
  await pull(true);
  timer = setInterval(() => pull(false), 3000);
}

async function contracts(body) {
  const [cs, ps, is] = await Promise.all([api.contracts(), api.pendingContracts(), api.integrations()]);
  const owner = me && me.role === "owner";
  add(body, h("h2", null, "Pending review"));
  const pp = problem(ps, "contract review");
  if (pp) add(body, pp);
  else {
    const pending = api.list(ps.data, "pending");
    if (!pending.length) add(body, h("p", null, "Nothing waits for review."));
    for (const p of pending) {
      const out = h("p", { role: "status" });
      const act = (fn, done) => async () => {
        const r = await fn(p.integration);
        out.textContent = r.ok ? `${done} Version ${r.data.version}.` : `Refused: ${r.error}`;
        if (r.ok) setTimeout(route, 800);
      };
      add(body, h("section.card", { "data-pending": p.integration }, h("h3", null, `${p.integration}: ${p.from || "new"} → ${p.to}`),
        p.summary ? h("p", null, p.summary) : null,
        h("ul", null, (p.changes || []).map((c) => h("li", { class: c.relevant ? "warn" : "" }, c.words))),
        owner ? h("div.row", null, h("button", { type: "button", onclick: act(api.approve, "Approved.") }, "Approve"), h("button.danger", { type: "button", onclick: act(api.reject, "Rejected.") }, "Reject")) : null, out));
    }
  }
  add(body, h("h2", null, "In force"));
  const cp = problem(cs, "contracts");
  if (cp) return add(body, cp);
  const byId = {};
  for (const i of api.list(is.data, "integrations")) byId[i.id] = i;
  for (const c of api.list(cs.data, "contracts")) {
    const i = byId[c.integration] || {};
    const out = h("p", { role: "status" });
    const q = i.state === "quarantined" || !!i.quarantine;
    const toggle = async () => {
      const r = await (q ? api.release(c.integration) : api.quarantine(c.integration, "owner, from the dashboard"));
      out.textContent = r.ok ? (q ? "Released." : "Quarantined: nothing leaves for this integration.") : `Refused: ${r.error}`;
      if (r.ok) setTimeout(route, 800);
    };
    add(body, h("section.card", { "data-contract": c.integration }, h("h3", null, `${c.vendor || c.integration} — version ${c.version || "none"}`),
      dl([["Purpose", c.purpose || "—"], ["Keeps data", c.retentionDays !== null ? `${c.retentionDays} days` : "—"], ["Data classes", (c.classes || []).join(", ") || "—"],
        ["Destinations", (c.destinations || []).join(", ") || "—"], ["State", i.state ? i.state + (i.quarantine ? ` (${i.quarantine})` : "") : "—"], c.pendingVersion ? ["Pending", c.pendingVersion] : null]),
      is.ok && owner ? h("button.sec", { type: "button", onclick: toggle }, q ? "Release" : "Quarantine") : null, out));
  }
}

async function consent(body) {
  const gs = await api.consent();
  add(body, h("p", null, "Withdrawing consent takes effect at once: the integration's key for that data is destroyed, messages already waiting are purged, and later messages leave without that data. Giving it again applies only to new messages."));
  const p = problem(gs, "consent choices");
  if (p) return add(body, p);
  const owner = me && me.role === "owner";
  const rows = api.list(gs.data, "consent").map((g) => {
    const out = h("span", { role: "status" });
    const last = h("span", null, g.since ? day(g.since) + (g.who ? " by " + g.who : "") : g.required ? "needs your consent" : "allowed by default");
    const box = h("input", { type: "checkbox", checked: given(g), disabled: !owner, "aria-label": `${g.integration}: ${g.class} data` });
    box.addEventListener("change", async () => {
      if (!box.checked && !confirm(`Withdraw consent for ${g.class} data to ${g.integration}? Its key is destroyed and queued messages are purged.`)) return (box.checked = true);
      box.disabled = true;
      const r = await api.setConsent(g.integration, g.class, box.checked);
      box.disabled = false;
      if (!r.ok) box.checked = !box.checked;
      else last.textContent = `now, by ${me.account}`;
      out.textContent = r.ok ? (box.checked ? "Given." : "Withdrawn: key destroyed, queue purged.") : `Refused: ${r.error}`;
    });
    return h("tr", null, h("td", null, g.integration), h("td", null, g.class), h("td", null, h("label", null, box)), h("td", null, last, " ", out));
  });
  add(body, table(["Integration", "Data class", "Consent", "Last change"], rows));
}

/** The nearest open notification deadline of an incident, in words. */
function nextDeadline(x) {
  const open = ((x.deadlines && x.deadlines.parties) || []).filter((d) => d.notifiedSeq === null && typeof d.leftMs === "number");
  if (!open.length) return "none open";
  const d = open.reduce((a, b) => (b.leftMs < a.leftMs ? b : a));
  return d.leftMs < 0 ? `${d.party}: overdue` : `${d.party}: ${Math.round(d.leftMs / 3600000)} h left`;
}

async function incidents(body, which) {
  if (which) return incidentPage(body, which);
  const r = await api.incidents();
  const p = problem(r, "incidents");
  if (p) return add(body, p);
  const xs = api.list(r.data, "incidents");
  add(body, h("p", null, "Each step of an incident is an audit record; what is shown here is read back from the log."));
  add(body, xs.length
    ? table(["Incident", "Severity", "State", "Aware", "Next deadline"], xs.map((x) => h("tr", { "data-incident": x.id }, h("td", null, h("a", { href: `#/incidents/${encodeURIComponent(x.id)}` }, `${x.id}: ${x.title}`)), h("td", null, x.severity), h("td", null, x.state), h("td", null, when(x.awareAt)), h("td", null, nextDeadline(x)))))
    : h("p", null, "No incidents."));
  if (!me || me.role !== "owner") return;
  const [is, ds] = await Promise.all([api.integrations(), api.devices()]);
  const title = h("input", { name: "title", required: true, maxLength: 200 });
  const sev = h("select", { name: "severity" }, ["low", "medium", "high"].map((x) => h("option", { value: x, selected: x === "medium" }, x)));
  const box = (kind, v) => h("label.check", null, h("input", { type: "checkbox", name: kind, value: v }), v);
  const out = outcome();
  const submit = async (ev) => {
    ev.preventDefault();
    const picked = (kind) => [...body.querySelectorAll(`#open-incident input[name=${kind}]:checked`)].map((x) => x.value);
    const x = await api.openIncident(title.value, sev.value, { integrations: picked("integration"), devices: picked("device") });
    if (said(out, x, `Opened ${x.data && x.data.id}.`)) location.hash = `#/incidents/${encodeURIComponent(x.data.id)}`;
  };
  add(body, h("h2", null, "Open an incident"),
    h("p.mut", null, "Opening with a scope contains it at once: each chosen integration is quarantined, each chosen device disabled, the log is put on hold and sealed, and the evidence is recorded."),
    h("form", { id: "open-incident", onsubmit: submit }, h("label", null, "What happened", title), h("label", null, "Severity", sev),
      h("fieldset", null, h("legend", null, "Integrations in scope"), api.list(is.data, "integrations").filter((i) => i.state !== "exited").map((i) => box("integration", i.id))),
      ds.ok ? h("fieldset", null, h("legend", null, "Devices in scope"), api.list(ds.data, "devices").map((d) => box("device", d.id))) : null,
      h("button", { type: "submit" }, "Open incident")), out);
}

/** One incident: its state and deadlines, the owner's steps, and its timeline, kept live like Flows. */
async function incidentPage(body, which) {
  const r = await api.incident(which);
  if (!r.ok) return add(body, failNote(r));
  const x = r.data;
  const owner = me && me.role === "owner";
  $("#main h1").textContent = `Incident ${x.id}: ${x.title}`;
  const out = outcome();
  const step = (fn, done) => async (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    if (said(out, await fn(), done)) setTimeout(() => location.hash === `#/incidents/${encodeURIComponent(x.id)}` && route(), 800);
  };
  const parties = (x.deadlines && x.deadlines.parties) || [];
  add(body, h("p", null, h("a", { href: "#/incidents" }, "All incidents")),
    dl([["State", h("span", { id: "incident-state" }, x.state)], ["Severity", x.severity], ["Aware since", when(x.awareAt)],
      ["Scope", [...x.scope.integrations, ...x.scope.devices].join(", ") || "none"], ["Evidence", x.evidence ? `sealed at record ${x.evidence.sealSeq}` : "—"],
      ["Notes", String(x.notes)], x.reviewDueAt ? ["Review due", when(x.reviewDueAt)] : null, x.deadlines && x.deadlines.warning ? ["Warning", x.deadlines.warning] : null]),
    h("h2", null, "Who must be told"),
    table(["Party", "Kind", "Within", "Left", "Told"], parties.map((d) => h("tr", null, h("td", null, d.party), h("td", null, d.kind), h("td", null, `${d.hours} h`),
      h("td", null, d.notifiedSeq !== null ? "—" : d.leftMs === null ? "—" : d.leftMs < 0 ? h("span.bad", null, "overdue") : `${Math.round(d.leftMs / 3600000)} h`),
      h("td", null, d.notifiedSeq !== null ? `yes (record ${d.notifiedSeq})` : "not yet")))),
  );
  const notice = h("pre", { id: "notice", hidden: true });
  const getNotice = async () => {
    const n = await api.notice(x.id);
    if (!said(out, n, "Breach notice generated (its hash is in the log).")) return;
    notice.textContent = n.data;
    notice.hidden = false;
    save(n.data, `portcullis-breach-notice-${x.id}-${stamp()}.md`, "text/markdown");
  };
  const getEvidence = async () => {
    const e = await api.evidence(x.id);
    if (said(out, e, `Evidence: ${e.data ? e.data.split("\n").filter(Boolean).length : 0} lines, self-verifying.`)) save(e.data, `portcullis-evidence-${x.id}-${stamp()}.jsonl`, "application/x-ndjson");
  };
  add(body, h("div.row", null, h("button.sec", { type: "button", id: "evidence", onclick: getEvidence }, "Download evidence"),
    h("button.sec", { type: "button", id: "breach-notice", onclick: getNotice }, "Breach notice")), out, notice);
  if (owner) {
    const text = h("input", { name: "text", required: true, maxLength: 200 });
    const party = h("select", { name: "party" }, parties.filter((d) => d.notifiedSeq === null).map((d) => h("option", { value: d.party }, d.party)));
    const ref = h("input", { name: "reference", placeholder: "ticket, e-mail, call…" });
    add(body, h("h2", null, "Steps"),
      h("form.row", { id: "incident-note", onsubmit: async (ev) => { ev.preventDefault(); if (said(out, await api.note(x.id, text.value), "Note added.")) text.value = ""; } },
        h("label", null, "Note", text), h("button", { type: "submit" }, "Add note")),
      party.options.length ? h("form.row", { id: "incident-notified", onsubmit: step(() => api.notified(x.id, party.value, ref.value), "Notification recorded.") },
        h("label", null, "Told", party), h("label", null, "Reference", ref), h("button", { type: "submit" }, "Record")) : null,
      x.state === "open" || x.state === "contained" ? twoStep("Resolve", "Resolve this incident? The review deadline starts now. Undo containment yourself: release, enable, unhold.", "Yes, resolve", step(() => api.resolve(x.id), "Resolved.")) : null);
    if (x.state === "resolved") {
      const prevent = h("input", { name: "prevent", required: true });
      const acts = h("textarea", { name: "actions", rows: 3 });
      add(body, h("form", { id: "incident-review", onsubmit: step(() => api.review(x.id, prevent.value, acts.value.split("\n").map((a) => a.trim()).filter(Boolean)), "Reviewed.") },
        h("label", null, "What would have prevented it", prevent), h("label", null, "Actions (one a line)", acts), h("button", { type: "submit" }, "Complete the review")));
    }
  }
  // The timeline: every in-scope record, polled from the last seq seen (as the Flows page does).
  const tbody = h("tbody");
  const live = h("p.mut", { role: "status", "aria-live": "off" });
  add(body, h("h2", null, "Timeline"), live, h("div", { id: "timeline" }, table(["Seq", "Time", "Kind", "What", "Device", "Integration"], tbody)));
  let next = 1;
  const pull = async () => {
    const t = await api.timeline(x.id, next);
    if (!t.ok) return (live.textContent = `Timeline unavailable: ${t.error}`);
    for (const e of t.data) {
      next = Math.max(next, e.seq + 1);
      tbody.prepend(h("tr", { "data-seq": e.seq }, h("td", null, String(e.seq)), h("td", null, when(e.time)), h("td", null, e.kind),
        h("td", null, [e.reason, e.detail && e.detail.text].filter(Boolean).join(": ") || e.decision), h("td", null, e.device || "—"), h("td", null, e.integration || "—")));
    }
    live.textContent = `Live: updated ${new Date().toLocaleTimeString()}`;
  };
  await pull();
  timer = setInterval(pull, 3000);
}

async function audit(body) {
  const [s, cp] = await Promise.all([api.status(), api.checkpoint()]);
  const st = s.ok ? s.data.audit || {} : {};
  const out = h("p", { role: "status", "aria-live": "polite" });
  const download = async () => {
    out.textContent = "Exporting…";
    const r = await api.auditExport();
    if (!r.ok) return (out.textContent = `Export refused: ${r.error}`);
    save(r.data, `portcullis-audit-${stamp()}.jsonl`, "application/x-ndjson");
    out.textContent = `Exported ${r.data.split("\n").filter(Boolean).length} lines. Check it offline: npm run audit:verify -- <file> --key audit-verification.key`;
  };
  const admin = (fn, done) => async () => {
    const r = await fn();
    out.textContent = r.ok ? done : r.absent ? "This gateway does not offer that over HTTPS yet." : `Refused: ${r.error}`;
    if (r.ok) setTimeout(() => location.hash === "#/audit" && route(), 800); // show the new seal / hold state
  };
  const seal = cp.ok ? cp.data : null;
  add(body, 
    dl([
      ["Records", String(st.records ?? "—")],
      ["Flash used", st.flashTotalBytes ? `${Math.round((100 * st.flashUsedBytes) / st.flashTotalBytes)} % of ${Math.round(st.flashTotalBytes / 1024)} KiB` : "—"],
      ["Hold", st.hold ? "on: retention deletes nothing" : "off"],
      ["Verification key", st.verificationKeyFingerprint ? h("code", null, st.verificationKeyFingerprint) : "kept offline: the gateway wrote it once at first boot (audit-verification.key) and does not keep it"],
      ["Last seal", seal ? `seq ${seal.seq}, epoch ${seal.epoch}, ${when(seal.time)}${seal.timeSet ? "" : " (clock not set)"}` : cp.absent ? "not offered" : `unavailable: ${cp.error}`],
      ["Seal chain", seal ? h("code", null, seal.chain) : "—"],
      ["Certificate", s.ok && s.data.certificateFingerprint ? h("code", null, s.data.certificateFingerprint) : "—"],
    ]),
    h("div.row", null, h("button", { type: "button", id: "export", onclick: download }, "Download export"),
      h("button.sec", { type: "button", onclick: admin(api.seal, "Sealed.") }, "Seal now"),
      h("button.sec", { type: "button", onclick: admin(st.hold ? api.unhold : () => api.hold(prompt("Why hold the log (for example a dispute)?") || "owner"), st.hold ? "Hold lifted." : "Hold placed.") }, st.hold ? "Lift hold" : "Place hold")),
    out,
  );
}

/** The signed-in person's own account: a new password, a new authenticator (each asks for the current password). */
function yours() {
  const box = h("section.card", { id: "yours" }, h("h2", null, "Your account"));
  const out = outcome();
  const shown = h("div");
  const cur = h("input", { name: "password", type: "password", required: true, autocomplete: "current-password" });
  const next = h("input", { name: "newPassword", type: "password", required: true, autocomplete: "new-password" });
  const cur2 = h("input", { name: "password", type: "password", required: true, autocomplete: "current-password" });
  add(box,
    h("form", { id: "change-password", onsubmit: async (ev) => { ev.preventDefault(); if (said(out, await api.changePassword(cur.value, next.value), "Password changed.")) cur.value = next.value = ""; } },
      h("label", null, "Current password", cur), h("label", null, "New password (at least 10 characters)", next), h("button", { type: "submit" }, "Change password")),
    h("form", { id: "enrol-me", onsubmit: async (ev) => {
      ev.preventDefault();
      const r = await api.enrolMe(cur2.value);
      if (!said(out, r, "New authenticator: the old one and the old recovery codes no longer work.")) return;
      cur2.value = "";
      shown.replaceChildren(h("p", null, "Scan this with your authenticator app and keep the new recovery codes; they are shown only now."), ...enrolParts(r.data), h("button", { type: "button", onclick: () => shown.replaceChildren() }, "Done"));
    } }, h("label", null, "Current password", cur2), h("button.sec", { type: "submit" }, "New authenticator")),
    out, shown);
  return box;
}

async function accounts(body) {
  add(body, h("p", null, me ? `You are signed in as ${me.account} (${me.role}${me.via === "token" ? ", with the break-glass token" : ""}).` : ""));
  if (me && me.via === "session") add(body, h("p.mut", null, `Recovery codes left: ${me.recoveryCodesLeft ?? "—"}.`), yours());
  if (!may(["owner"])) return add(body, h("p.mut", null, "Accounts are managed by an owner."));
  const r = await api.accounts();
  const p = problem(r, "account management");
  if (p) return add(body, p);
  const shown = h("div", { id: "account-result" });
  const out = outcome();
  /** An answer that carries a TOTP enrolment is shown once, with its QR code and recovery codes. */
  const show = (d, words) => {
    shown.replaceChildren(h("section.card", null, h("h2", null, words),
      d.totp ? [h("p", null, `Give this to ${d.name}: scan the code with an authenticator app, keep the recovery codes. It is shown only now.`), ...enrolParts(d)] : h("p", null, `${d.name} signs in with the password alone (an auditor needs no authenticator).`),
      h("button", { type: "button", onclick: route }, "Done: it is handed over")));
    shown.querySelector("button:last-child").focus();
  };
  add(body, table(["Account", "Role", "MFA", "Recovery codes", "Locked", "Actions"], api.list(r.data, "accounts").map((a) => {
    const mine = me && a.name === me.account;
    return h("tr", { "data-account": a.name }, h("td", null, a.name), h("td", null, a.role), h("td", null, a.mfa ? "yes" : "no"), h("td", null, String(a.recoveryCodesLeft)), h("td", null, a.locked ? "yes" : "no"),
      h("td", null, h("div.row", null,
        a.locked ? h("button.sec", { type: "button", onclick: async () => said(out, await api.unlock(a.name), `${a.name} is unlocked.`) && setTimeout(route, 800) }, "Unlock") : null,
        twoStep("Reset MFA", `${a.name} gets a new authenticator secret and recovery codes; the old ones stop working and ${a.name}'s sessions end.`, "Yes, reset",
          async () => { const x = await api.resetMfa(a.name); if (said(out, x, `MFA of ${a.name} reset.`)) x.data.totp ? show(x.data, `New authenticator for ${a.name}`) : setTimeout(route, 800); }),
        mine ? null : twoStep("Remove", `Remove ${a.name} (${a.role})? Its sessions end at once.`, `Yes, remove ${a.name}`,
          async () => said(out, await api.removeAccount(a.name), `${a.name} is removed.`) && setTimeout(route, 800), "button.danger"))));
  })), out, shown);
  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}", autocomplete: "off" });
  const role = h("select", { name: "role" }, ["installer", "auditor", "owner"].map((x) => h("option", { value: x }, x)));
  const pw = h("input", { name: "password", type: "password", required: true, autocomplete: "new-password" });
  const addOut = outcome();
  const submit = async (ev) => {
    ev.preventDefault();
    const x = await api.addAccount(name.value, role.value, pw.value);
    if (!said(addOut, x, `${x.data && x.data.name} (${x.data && x.data.role}) is added.`)) return;
    show(x.data, `New account ${x.data.name} (${x.data.role})`);
  };
  add(body, h("h2", null, "Add an account"),
    h("p.mut", null, "An installer sets up devices and sees no flow details or consent; an auditor reads and exports the log and changes nothing; an owner can do everything. Owners and installers sign in with an authenticator app."),
    h("form", { id: "add-account", onsubmit: submit }, h("label", null, "Name", name), h("label", null, "Role", role), h("label", null, "Password (at least 10 characters)", pw), h("button", { type: "submit" }, "Add account")), addOut);
}

async function devices(body) {
  const r = await api.devices();
  const p = problem(r, "device management");
  if (p) return add(body, p);
  const ds = api.list(r.data, "devices");
  const out = outcome();
  const shown = h("div", { id: "device-result" });
  add(body, h("p", null, `${ds.filter((d) => d.connected).length} of ${ds.length} configured devices are connected.`),
    table(["Device", "Groups", "Connected", "From", "Credentials", "Actions"], ds.map((d) => h("tr", { "data-device": d.id }, h("td", null, d.id), h("td", null, (d.groups || []).join(", ") || "—"),
      h("td", null, d.connected ? `yes, ${Math.round((d.connectedSeconds || 0) / 60)} min` : "no"), h("td", null, d.source === "added" ? "added here" : "gateway.json"),
      h("td", { class: d.disabled ? "bad" : "" }, d.disabled ? "disabled" : "enabled"),
      h("td", null, h("div.row", null,
        h("button.sec", { type: "button", onclick: async () => said(out, await api.setDevice(d.id, d.disabled), d.disabled ? `${d.id} may connect again.` : `${d.id} is disabled: it is refused from now on.`) && setTimeout(route, 800) }, d.disabled ? "Enable" : "Disable"),
        d.source === "added" ? twoStep("Remove", `Remove ${d.id}? Its credentials are deleted and its session closes.`, `Yes, remove ${d.id}`,
          async () => said(out, await api.removeDevice(d.id), `${d.id} is removed.`) && setTimeout(route, 800), "button.danger") : null))))),
    out, shown);
  const id = h("input", { name: "id", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}", autocomplete: "off" });
  const user = h("input", { name: "username", placeholder: "same as the id", pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}", autocomplete: "off" });
  const addOut = outcome();
  const submit = async (ev) => {
    ev.preventDefault();
    const x = await api.addDevice(id.value.trim(), user.value.trim());
    if (!said(addOut, x, `${x.data && x.data.id} is added.`)) return;
    shown.replaceChildren(h("section.card", null, h("h2", null, `Credentials of ${x.data.id}`),
      h("p", null, "Put these into the device's MQTT settings now: the password is shown only this once (the gateway keeps only a salted hash)."),
      dl([["Client id", h("code", null, x.data.id)], ["Username", h("code", null, x.data.username)], ["Password", h("code", { id: "device-password" }, x.data.password)]]),
      h("button", { type: "button", onclick: route }, "Done: it is in the device")));
    shown.querySelector("button").focus();
  };
  add(body, h("h2", null, "Add a device"),
    h("form", { id: "add-device", onsubmit: submit }, h("label", null, "Device id", id), h("label", null, "MQTT username (optional)", user), h("button", { type: "submit" }, "Add device")), addOut);
}

addEventListener("hashchange", route);
addEventListener("DOMContentLoaded", async () => {
  // A cookie session from an earlier visit, if the gateway has sessions.
  const m = await api.me();
  if (m.ok && m.data && m.data.account) {
    await signIn({ ok: true, data: m.data });
  } else route();
});
