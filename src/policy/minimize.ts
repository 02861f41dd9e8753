/** Exact field minimization: only contracted JSON Pointer paths leave, with the same values or pseudonyms. */
import type { DataClass } from "./contract.js";

/** One contracted field, compiled. */
export interface FieldRule {
  readonly path: string;
  readonly tokens: readonly string[];
  readonly class: DataClass;
  readonly pseudonymize: boolean;
}

export interface Minimized {
  /** The outgoing document (null-prototype objects), or undefined when nothing is kept. */
  readonly out: Record<string, unknown> | undefined;
  /** Leaves of the input not in the output (a pseudonymized scalar counts as kept). */
  readonly dropped: number;
  readonly pseudonymized: number;
  /** Classes of the kept fields. */
  readonly classes: readonly DataClass[];
  /** The first class whose present fields were withheld because `permit` refused it. */
  readonly refused: DataClass | undefined;
}

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Counts leaves: a scalar, an empty object or an empty array is one leaf. Iterative: deep input cannot exhaust the stack. */
export function countLeaves(v: unknown): number {
  let n = 0;
  const stack: unknown[] = [v];
  while (stack.length) {
    const x = stack.pop();
    if (typeof x !== "object" || x === null) {
      n++;
      continue;
    }
    const vals = Array.isArray(x) ? x : Object.values(x);
    if (vals.length === 0) n++;
    else for (const y of vals) stack.push(y);
  }
  return n;
}

/**
 * Copies the contracted fields of `doc` into a fresh document at the same paths. Pointers address
 * object members only: a path that meets an array or a scalar before its end is absent. Fields whose
 * class `permit` refuses are withheld. A pseudonymized field must hold a scalar (its JSON text is
 * what `pseudonym` hashes); an object or array there is dropped — fail closed.
 */
export function minimize(
  doc: unknown,
  fields: readonly FieldRule[],
  permit: (c: DataClass) => boolean,
  pseudonym: (jsonText: string) => string,
): Minimized {
  let out: Record<string, unknown> | undefined;
  let kept = 0;
  let pseudonymized = 0;
  let refused: DataClass | undefined;
  const classes: DataClass[] = [];
  for (const f of fields) {
    let cur: unknown = doc;
    let found = true;
    for (const t of f.tokens) {
      if (isObject(cur) && has(cur, t)) cur = cur[t];
      else {
        found = false;
        break;
      }
    }
    if (!found) continue;
    if (!permit(f.class)) {
      refused ??= f.class;
      continue;
    }
    let value = cur;
    if (f.pseudonymize) {
      if (typeof value === "object" && value !== null) continue;
      value = pseudonym(JSON.stringify(value));
      pseudonymized++;
      kept++;
    } else kept += countLeaves(value);
    out ??= Object.create(null) as Record<string, unknown>;
    let node = out;
    for (let i = 0; i < f.tokens.length - 1; i++) {
      const t = f.tokens[i] as string;
      if (!has(node, t)) node[t] = Object.create(null);
      node = node[t] as Record<string, unknown>;
    }
    node[f.tokens[f.tokens.length - 1] as string] = value;
    if (classes.indexOf(f.class) < 0) classes.push(f.class);
  }
  return { out, dropped: countLeaves(doc) - kept, pseudonymized, classes, refused };
}

/**
 * Counts the leaves of `doc` that none of `fieldLists` declares at all (whatever the consent): a
 * leaf is declared when some field's path is it or one of its ancestors. A device sending such
 * fields is over-collecting (the `undeclared-fields` alarm); a declared field withheld for want of
 * consent is not counted here. Walks only as deep as the declared paths go.
 */
export function countUndeclared(doc: unknown, fieldLists: readonly (readonly FieldRule[])[]): number {
  interface Node { end: boolean; kids: Map<string, Node> }
  const root: Node = { end: false, kids: new Map() };
  for (const fields of fieldLists) {
    for (const f of fields) {
      let n = root;
      for (const t of f.tokens) {
        let k = n.kids.get(t);
        if (!k) n.kids.set(t, (k = { end: false, kids: new Map() }));
        n = k;
      }
      n.end = true;
    }
  }
  let undeclared = 0;
  const stack: { v: unknown; n: Node }[] = [{ v: doc, n: root }];
  while (stack.length) {
    const { v, n } = stack.pop() as { v: unknown; n: Node };
    if (n.end) continue;
    if (!isObject(v) || Object.keys(v).length === 0) {
      undeclared += countLeaves(v);
      continue;
    }
    for (const k of Object.keys(v)) {
      const kid = n.kids.get(k);
      if (kid) stack.push({ v: v[k], n: kid });
      else undeclared += countLeaves(v[k]);
    }
  }
  return undeclared;
}
