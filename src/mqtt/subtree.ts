/**
 * The broker's subscription store: a topic tree (trie) keyed by topic level, so matching one topic
 * costs about its number of levels × the wildcard branches on the way, not the number of
 * subscriptions (MQTT 3.1.1 §4.7; bench: `npm run bench -- local`).
 *
 * Each node holds the subscribers whose filter ends there, with their granted QoS. Children `+` and
 * `#` are ordinary keys (a literal level can never be `+` or `#`: topic names carry no wildcards).
 * A filter whose first level is `+` or `#` does not match a topic starting with `$` (§4.7.2).
 */

interface Node<S> {
  /** Child nodes by level ("+" and "#" included); created on first use. */
  children: Map<string, Node<S>> | undefined;
  /** Subscribers whose filter ends at this node → granted QoS. */
  subs: Map<S, number> | undefined;
}

function node<S>(): Node<S> {
  return { children: undefined, subs: undefined };
}

export class SubscriptionTree<S> {
  readonly #root: Node<S> = node();
  #size = 0;

  /** Subscriptions held (subscriber × filter pairs). */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds or replaces `sub`'s subscription to `filter` (a valid topic filter, §4.7.1) at `qos`.
   * Returns true when it is new (not a replacement, §3.8.4).
   */
  add(filter: string, sub: S, qos: number): boolean {
    let n = this.#root;
    let start = 0;
    for (;;) {
      let end = filter.indexOf("/", start);
      if (end < 0) end = filter.length;
      const level = filter.substring(start, end);
      n.children ??= new Map();
      let c = n.children.get(level);
      if (c === undefined) {
        c = node();
        n.children.set(level, c);
      }
      n = c;
      if (end === filter.length) break;
      start = end + 1;
    }
    n.subs ??= new Map();
    const fresh = !n.subs.has(sub);
    n.subs.set(sub, qos);
    if (fresh) this.#size++;
    return fresh;
  }

  /** Removes `sub`'s subscription to `filter`; empty branches are pruned. Returns whether it existed. */
  remove(filter: string, sub: S): boolean {
    const path: Node<S>[] = [this.#root];
    const keys: string[] = [];
    let n: Node<S> | undefined = this.#root;
    let start = 0;
    for (;;) {
      let end = filter.indexOf("/", start);
      if (end < 0) end = filter.length;
      const level = filter.substring(start, end);
      n = n.children?.get(level);
      if (n === undefined) return false;
      path.push(n);
      keys.push(level);
      if (end === filter.length) break;
      start = end + 1;
    }
    if (n.subs === undefined || !n.subs.delete(sub)) return false;
    this.#size--;
    if (n.subs.size === 0) n.subs = undefined;
    // Prune nodes left with neither subscribers nor children, bottom up.
    for (let i = path.length - 1; i > 0; i--) {
      const x = path[i]!;
      if (x.subs !== undefined || (x.children !== undefined && x.children.size > 0)) break;
      path[i - 1]!.children!.delete(keys[i - 1]!);
    }
    return true;
  }

  /**
   * Calls `visit(sub, qos)` once per subscription matching `topic` (a valid topic name). A subscriber
   * with several matching filters is visited once per filter; the caller keeps the highest QoS (§3.3.5).
   */
  match(topic: string, visit: (sub: S, qos: number) => void): void {
    const root = this.#root.children;
    if (root === undefined) return; // nobody subscribes: the usual case costs nothing
    const levels = topic.split("/");
    const dollar = topic.charCodeAt(0) === 0x24;
    if (!dollar) {
      const h = root.get("#");
      if (h?.subs !== undefined) for (const [s, q] of h.subs) visit(s, q);
      const p = root.get("+");
      if (p !== undefined) walk(p, levels, 1, visit);
    }
    const l = root.get(levels[0]!);
    if (l !== undefined) walk(l, levels, 1, visit);
  }

  /** Whether any subscription at all is held (the broker skips routing when not). */
  get empty(): boolean {
    return this.#size === 0;
  }
}

function walk<S>(n: Node<S>, levels: readonly string[], i: number, visit: (sub: S, qos: number) => void): void {
  if (i === levels.length) {
    if (n.subs !== undefined) for (const [s, q] of n.subs) visit(s, q);
    // "a/#" matches "a" too: `#` includes the parent level (§4.7.1.2).
    const h = n.children?.get("#");
    if (h?.subs !== undefined) for (const [s, q] of h.subs) visit(s, q);
    return;
  }
  const c = n.children;
  if (c === undefined) return;
  const h = c.get("#");
  if (h?.subs !== undefined) for (const [s, q] of h.subs) visit(s, q);
  const p = c.get("+");
  if (p !== undefined) walk(p, levels, i + 1, visit);
  const l = c.get(levels[i]!);
  if (l !== undefined) walk(l, levels, i + 1, visit);
}
