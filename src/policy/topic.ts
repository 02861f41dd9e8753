/** Topic filter validation with reasons, for contract errors (MQTT 3.1.1 §4.7); matching is src/mqtt/topic.ts. */

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
