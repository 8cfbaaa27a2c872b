/**
 * MQTT topic filters as the topic ACL compares them: a topic against a
 * filter, and a filter against a filter (covers, overlaps). Filters come
 * split into levels; `$` topics are reached by no leading wildcard
 * (MQTT-4.7.2-1).
 */

/** '$', which starts the broker's own topics: no wildcard reaches them (MQTT-4.7.2-1) */
export const DOLLAR = 36

/**
 * Whether a topic name (no wildcards) matches a filter, by MQTT's rules: `+`
 * is one level, `#` the rest including none, and a filter that starts with
 * a wildcard does not match a topic that starts with `$`. The topic is
 * scanned, not split: this runs for every PUBLISH while an ACL is on.
 */
export function matchesTopic (filter: readonly string[], topic: string): boolean {
  let at = 0
  for (let i = 0; i < filter.length; i++) {
    const level = filter[i] ?? ''
    if (i === 0 && (level === '#' || level === '+') && topic.charCodeAt(0) === DOLLAR) return false
    if (level === '#') return true
    // the topic has no level left
    if (at > topic.length) return false
    let end = topic.indexOf('/', at)
    if (end === -1) end = topic.length
    if (level !== '+' && (end - at !== level.length || !topic.startsWith(level, at))) return false
    at = end + 1
  }
  return at > topic.length
}

/** Whether every topic filter `f` matches, filter `p` matches too (what an allow entry needs). */
export function covers (p: readonly string[], f: readonly string[]): boolean {
  if (startsWithWildcard(p) && isDollar(f[0])) return false
  for (let i = 0; i < p.length; i++) {
    const level = p[i]
    if (level === '#') return true
    const other = f[i]
    if (other === undefined || other === '#') return false
    if (level !== '+' && level !== other) return false
  }
  return f.length === p.length
}

/** Whether some topic matches both filters (what a deny entry needs). */
export function overlaps (p: readonly string[], f: readonly string[]): boolean {
  if ((startsWithWildcard(p) && isDollar(f[0])) || (startsWithWildcard(f) && isDollar(p[0]))) return false
  const n = Math.max(p.length, f.length)
  for (let i = 0; i < n; i++) {
    const a = p[i]
    const b = f[i]
    if (a === '#' || b === '#') return true
    if (a === undefined || b === undefined) return false
    if (a !== '+' && b !== '+' && a !== b) return false
  }
  return true
}

/** Whether split levels form an MQTT filter: `+` and `#` only as whole levels, `#` only last. */
export function isFilter (levels: readonly string[]): boolean {
  return levels.every((level, i) => level === '#' ? i === levels.length - 1 : level === '+' || !/[+#]/.test(level))
}

function startsWithWildcard (levels: readonly string[]): boolean {
  return levels[0] === '#' || levels[0] === '+'
}

function isDollar (level: string | undefined): boolean {
  return level?.charCodeAt(0) === DOLLAR
}
