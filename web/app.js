// The dashboard: hand-written DOM (no framework), hash routes, every API call through api.js.
// Text goes in with textContent only (never innerHTML), so nothing the gateway returns is markup.
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
const table = (heads, rows) => h("div.scroll", null, h("table", null, h("thead", null, h("tr", null, heads.map((x) => h("th", { scope: "col" }, x)))), h("tbody", null, rows)));
const dl = (pairs) => h("dl", null, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
const when = (t) => (t ? new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "—");
const absentNote = (what) => h("p.note", { "data-absent": "" }, `This gateway does not offer ${what} over HTTPS yet; use the serial console for now.`);
const failNote = (r) => h("p.err", { role: "alert" }, `The gateway refused: ${r.error || "error " + r.status}`);
/** The note for an answer that is not usable, or null when it is. */
const problem = (r, what) => (r.ok ? null : r.absent ? absentNote(what) : failNote(r));

let me = null;
let timer = null;
const PAGES = [
  ["overview", "Overview", overview],
  ["datamap", "Data map", datamap],
  ["flows", "Flows", flows],
  ["contracts", "Contracts", contracts],
  ["consent", "Consent", consent],
  ["incidents", "Incidents", incidents],
  ["audit", "Audit", audit],
  ["accounts", "Accounts", accounts],
  ["devices", "Devices", devices],
];
let incidentsRoute = false;

function navigation() {
  const nav = $("#nav");
  const here = location.hash.slice(2) || "overview";
  nav.replaceChildren(...PAGES.filter(([id]) => id !== "incidents" || incidentsRoute).map(([id, title]) => h("a", { href: "#/" + id, "aria-current": id === here ? "page" : null }, title)),
    h("button.sec", { type: "button", onclick: signOut }, "Sign out"));
  nav.hidden = false;
}

async function route() {
  clearInterval(timer);
  timer = null;
  const main = $("#main");
  if (!api.signedIn()) return login(main);
  const id = location.hash.slice(2) || "overview";
  const page = PAGES.find(([p]) => p === id && (p !== "incidents" || incidentsRoute)) || PAGES[0];
  navigation();
  document.title = page[1] + " · Portcullis";
  const body = h("div");
  main.replaceChildren(h("h1", null, page[1]), body);
  main.focus();
  try {
    await page[2](body);
  } catch (e) {
    add(body, h("p.err", { role: "alert" }, "This page failed: " + e.message));
  }
}

async function signIn(r) {
  if (!r.ok) return false;
  me = r.data;
  const m = await api.me();
  if (m.ok && m.data) me = m.data;
  $("#who").textContent = `${me.account} (${me.role})`;
  incidentsRoute = !(await api.incidents()).absent;
  route();
  return true;
}
async function signOut() {
  await api.logout();
  me = null;
  $("#who").textContent = "";
  $("#nav").hidden = true;
  location.hash = "";
  route();
}

function login(main) {
  $("#nav").hidden = true;
  const out = h("p", { role: "status", "aria-live": "polite" });
  const acc = h("input", { name: "account", autocomplete: "username", required: true });
  const pw = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const totp = h("input", { name: "totp", inputMode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxLength: 6 });
  const tok = h("input", { name: "token", type: "password", autocomplete: "off", required: true, spellcheck: false });
  const submit = (fn) => async (ev) => {
    ev.preventDefault();
    out.textContent = "Checking…";
    const r = await fn();
    if (!(await signIn(r))) out.textContent = r.absent ? "Password sign-in is not available on this gateway yet: use the break-glass token." : `Not signed in: ${r.error || r.status}`;
  };
  main.replaceChildren(
    h("h1", null, "Sign in"),
    h("form", { id: "login-password", onsubmit: submit(() => api.loginPassword(acc.value, pw.value, totp.value)) },
      h("label", null, "Account", acc), h("label", null, "Password", pw), h("label", null, "Authenticator code", totp), h("button", { type: "submit" }, "Sign in")),
    h("h2", null, "Break-glass token"),
    h("p.mut", null, "The owner token the gateway wrote at first boot (owner.token in its data folder). It is kept in this tab's memory only; every use is recorded."),
    h("form", { id: "login-token", onsubmit: submit(() => api.loginToken(tok.value)) }, h("label", null, "Owner token", tok), h("button", { type: "submit" }, "Use token")),
    out,
  );
  main.focus();
}

// --- plain words from a contract -------------------------------------------------------------

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const andList = (xs) => (xs.length < 2 ? xs.join("") : xs.slice(0, -1).join(", ") + " and " + xs[xs.length - 1]);
const fieldName = (p) => p.replace(/^\//, "").replace(/[/_]/g, " ").replace(/\bc$/, "").trim();

/** "ThermoCloud receives thermostat-hall's temperature and setpoint (environment data) …" */
function describe(c, grants) {
  const out = [];
  for (const f of c.flows || []) {
    const byClass = {};
    for (const fl of f.fields || []) (byClass[fl.class] = byClass[fl.class] || []).push(fieldName(fl.path));
    const what = andList(Object.entries(byClass).map(([cls, names]) => `${andList(names)} (${cls} data)`));
    const rate = f.rate && f.rate.perMinute ? `, at most ${f.rate.perMinute} messages a minute` : "";
    const keep = c.terms && c.terms.retentionDays !== undefined ? `, keeps it ${c.terms.retentionDays} days` : "";
    const devs = andList((f.devices || []).map((d) => d + "'s"));
    out.push(`${c.vendor || c.id} receives ${devs ? devs + " " : ""}${what || "nothing"}${rate}${keep}, for: ${c.purpose || "no stated purpose"}`);
  }
  const cons = Object.keys((c.terms && c.terms.consent) || {}).map((cls) => {
    const g = grants.find((x) => x.integration === c.id && x.class === cls);
    const given = g ? g.grant : c.terms.consent[cls];
    return `${cls}: ${given ? "consent given" : "no consent"}${g && g.time ? " " + when(g.time) : ""}${g && g.by ? " by " + g.by : ""}`;
  });
  return { flows: out, consent: cons };
}

// --- pages -------------------------------------------------------------------------------------

async function overview(body) {
  const [s, cs, gs] = await Promise.all([api.status(), api.contracts(), api.consent()]);
  if (!s.ok) return add(body, failNote(s));
  const st = s.data;
  const contractsById = {};
  for (const c of api.list(cs.data, "contracts")) contractsById[c.id] = c;
  const grants = api.list(gs.data, "consent");
  const live = h("p.mut", { role: "status" });
  add(body, 
    h("p", null, `${st.name}: ${st.devicesConnected} of ${st.devicesConfigured} devices connected, up ${Math.round(st.uptimeSeconds / 60)} min.`),
    st.audit && st.audit.failClosed ? h("p.err", null, "The audit log cannot record: the gateway is refusing all traffic (fail closed).") : null,
    st.audit && st.audit.hold ? h("p.note", null, "The audit log is on hold: nothing is deleted by retention.") : null,
    cs.ok ? null : cs.absent ? h("p.note", { "data-absent": "" }, "Contract details are not offered over HTTPS yet: integrations are shown by name.") : failNote(cs),
  );
  const cards = h("div", { id: "integrations" });
  add(body, h("h2", null, "Integrations"), cards, live);
  const paint = (st) => {
    cards.replaceChildren(...(st.integrations || []).map((i) => {
      // outbound is keyed "<integration>/<destination>": add up the integration's destinations.
      const links = Object.entries(st.outbound || {}).filter(([k]) => k === i.id || k.startsWith(i.id + "/")).map(([, v]) => v);
      const sum = (f) => links.reduce((n, l) => n + (l[f] || 0), 0);
      const o = { sent: sum("sent"), payloadBytes: sum("payloadBytes"), queued: sum("queued"), dropped: {}, state: links.map((l) => l.state).join(", ") };
      for (const l of links) for (const [why, n] of Object.entries(l.dropped || {})) o.dropped[why] = (o.dropped[why] || 0) + n;
      const c = contractsById[i.id];
      const d = c ? describe(c, grants) : null;
      const dropped = Object.values(o.dropped || {}).reduce((a, b) => a + b, 0);
      return h("section.card", { "data-integration": i.id },
        h("h3", null, c && c.vendor ? `${c.vendor} (${i.id})` : i.id),
        d ? d.flows.map((t) => h("p", null, t)) : h("p", null, `Integration ${i.id}, contract version ${i.version || "unknown"}.`),
        d && d.consent.length ? h("p.mut", null, "Consent — " + d.consent.join("; ")) : null,
        dl([
          ["State", h("span", { class: i.state === "active" ? "ok" : "warn" }, i.state)],
          ["Delivered since boot", `${o.sent || 0} messages (${o.payloadBytes || 0} B of data)`],
          ["Waiting", `${o.queued || 0} messages`],
          ["Dropped", String(dropped)],
          ["Link", o.state || "—"],
        ]));
    }));
    live.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  paint(st);
  timer = setInterval(async () => {
    const n = await api.status();
    if (n.ok) paint(n.data);
  }, 5000);
}

async function datamap(body) {
  const r = await api.datamap();
  const p = problem(r, "the data map");
  if (p) {
    add(body, p);
    const cs = await api.contracts();
    if (!cs.ok) return;
    add(body, h("h2", null, "Declared in contracts"), table(["Device", "Data", "Class", "Integration", "Destination"],
      api.list(cs.data, "contracts").flatMap((c) => (c.flows || []).flatMap((f) => (f.devices || []).flatMap((d) => (f.fields || []).map((fl) =>
        h("tr", null, h("td", null, d), h("td", null, fieldName(fl.path)), h("td", null, fl.class), h("td", null, c.id), h("td", null, f.destination))))))));
    return;
  }
  const rows = api.list(r.data, "flows");
  add(body, h("p.mut", null, "Declared: what the contracts allow. Observed: what actually left, and what was attempted and denied."),
    table(["Device", "Class", "Integration", "Destination", "Declared", "Observed", "Denied"], rows.map((x) =>
      h("tr", null, h("td", null, x.device), h("td", null, x.class), h("td", null, x.integration), h("td", null, x.destination || "—"),
        h("td", null, x.declared ? "yes" : h("span.bad", null, "no")), h("td", null, String(x.observed ?? 0)), h("td", null, h("span", { class: x.denied ? "bad" : "" }, String(x.denied ?? 0)))))));
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
  add(body, h("h2", null, "Pending review"));
  const pp = problem(ps, "contract review");
  if (pp) add(body, pp);
  else {
    const pending = api.list(ps.data, "pending");
    if (!pending.length) add(body, h("p", null, "Nothing waits for review."));
    for (const p of pending) {
      const out = h("p", { role: "status" });
      const act = (fn, done) => async () => {
        const r = await fn(p.id);
        out.textContent = r.ok ? done : `Refused: ${r.error}`;
        if (r.ok) setTimeout(route, 800);
      };
      add(body, h("section.card", { "data-pending": p.id }, h("h3", null, `${p.id}: ${p.from || "new"} → ${p.version}`),
        h("ul", null, (p.diff || []).map((d) => h("li", null, typeof d === "string" ? d : JSON.stringify(d)))),
        h("div.row", null, h("button", { type: "button", onclick: act(api.approve, "Approved.") }, "Approve"), h("button.danger", { type: "button", onclick: act(api.reject, "Rejected.") }, "Reject")), out));
    }
  }
  add(body, h("h2", null, "In force"));
  const cp = problem(cs, "contracts");
  if (cp) return add(body, cp);
  const states = {};
  for (const i of api.list(is.data, "integrations")) states[i.id] = i.state;
  for (const c of api.list(cs.data, "contracts")) {
    const out = h("p", { role: "status" });
    const q = states[c.id] === "quarantined";
    const toggle = async () => {
      const r = await (q ? api.release : api.quarantine)(c.id);
      out.textContent = r.ok ? (q ? "Released." : "Quarantined: nothing leaves for this integration.") : `Refused: ${r.error}`;
      if (r.ok) setTimeout(route, 800);
    };
    add(body, h("section.card", { "data-contract": c.id }, h("h3", null, `${c.vendor || c.id} — version ${c.version}`), dl([["Purpose", c.purpose || "—"], ["Effective", c.effective || "—"], ["Contact", c.contact || "—"], ["State", states[c.id] || "—"]]),
      is.ok ? h("button.sec", { type: "button", onclick: toggle }, q ? "Release" : "Quarantine") : null, out));
  }
}

async function consent(body) {
  const [gs, cs] = await Promise.all([api.consent(), api.contracts()]);
  add(body, h("p", null, "Withdrawing consent takes effect at once: the integration's key for that data is destroyed, messages already waiting are purged, and later messages leave without that data. Giving it again applies only to new messages."));
  const p = problem(gs, "consent choices");
  if (p) return add(body, p);
  const grants = api.list(gs.data, "consent");
  const rows = grants.map((g) => {
    const out = h("span", { role: "status" });
    const box = h("input", { type: "checkbox", checked: !!g.grant, "aria-label": `${g.integration}: ${g.class} data` });
    box.addEventListener("change", async () => {
      if (!box.checked && !confirm(`Withdraw consent for ${g.class} data to ${g.integration}? Its key is destroyed and queued messages are purged.`)) return (box.checked = true);
      box.disabled = true;
      const r = await api.setConsent(g.integration, g.class, box.checked);
      box.disabled = false;
      if (!r.ok) box.checked = !box.checked;
      out.textContent = r.ok ? (box.checked ? "Given." : "Withdrawn: key destroyed, queue purged.") : `Refused: ${r.error}`;
    });
    return h("tr", null, h("td", null, g.integration), h("td", null, g.class), h("td", null, h("label", null, box)), h("td", null, g.time ? when(g.time) + (g.by ? " by " + g.by : "") : "—", " ", out));
  });
  add(body, table(["Integration", "Data class", "Consent", "Last change"], rows));
  if (!cs.ok) return;
}

async function incidents(body) {
  const r = await api.incidents();
  const p = problem(r, "incidents");
  if (p) return add(body, p);
  const xs = api.list(r.data, "incidents");
  add(body, xs.length ? table(["Opened", "State", "Summary"], xs.map((x) => h("tr", null, h("td", null, when(x.opened)), h("td", null, x.state), h("td", null, x.summary)))) : h("p", null, "No incidents."));
}

async function audit(body) {
  const [s, cp] = await Promise.all([api.status(), api.checkpoint()]);
  const st = s.ok ? s.data.audit || {} : {};
  const out = h("p", { role: "status", "aria-live": "polite" });
  const download = async () => {
    out.textContent = "Exporting…";
    const r = await api.auditExport();
    if (!r.ok) return (out.textContent = `Export refused: ${r.error}`);
    const a = h("a", { href: URL.createObjectURL(new Blob([r.data], { type: "application/x-ndjson" })), download: `portcullis-audit-${new Date().toISOString().slice(0, 19).replace(/:/g, "")}.jsonl` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    out.textContent = `Exported ${r.data.split("\n").filter(Boolean).length} lines. Check it offline: npm run audit:verify -- <file> --key audit-verification.key`;
  };
  const admin = (fn, done) => async () => {
    const r = await fn();
    out.textContent = r.ok ? done : r.absent ? "This gateway does not offer that over HTTPS yet." : `Refused: ${r.error}`;
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
      h("button.sec", { type: "button", onclick: admin(st.hold ? api.unhold : api.hold, st.hold ? "Hold lifted." : "Hold placed.") }, st.hold ? "Lift hold" : "Place hold")),
    out,
  );
}

async function accounts(body) {
  const r = await api.accounts();
  add(body, h("p", null, me ? `You are signed in as ${me.account} (${me.role}).` : ""));
  const p = problem(r, "account management");
  if (p) return add(body, p);
  add(body, table(["Account", "Role", "MFA", "Locked"], api.list(r.data, "accounts").map((a) => h("tr", null, h("td", null, a.account), h("td", null, a.role), h("td", null, a.mfa ? "yes" : "no"), h("td", null, a.locked ? "yes" : "no")))));
}

async function devices(body) {
  const [r, s] = await Promise.all([api.devices(), api.status()]);
  const p = problem(r, "device management");
  if (p) {
    add(body, p);
    if (s.ok) add(body, h("p", null, `${s.data.devicesConnected} of ${s.data.devicesConfigured} configured devices are connected.`));
    return;
  }
  add(body, table(["Device", "Groups", "Connected", "State"], api.list(r.data, "devices").map((d) => h("tr", null, h("td", null, d.id), h("td", null, (d.groups || []).join(", ")), h("td", null, d.connected ? "yes" : "no"), h("td", null, d.disabled ? "disabled" : "enabled")))));
}

addEventListener("hashchange", route);
addEventListener("DOMContentLoaded", async () => {
  // A cookie session from an earlier visit, if the gateway has sessions.
  const m = await api.me();
  if (m.ok && m.data && m.data.account) {
    await signIn({ ok: true, data: m.data });
  } else route();
});
