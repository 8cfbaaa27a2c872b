/**
 * The topic ACL for ordinary topics (docs/behaviour.md §8), as operators
 * know it from Mosquitto: `[[acl]]` entries, the first that matches decides,
 * and once any entry exists, no match means deny.
 */
import type { Client, PublishPacket, Subscription } from 'aedes'
import { Counter, type Registry } from 'prom-client'
import { ConfigError } from '../plugin/errors.js'
import { WarnLimiter, type Logger } from '../plugin/log.js'
import { checkPattern, Pattern } from '../plugin/patterns.js'
import { ruleAction } from '../plugin/rules.js'
import { arrayOfTables } from '../plugin/table.js'
import { covers, DOLLAR, isFilter, matchesTopic, overlaps } from './topic-filters.js'

export interface AclEntry {
  action: 'allow' | 'deny'
  /** what the entry is about: publishing, subscribing, or both */
  access: 'publish' | 'subscribe' | 'both'
  /** an MQTT topic filter; `${username}` and `${clientid}` are the client's */
  topic: string
  /** a `*` pattern over the client's username; the entry is for every user without it */
  username?: string
  /** a `*` pattern over the client id */
  clientid?: string
}

const ENTRY_KEYS = ['action', 'access', 'topic', 'username', 'clientid']
const ACCESS = ['publish', 'subscribe', 'both']
const TOPIC_PLACEHOLDERS = ['username', 'clientid']

/** Checks `[[acl]]` from the config file. */
export function aclEntries (value: unknown): AclEntry[] {
  return arrayOfTables(value, 'acl', ENTRY_KEYS, (entry, where) => {
    const { access, topic, username, clientid } = entry
    const action = ruleAction(entry.action, where)
    if (typeof access !== 'string' || !ACCESS.includes(access)) {
      throw new ConfigError(`${where}.access must be "publish", "subscribe" or "both" (got ${JSON.stringify(access)})`, `${where}.access`)
    }
    checkPattern(topic, TOPIC_PLACEHOLDERS, `${where}.topic`)
    const filter = topic as string
    if (!isFilter(filter.split('/'))) {
      throw new ConfigError(`${where}.topic must be an MQTT topic filter: '+' a whole level, '#' only the whole last one (got ${JSON.stringify(filter)})`, `${where}.topic`)
    }
    const out: AclEntry = { action, access: access as AclEntry['access'], topic: filter }
    if (username !== undefined) out.username = checkPattern(username, [], `${where}.username`)
    if (clientid !== undefined) out.clientid = checkPattern(clientid, [], `${where}.clientid`)
    return out
  })
}

interface Rule {
  allow: boolean
  publish: boolean
  subscribe: boolean
  /** the filter's levels, placeholders not yet filled in */
  levels: readonly string[]
  placeholders: boolean
  /** the filter starts with a literal `$`, not with a placeholder */
  dollar: boolean
  username: Pattern<undefined> | undefined
  clientid: Pattern<undefined> | undefined
}

type Action = 'publish' | 'subscribe'

const PLACEHOLDER = /\$\{(username|clientid)\}/g
const LEADING_PLACEHOLDER = /^\$\{(username|clientid)\}/
const SYS = '$SYS/'

/**
 * The `[[acl]]` entries as Aedes `authorizePublish` and `authorizeSubscribe`
 * hooks, swapped whole on reload (`replace`): the next PUBLISH or SUBSCRIBE
 * is judged by the new entries. Without entries it allows everything and
 * costs one length check. The hooks are the host's, so they run before the
 * plugin's and see a P2P topic as it was published (`p2p/bob/chat`).
 *
 * A refused PUBLISH fails the hook: Aedes emits `clientError` and closes the
 * connection without an answer (MQTT-3.3.5-2). A refused SUBSCRIBE is
 * granted 0x80 and the connection stays. Either is counted and logged at
 * warn, rate-limited.
 */
export class TopicAcl {
  #rules: readonly Rule[]
  readonly #usernameOf: (client: Client) => string | undefined
  readonly #warnings: WarnLimiter
  readonly #denied = { publish: 0, subscribe: 0 }

  /** `usernameOf` gives a client's verified username (undefined without `[[users]]`). */
  constructor (entries: readonly AclEntry[], usernameOf: (client: Client) => string | undefined, log: Logger) {
    this.#rules = entries.map(compile)
    this.#usernameOf = usernameOf
    this.#warnings = new WarnLimiter(log)
  }

