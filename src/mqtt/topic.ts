/** Topic names, topic filters and matching (MQTT 3.1.1 §4.7), without splitting strings on the hot path. */

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;

/** A topic name a PUBLISH may carry: at least one character, no wildcard (§4.7.1, §4.7.3). */
export function isValidTopicName(topic: string): boolean {
  // indexOf rather than a charCodeAt loop: XS boxes the string for every method call.
  return topic.length > 0 && topic.indexOf("+") < 0 && topic.indexOf("#") < 0 && topic.indexOf("\u0000") < 0;
}

/**
 * {@link isValidTopicName} on the UTF-8 bytes `buf[start, end)`, for the decoder (no string work).
 * Exact, because bytes of a multi-byte UTF-8 sequence are never ASCII.
 */
export function isValidTopicNameBytes(buf: Uint8Array, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === PLUS || c === HASH) return false;
  }
  return true;
}

/** {@link isValidTopicFilter} on the UTF-8 bytes `buf[start, end)`. */
export function isValidTopicFilterBytes(buf: Uint8Array, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === PLUS || c === HASH) {
      const alone = (i === start || buf[i - 1] === SLASH) && (i + 1 === end || buf[i + 1] === SLASH);
      if (!alone || (c === HASH && i + 1 !== end)) return false;
    }
  }
  return true;
}

/**
 * A topic filter a SUBSCRIBE may carry (§4.7.1): at least one character; `+` fills a whole level;
 * `#` fills a whole level and is the last one.
 */
export function isValidTopicFilter(filter: string): boolean {
  const n = filter.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === 0) return false;
    if (c === PLUS || c === HASH) {
      const alone = (i === 0 || filter.charCodeAt(i - 1) === SLASH) && (i + 1 === n || filter.charCodeAt(i + 1) === SLASH);
      if (!alone) return false;
      if (c === HASH && i + 1 !== n) return false;
    }
  }
  return true;
}

/**
 * Whether `topic` (a valid topic name) matches `filter` (a valid topic filter), per §4.7: `+` matches
 * exactly one level (possibly empty), `#` the parent level and any number of child levels, and a
 * filter starting with a wildcard does not match a topic starting with `$` (§4.7.2).
 */
export function topicMatches(filter: string, topic: string): boolean {
  const fl = filter.length;
  const tl = topic.length;
  const first = filter.charCodeAt(0);
  if (topic.charCodeAt(0) === DOLLAR && (first === PLUS || first === HASH)) return false;
  if (filter.indexOf("+") < 0 && filter.indexOf("#") < 0) return filter === topic;
  let f = 0;
  let t = 0; // t > tl: the topic has no levels left
  for (;;) {
    let fEnd = filter.indexOf("/", f);
    if (fEnd < 0) fEnd = fl;
    const fLen = fEnd - f;
    const fc = filter.charCodeAt(f);
    if (fLen === 1 && fc === HASH) return true;
    if (t > tl) return false;
    let tEnd = topic.indexOf("/", t);
    if (tEnd < 0) tEnd = tl;
    if (!(fLen === 1 && fc === PLUS)) {
      if (tEnd - t !== fLen || filter.substring(f, fEnd) !== topic.substring(t, tEnd)) return false;
    }
    f = fEnd + 1;
    t = tEnd + 1;
    if (f > fl) return t > tl;
  }
}
