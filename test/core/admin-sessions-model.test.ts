/**
 * Model-based test (fc.commands) of the admin session table (src/admin/sessions.ts): over random
 * logins, uses, logouts, logout-all and clock moves, the table answers exactly as a plain model of
 * "live = used within idleMs and younger than maxMs, at most max, least recently used evicted first",
 * and never holds more than `max`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MAX_ACCOUNTS, AccountStore } from "../../src/admin/accounts.js";
import { SessionTable } from "../../src/admin/sessions.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";

const IDLE = 1000;
const MAX_AGE = 5000;
const MAX = 4;
const ACCOUNTS = ["a", "b", "c"];

interface ModelSession {
  account: string;
  created: number;
  used: number;
}
interface Model {
  now: number;
  live: Map<string, ModelSession>;
  tokens: string[];
}
interface Real {
  table: SessionTable;
  clock: FakeClock;
}

function sweep(m: Model): void {
  for (const [t, s] of m.live) if (m.now - s.used >= IDLE || m.now - s.created >= MAX_AGE) m.live.delete(t);
}

class Login implements fc.Command<Model, Real> {
  readonly account: string;
  constructor(account: string) {
    this.account = account;
  }
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    sweep(m);
    while (m.live.size >= MAX) {
      let oldest = "";
      let at = Infinity;
      for (const [t, s] of m.live) if (s.used < at) [oldest, at] = [t, s.used];
      m.live.delete(oldest);
    }
    const { token } = r.table.create(this.account, "owner");
    m.live.set(token, { account: this.account, created: m.now, used: m.now });
    m.tokens.push(token);
    assert.ok(r.table.size <= MAX);
  }
  toString = (): string => `login(${this.account})`;
}

class Use implements fc.Command<Model, Real> {
  readonly pick: number;
  constructor(pick: number) {
    this.pick = pick;
  }
  check = (m: Readonly<Model>): boolean => m.tokens.length > 0;
  run(m: Model, r: Real): void {
    sweep(m);
    const token = m.tokens[this.pick % m.tokens.length]!;
    const want = m.live.get(token);
    const got = r.table.find(token);
    assert.equal(got?.account, want?.account, `find ${this.pick}`);
    if (want) want.used = m.now;
  }
  toString = (): string => `use(${this.pick})`;
}

class Logout implements fc.Command<Model, Real> {
  readonly pick: number;
  constructor(pick: number) {
    this.pick = pick;
  }
  check = (m: Readonly<Model>): boolean => m.tokens.length > 0;
  run(m: Model, r: Real): void {
    sweep(m);
    const token = m.tokens[this.pick % m.tokens.length]!;
    assert.equal(r.table.end(token), m.live.delete(token));
  }
  toString = (): string => `logout(${this.pick})`;
}

class LogoutAll implements fc.Command<Model, Real> {
  readonly account: string;
  constructor(account: string) {
    this.account = account;
  }
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    sweep(m);
    let n = 0;
    for (const [t, s] of m.live) if (s.account === this.account) (m.live.delete(t), n++);
    assert.equal(r.table.endAll(this.account), n);
  }
  toString = (): string => `logoutAll(${this.account})`;
}

class Tick implements fc.Command<Model, Real> {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    m.now += this.ms;
    r.clock.tick(this.ms);
    sweep(m);
    assert.equal(r.table.size, m.live.size);
  }
  toString = (): string => `tick(${this.ms})`;
}

describe("admin session table model", () => {
  it("agrees with the model over random command sequences", () => {
    const account = fc.constantFrom(...ACCOUNTS);
    const commands = [
      account.map((a) => new Login(a)),
      fc.nat(50).map((p) => new Use(p)),
      fc.nat(50).map((p) => new Logout(p)),
      account.map((a) => new LogoutAll(a)),
      fc.oneof(fc.constantFrom(1, IDLE - 1, IDLE, IDLE + 1, MAX_AGE), fc.integer({ min: 0, max: 1500 })).map((ms) => new Tick(ms)),
    ];
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 60 }), (cmds) => {
        const clock = new FakeClock();
        const random = seededRandom("sessions");
        const table = new SessionTable(nobleCrypto(random), random, clock, { idleMs: IDLE, maxMs: MAX_AGE, max: MAX });
        fc.modelRun(() => ({ model: { now: 0, live: new Map(), tokens: [] }, real: { table, clock } }), cmds);
      }),
      { numRuns: 150 },
    );
  });

  it("accounts are bounded: the one past MAX_ACCOUNTS is refused, nothing stored for it", () => {
    const random = seededRandom("max");
    const keys = new MemoryKeys();
    const store = new AccountStore({ keys, crypto: nobleCrypto(random), random, iterations: 1 });
    for (let i = 0; i < MAX_ACCOUNTS; i++) store.create(`u${i}`, "auditor", "a long password");
    const before = keys.map.size;
    assert.throws(() => store.create("extra", "auditor", "a long password"), /at most/);
    assert.equal(keys.map.size, before);
    assert.equal(store.size, MAX_ACCOUNTS);
  });
});