  /** Refusals so far, by action. */
  get denied (): Readonly<Record<Action, number>> {
    return { ...this.#denied }
  }

  replace (entries: readonly AclEntry[]): void {
    this.#rules = entries.map(compile)
  }

  readonly authorizePublish = (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void => {
    const topic = packet.topic
    // Aedes's own default, which this hook takes the place of: clients never publish as the broker
    if (topic.startsWith(SYS)) {
      callback(new Error(SYS + ' topic is reserved'))
      return
    }
    if (this.#rules.length === 0) {
      callback(null)
      return
    }
    // a will Aedes publishes for a client of a broker that is gone comes without the client
    const clientId = client === null ? willClientId(packet) : client.id
    const username = client === null ? undefined : this.#usernameOf(client)
    if (this.#allows('publish', clientId, username, topic)) {
      callback(null)
      return
    }
    this.#refused('publish', clientId, username, topic)
    callback(new Error(`the topic ACL does not allow publishing to ${topic}`))
  }

  readonly authorizeSubscribe = (client: Client, sub: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void => {
    if (this.#rules.length === 0) {
      callback(null, sub)
      return
    }
    const username = this.#usernameOf(client)
    const filter = sub.topic.split('/')
    if (isFilter(filter) && this.#allows('subscribe', client.id, username, filter)) {
      callback(null, sub)
      return
    }
    this.#refused('subscribe', client.id, username, sub.topic)
    // granted 0x80
    callback(null, null)
  }

  /**
   * The first rule for `action` that fits the client and `target` decides;
   * none fits: refused. A PUBLISH's target is its topic, a SUBSCRIBE's its
   * filter's levels, which an allow rule must cover and a deny rule only
   * overlap. No closure per call: this runs for every PUBLISH.
   */
  #allows (action: Action, clientId: string | undefined, username: string | undefined, target: string | readonly string[]): boolean {
    for (const rule of this.#rules) {
      if (!rule[action]) continue
      if (rule.username !== undefined && (username === undefined || !rule.username.matches(username, undefined))) continue
      if (rule.clientid !== undefined && (clientId === undefined || !rule.clientid.matches(clientId, undefined))) continue
      const levels = filled(rule, clientId, username)
      if (levels === undefined) continue
      const fits = typeof target === 'string'
        ? matchesTopic(levels, target)
        : rule.allow ? covers(levels, target) : overlaps(levels, target)
      if (fits) return rule.allow
    }
    return false
  }

  #refused (action: Action, clientId: string | undefined, username: string | undefined, topic: string): void {
    this.#denied[action]++
    this.#warnings.warn({ action, clientId: clientId ?? null, username: username ?? null, topic }, `topic ACL refused a ${action}`)
  }
}

/** Counts the ACL's refusals as mqtt_acl_denied_total{action} on `registry`. */
export function registerAclMetric (registry: Registry, acl: TopicAcl): void {
  new Counter({
    name: 'mqtt_acl_denied_total',
    help: 'PUBLISH and SUBSCRIBE requests the topic ACL ([[acl]]) refused, by action',
    labelNames: ['action'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [action, n] of Object.entries(acl.denied)) this.inc({ action }, n)
    }
  })
}

function compile (entry: AclEntry): Rule {
  return {
    allow: entry.action === 'allow',
    publish: entry.access !== 'subscribe',
    subscribe: entry.access !== 'publish',
    levels: entry.topic.split('/'),
    placeholders: entry.topic.includes('${'),
    dollar: entry.topic.charCodeAt(0) === DOLLAR && !LEADING_PLACEHOLDER.test(entry.topic),
    username: entry.username === undefined ? undefined : new Pattern(entry.username),
    clientid: entry.clientid === undefined ? undefined : new Pattern(entry.clientid)
  }
}

function willClientId (packet: PublishPacket): string | undefined {
  const id = (packet as { clientId?: unknown }).clientId
  return typeof id === 'string' ? id : undefined
}

/**
 * The rule's filter with the client's username and client id filled in;
 * undefined, so the rule is not for this client, when the client has no
 * value for one (no username), and for an allow entry when a value would
 * change the filter's shape: empty, holding `/`, `+` or `#` (a client id
 * `#` must not turn `devices/${clientid}/#` into `devices/#/#`), or making
 * a filter that did not start with `$` start with it (a client id `$SYS`
 * must not reach the broker's topics). A deny entry takes such a value as
 * it is, which only widens what it denies.
 */
function filled (rule: Rule, clientId: string | undefined, username: string | undefined): readonly string[] | undefined {
  if (!rule.placeholders) return rule.levels
  let missing = false
  let unusable = false
  const levels = rule.levels.map((level) => !level.includes('${')
    ? level
    : level.replace(PLACEHOLDER, (_, name: string) => {
      const value = name === 'username' ? username : clientId
      if (value === undefined) missing = true
      else if (value.length === 0 || /[/+#]/.test(value)) unusable = true
      return value ?? ''
    }))
  if (missing) return undefined
  if (!unusable && (rule.dollar || levels[0]?.charCodeAt(0) !== DOLLAR)) return levels
  // A deny entry takes the value as it is: its `/` makes levels, its `+`
  // and `#` wildcards, so it only ever denies more (`a/b` cannot write
  // devices/a/b/config, and still writes weather/today).
  return rule.allow ? undefined : levels.join('/').split('/')
}
