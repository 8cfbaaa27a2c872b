/**
 * Config rules deciding who may message whom (docs/behaviour.md §3): an ordered list of
 * allow/deny rules over the sender's client id and username and the target
 * client id; the first rule that matches decides, and no match allows.
 *
 * Patterns: `*` matches any run of characters (also none); `${clientid}` and
 * `${username}` stand for the sender's, so `target = "${username}-*"` means
 * "a target whose id starts with the sender's username and a dash".
 */
import { ConfigError } from './errors.js'
import { isTable, rejectUnknownKeys } from './table.js'

export interface RuleConfig {
  action: 'allow' | 'deny'
  sender?: string
  username?: string
  target?: string
}

export interface RuleSubject {
  senderId: string
  username: string | undefined
  target: string
}

const RULE_KEYS = ['action', 'sender', 'username', 'target']
const FIELDS = ['sender', 'username', 'target'] as const
const PLACEHOLDER = /\$\{(clientid|username)\}/g

// A pattern cut at each `*`; placeholders are filled in at match time.
interface Pattern {
  parts: string[]
  placeholders: boolean
}

interface CompiledRule {
  allow: boolean
  sender: Pattern | undefined
  username: Pattern | undefined
  target: Pattern | undefined
}

export class Rules {
  readonly #rules: CompiledRule[]

  constructor (rules: readonly RuleConfig[]) {
    this.#rules = rules.map((rule) => ({
      allow: rule.action === 'allow',
      sender: compile(rule.sender),
      username: compile(rule.username),
      target: compile(rule.target)
    }))
  }

  get size (): number { return this.#rules.length }

  /** true when the first matching rule allows, or none matches. */
  allows (subject: RuleSubject): boolean {
    for (const rule of this.#rules) {
      if (matches(rule.sender, subject.senderId, subject) &&
          matches(rule.username, subject.username, subject) &&
          matches(rule.target, subject.target, subject)) {
        return rule.allow
      }
    }
    return true
  }
}

/** Checks `[[rules]]` from a config file or object. */
export function ruleConfigs (value: unknown): RuleConfig[] {
  if (!Array.isArray(value)) throw new ConfigError('rules must be an array of tables ([[rules]])', 'rules')
  return value.map((entry: unknown, i) => {
    const where = `rules[${i}]`
    if (!isTable(entry)) throw new ConfigError(`${where} must be a table`, where)
    rejectUnknownKeys(entry, RULE_KEYS, where, where)
    if (entry.action !== 'allow' && entry.action !== 'deny') {
      throw new ConfigError(`${where}.action must be "allow" or "deny" (got ${JSON.stringify(entry.action)})`, `${where}.action`)
    }
    const rule: RuleConfig = { action: entry.action }
    for (const field of FIELDS) {
      const pattern = entry[field]
      if (pattern === undefined) continue
      if (typeof pattern !== 'string') throw new ConfigError(`${where}.${field} must be a string pattern`, `${where}.${field}`)
      const unknown = pattern.replace(PLACEHOLDER, '').match(/\$\{[^}]*\}/)
      if (unknown !== null) throw new ConfigError(`${where}.${field}: unknown placeholder ${unknown[0]} (use \${clientid} or \${username})`, `${where}.${field}`)
      rule[field] = pattern
    }
    return rule
  })
}

function compile (pattern: string | undefined): Pattern | undefined {
  if (pattern === undefined) return undefined
  return { parts: pattern.split('*'), placeholders: pattern.includes('${') }
}

function matches (pattern: Pattern | undefined, value: string | undefined, subject: RuleSubject): boolean {
  if (pattern === undefined) return true
  let parts = pattern.parts
  if (pattern.placeholders) {
    const filled = fill(parts, subject)
    if (filled === null) return false
    parts = filled
  }
  return glob(parts, value ?? '')
}

// A rule naming the sender's username cannot match a sender that has none.
function fill (parts: string[], subject: RuleSubject): string[] | null {
  let missing = false
  const filled = parts.map((part) => part.replace(PLACEHOLDER, (_, name: string) => {
    if (name === 'clientid') return subject.senderId
    if (subject.username === undefined) missing = true
    return subject.username ?? ''
  }))
  return missing ? null : filled
}

function glob (parts: string[], value: string): boolean {
  const first = parts[0] ?? ''
  if (parts.length === 1) return value === first
  if (!value.startsWith(first)) return false
  const last = parts[parts.length - 1] ?? ''
  if (value.length - last.length < first.length || !value.endsWith(last)) return false
  let at = first.length
  const end = value.length - last.length
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i] ?? ''
    const found = value.indexOf(part, at)
    if (found === -1 || found + part.length > end) return false
    at = found + part.length
  }
  return true
}
