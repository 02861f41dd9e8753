/** MQTT topic filter matching and validation for the policy engine (MQTT 3.1.1 §4.7, MQTT 5 §4.7). */

/**
 * True when `topic` (a topic name, no wildcards) matches `filter`. `+` matches exactly one level,
 * `#` (last level only) matches the parent and any number of levels below it. Topics starting with
 * `$` are never matched by a filter whose first level is a wildcard (§4.7.2).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 0x24 && (filter[0] === "+" || filter[0] === "#")) return false;
  let f = 0;
  let t = 0;
  for (;;) {
    const fEnd = indexOrEnd(filter, f);
    const level = filter.slice(f, fEnd);
    if (level === "#") return true;
    if (t > topic.length) return false;
    const tEnd = indexOrEnd(topic, t);
    if (level !== "+" && level !== topic.slice(t, tEnd)) return false;
    if (fEnd === filter.length) return tEnd === topic.length;
    f = fEnd + 1;
    t = tEnd + 1;
    // "a/#" matches "a": the filter has only "#" left and the topic is exhausted.
    if (t > topic.length) return filter.slice(f) === "#";
  }
}

function indexOrEnd(s: string, from: number): number {
  const i = s.indexOf("/", from);
  return i < 0 ? s.length : i;
}

/** Why a topic filter is not valid, or undefined when it is (§4.7.1, §4.7.3). */
export function filterProblem(filter: string, maxLength = 256): string | undefined {
  if (filter.length === 0) return "topic filter is empty";
  if (filter.length > maxLength) return `topic filter longer than ${maxLength} characters`;
  if (filter.indexOf("\u0000") >= 0) return "topic filter contains NUL";
  const levels = filter.split("/");
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i] as string;
    if (l.indexOf("#") >= 0 && (l !== "#" || i !== levels.length - 1)) return `"#" must be a whole last level`;
    if (l.indexOf("+") >= 0 && l !== "+") return `"+" must be a whole level`;
  }
  return undefined;
}

/** True when `topic` is a valid topic name to publish to: non-empty, no wildcards, no NUL. */
export function isTopicName(topic: string): boolean {
  return topic.length > 0 && !/[+#\u0000]/.test(topic);
}
