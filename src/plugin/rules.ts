/**
 * Config rules deciding who may message whom (docs/behaviour.md §3, §8): an
 * ordered list of allow/deny rules over the sender's client id and username,
 * the target client id and the user that owns it; the first rule that
 * matches decides, and no match allows.
 *
 * Patterns (patterns.ts): `*` matches any run of characters; `${clientid}`
 * and `${username}` stand for the sender's. `target_user = "${username}"`
 * means "a client of the sender's own user", whatever its id.
 */
import { ConfigError } from './errors.js'
import { checkPattern, Pattern } from './patterns.js'
import { arrayOfTables } from './table.js'

export interface RuleConfig {
  action: 'allow' | 'deny'
  sender?: string
  username?: string
  target?: string
  /** a pattern over the username the target client logged in with (its owner) */
  target_user?: string
}

export interface RuleSubject {
  senderId: string
  username: string | undefined
  target: string
  /** the target's owner; null when it has none, undefined while not looked up */
  targetUser?: string | null
}

/** What allows() answers when a rule needs the target's owner, and the subject does not have it yet. */
export const NEEDS_OWNER = Symbol('needs the target owner')

const RULE_KEYS = ['action', 'sender', 'username', 'target', 'target_user']
const FIELDS = ['sender', 'username', 'target', 'target_user'] as const
const PLACEHOLDERS = ['clientid', 'username']

const fill = (name: string, subject: RuleSubject): string | undefined => name === 'clientid' ? subject.senderId : subject.username

interface CompiledRule {
  allow: boolean
  sender: Pattern<RuleSubject> | undefined
  username: Pattern<RuleSubject> | undefined
  target: Pattern<RuleSubject> | undefined
  targetUser: Pattern<RuleSubject> | undefined
}

export class Rules {
  readonly #rules: CompiledRule[]
  /** some rule names the target's owner */
  readonly needsOwner: boolean

  constructor (rules: readonly RuleConfig[]) {
    const compile = (source: string | undefined): Pattern<RuleSubject> | undefined => source === undefined ? undefined : new Pattern(source, fill)
    this.#rules = rules.map((rule) => ({
      allow: rule.action === 'allow',
      sender: compile(rule.sender),
      username: compile(rule.username),
      target: compile(rule.target),
      targetUser: compile(rule.target_user)
    }))
    this.needsOwner = this.#rules.some((rule) => rule.targetUser !== undefined)
  }

  get size (): number { return this.#rules.length }

  /**
   * true when the first matching rule allows, or none matches; NEEDS_OWNER
   * when a rule to be tried names the target's owner and `subject` lacks it.
   */
  allows (subject: RuleSubject): boolean | typeof NEEDS_OWNER {
    for (const rule of this.#rules) {
      if (!(matches(rule.sender, subject.senderId, subject) &&
          matches(rule.username, subject.username, subject) &&
          matches(rule.target, subject.target, subject))) continue
      if (rule.targetUser !== undefined) {
        if (subject.targetUser === undefined) return NEEDS_OWNER
        // a target nobody owns has no user to match
        if (subject.targetUser === null || !rule.targetUser.matches(subject.targetUser, subject)) continue
      }
      return rule.allow
    }
    return true
  }
}

function matches (pattern: Pattern<RuleSubject> | undefined, value: string | undefined, subject: RuleSubject): boolean {
  return pattern === undefined || pattern.matches(value, subject)
}

/** An entry's `action`, as the rules and the topic ACL both have it. */
export function ruleAction (value: unknown, where: string): 'allow' | 'deny' {
  if (value !== 'allow' && value !== 'deny') {
    throw new ConfigError(`${where}.action must be "allow" or "deny" (got ${JSON.stringify(value)})`, `${where}.action`)
  }
  return value
}

/** Checks `[[rules]]` from a config file or object. */
export function ruleConfigs (value: unknown): RuleConfig[] {
  return arrayOfTables(value, 'rules', RULE_KEYS, (entry, where) => {
    const rule: RuleConfig = { action: ruleAction(entry.action, where) }
    for (const field of FIELDS) {
      const pattern = entry[field]
      if (pattern === undefined) continue
      rule[field] = checkPattern(pattern, PLACEHOLDERS, `${where}.${field}`)
    }
    return rule
  })
}
