/**
 * Who may message whom (docs/behaviour.md §3): the config rules first, then
 * the user's hook. The hook may answer synchronously, with a promise, or by
 * throwing; all three come out of here as one kind of answer, so the router
 * never has to care.
 */
import type { Client } from 'aedes'
import { WarnLimiter, type Logger } from './log.js'
import type { Owners } from './owners.js'
import { NEEDS_OWNER, Rules, type RuleConfig, type RuleSubject } from './rules.js'

/** What a P2P authorization hook is asked about. */
export interface P2PMessage {
  /** the publishing client; null for messages published by server code */
  readonly sender: Client | null
  /** the sender's client id; '' for server code */
  readonly senderId: string
  /** the username the sender logged in with, if any */
  readonly username: string | undefined
  /** the client id the message is for */
  readonly target: string
  /** the topic the target would receive */
  readonly topic: string
  readonly qos: 0 | 1 | 2
  readonly payload: Buffer
}

/**
 * Decides whether `sender` may message `target`. Anything but `true` (or a
 * promise of `true`) drops the message as refused; so does a throw or a
 * rejection. A synchronous answer keeps the hot path cheap.
 */
export type AuthorizeP2P = (message: P2PMessage) => boolean | Promise<boolean>

/** Why a message was refused; null when it was not. */
export type Refusal = 'refused by rule' | 'refused by authorize hook' | null

export class Authorization {
  #rules: Rules
  readonly #hook: AuthorizeP2P | undefined
  readonly #log: Logger
  // Aedes does not keep the CONNECT username on the client; rules need it, and the target's
  readonly #owners: Owners
  // a store that is away would otherwise log one line per message
  readonly #warnings: WarnLimiter

  constructor (rules: readonly RuleConfig[], hook: AuthorizeP2P | undefined, owners: Owners, log: Logger) {
    this.#rules = new Rules(rules)
    this.#hook = hook
    this.#owners = owners
    this.#log = log
    this.#warnings = new WarnLimiter(log)
  }

  /** Takes effect for the next message. */
  set rules (rules: readonly RuleConfig[]) {
    this.#rules = new Rules(rules)
  }

  /** Never throws, and a promise it returns never rejects. */
  check (sender: Client | null, target: string, topic: string, qos: 0 | 1 | 2, payload: Buffer): Refusal | Promise<Refusal> {
    const hook = this.#hook
    if (this.#rules.size === 0 && hook === undefined) return null
    const senderId = sender?.id ?? ''
    const username = sender === null ? undefined : this.#owners.usernameOf(sender)
    if (this.#rules.size > 0) {
      const rules = this.#rules
      const subject: RuleSubject = { senderId, username, target }
      const allowed = rules.allows(subject)
      if (allowed === NEEDS_OWNER) return this.#withOwner(rules, subject, sender, topic, qos, payload)
      if (!allowed) return 'refused by rule'
    }
    return this.#ask(sender, senderId, username, target, topic, qos, payload)
  }

  /** The rules again, once the target's owner is known (it may be read from the store). */
  async #withOwner (rules: Rules, subject: RuleSubject, sender: Client | null, topic: string, qos: 0 | 1 | 2, payload: Buffer): Promise<Refusal> {
    try {
      subject.targetUser = await this.#owners.owner(subject.target)
    } catch (err) {
      this.#warnings.warn({ err: (err as Error).message, target: subject.target }, 'the owner of a P2P target could not be read; message refused')
      return 'refused by rule'
    }
    if (rules.allows(subject) !== true) return 'refused by rule'
    return this.#ask(sender, subject.senderId, subject.username, subject.target, topic, qos, payload)
  }

  #ask (sender: Client | null, senderId: string, username: string | undefined, target: string, topic: string, qos: 0 | 1 | 2, payload: Buffer): Refusal | Promise<Refusal> {
    const hook = this.#hook
    if (hook === undefined) return null
    let verdict: boolean | Promise<boolean>
    try {
      verdict = hook({ sender, senderId, username, target, topic, qos, payload })
    } catch (err) {
      this.#hookFailed(err, senderId, target)
      return 'refused by authorize hook'
    }
    // anything but true refuses, including a hook that forgot to return
    if (!(verdict instanceof Promise)) return verdict === true ? null : 'refused by authorize hook'
    return verdict.then((allowed) => allowed === true ? null : 'refused by authorize hook', (err: unknown) => {
      this.#hookFailed(err, senderId, target)
      return 'refused by authorize hook'
    })
  }

  #hookFailed (err: unknown, senderId: string, target: string): void {
    this.#log.error({ err, clientId: senderId, target }, 'P2P authorize hook failed; message refused')
  }
}
