/**
 * Whose a client id is (docs/behaviour.md §8): the user that holds it, by
 * a live connection or a persistent session, and no other user may take it
 * over. The owner is the username the host's `authenticate` let the client
 * in with; the plugin keeps it beside the session in the store
 * (channel.ts, ownerMarker), so it holds for offline sessions and on every
 * node, and `target_user` rules can ask for it.
 *
 * A clean session's connection is recorded in the store only when other
 * nodes share it, tagged with this broker's id, and removed when the
 * connection ends; one left behind by a broker that died stops counting once
 * that broker misses three heartbeats.
 */
import type { Aedes, AuthenticateError, Client } from 'aedes'
import { ownerMarker, ownerOf, SESSIONS_TOPIC } from './channel.js'
import { afterAuthenticate, brokerAlive, unregisterClosed } from './host.js'
import { unsafeClientId } from './host-mqtt5.js'
import { addSubscriptions, clientsSubscribedTo, dropQueue, endSession, removeSubscriptions, subscriptionsOf } from './host-store.js'
import type { Logger } from './log.js'
import type { UserDirectory } from './options.js'
import { LATE, within } from './within.js'

// How long a CONNECT, or a message a target_user rule is checking, may wait
// for the store to say who holds an id: a client connecting while the store
// is away gets its answer (CONNACK 3) within the 2 s docs/behaviour.md §7
// promises, and a message is refused rather than held.
const READ_WAIT_MS = 1000
// CONNACK return codes (MQTT 3.1.1 §3.2.2.3)
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const NOT_AUTHORIZED = 5

async function withinReadWait<T> (reading: Promise<T>): Promise<T> {
  const read = await within(reading, READ_WAIT_MS)
  if (read === LATE) throw new Error(`the store did not answer within ${READ_WAIT_MS} ms`)
  return read
}

function refuse (code: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError
}

export class Owners {
  readonly #broker: Aedes
  /** other nodes read and write the same store */
  readonly #shared: boolean
  readonly #upSince = Date.now()
  readonly #log: Logger
  readonly #users: UserDirectory | undefined
  /** the username each client was let in with */
  readonly #usernames = new WeakMap<Client, string>()
  /** this node's clients with a user past their check, by id: connecting or connected */
  readonly #holders = new Map<string, Client>()
  /** a clean connection's record in the shared store, while it is written */
  readonly #recording = new WeakMap<Client, Promise<void>>()
  /** clients whose user held their id already when they connected */
  readonly #incumbents = new WeakSet<Client>()
  /** clients closed while connecting because another user took their id at that moment */
  readonly #evicted = new WeakSet<Client>()

  constructor (broker: Aedes, shared: boolean, users: UserDirectory | undefined, log: Logger) {
    this.#broker = broker
    this.#shared = shared
    this.#users = users
    this.#log = log
    // Aedes 1.2 registers a client that closed while it was connecting, and keeps it
    if (shared) broker.on('client', (client) => { if (this.#evicted.has(client)) unregisterClosed(broker, client) })
  }

  /** The username a client was let in with; undefined for one without. */
  usernameOf (client: Client): string | undefined {
    return this.#usernames.get(client)
  }

  /**
   * Wraps the host's `authenticate`: once it lets a client in, the client
   * id must not be held by another user, nor be one the host cannot hold
   * (host.ts, unsafeClientId). Installed before any other
   * wrapper, so a client refused here is never reachable (emitter.ts).
   * Returns what takes the wrapper out again.
   */
  guard (): () => void {
    return afterAuthenticate(this.#broker, (client, claimed, admit) => {
      if (unsafeClientId(client.id)) {
        admit(refuse(IDENTIFIER_REJECTED, 'this client id is not accepted by this broker'))
        return
      }
      const users = this.#users
      if (users?.enabled?.() === false) {
        admit(null)
        return
      }
      const username = users === undefined ? claimed : users.usernameOf(client)
      this.#claim(client, username).then(admit, (err: unknown) => {
        this.#log.error({ err, clientId: client.id }, 'the owner of a client id could not be read; connection refused')
        admit(refuse(SERVER_UNAVAILABLE, 'the owner of this client id could not be read'))
      })
    })
  }

  /**
   * Records a clean session's connection in a shared store, before its
   * CONNACK (Aedes has removed the id's stored subscriptions by then).
   * A persistent session's owner is recorded with the session (sessions.ts).
   */
  async recordConnection (client: Client): Promise<void> {
    const username = this.#usernames.get(client)
    if (!this.#shared || !client.clean || username === undefined) return
    const writing = addSubscriptions(this.#broker, client.id, [{ topic: ownerMarker(client.id, username, this.#broker.id), qos: 0 }])
    this.#recording.set(client, writing.catch(() => {}))
    await writing
  }

  /** The record a persistent session keeps of its owner (sessions.ts); none for a client without a user. */
  sessionRecord (client: Client): { topic: string, qos: number } | undefined {
    const username = this.#usernames.get(client)
    return username === undefined ? undefined : { topic: ownerMarker(client.id, username), qos: 0 }
  }

  /**
   * The username of the user that holds `clientId`; null for an id nobody's
   * user holds. Rejects when the store does not answer within READ_WAIT_MS.
   */
  owner (clientId: string): string | null | Promise<string | null> {
    const holder = this.#holders.get(clientId)
    if (holder !== undefined && !holder.closed) return this.#usernames.get(holder) ?? null
    return withinReadWait(this.#stored(clientId)).then((owners) => owners[0]?.username ?? null)
  }

  /** null when `username` may hold the client's id; else why not. */
  async #claim (client: Client, username: string | undefined): Promise<AuthenticateError | null> {
    const id = client.id
    const taken = (): AuthenticateError | null => {
      const holder = this.#holders.get(id)
      if (holder === undefined || holder === client || holder.closed) return null
      return this.#usernames.get(holder) === username ? null : refuse(NOT_AUTHORIZED, `client id ${id} is held by another user`)
    }
    if (taken() !== null) return taken()
    const owners = await withinReadWait(this.#stored(id))
    // a connect with the same id may have been let in while the store was read
    const now = taken()
    if (now !== null) return now
    if (owners.some((owner) => owner.username !== username)) {
      this.#log.warn({ clientId: id, username: username ?? null }, 'connection refused: the client id belongs to another user')
      return refuse(NOT_AUTHORIZED, `client id ${id} belongs to another user`)
    }
    // A client without a user holds its id for nobody, so it costs nothing
    // to keep; and Aedes drops the answer for a client gone meanwhile, whose
    // 'close' has been and will not come again.
    if (username === undefined || client.closed || client.conn.destroyed) return null
    if (owners.length > 0) this.#incumbents.add(client)
    this.#holders.set(id, client)
    this.#usernames.set(client, username)
    client.conn.once('close', () => { this.#release(client) })
    return null
  }

  #release (client: Client): void {
    const id = client.id
    if (this.#holders.get(id) === client) this.#holders.delete(id)
    const username = this.#usernames.get(client)
    const recording = this.#recording.get(client)
    if (username === undefined || recording === undefined) return
    void recording.then(async () => {
      // a connection of the same user that took over this one holds the same record
      if (this.#holders.has(id)) return
      await removeSubscriptions(this.#broker, id, [ownerMarker(id, username, this.#broker.id)])
    }).catch((err: unknown) => { this.#log.warn({ err, clientId: id }, 'the record of a closed connection was not removed') })
  }

  /**
   * Two users that connect with one id at the same moment on two nodes can
   * both pass the check: each read the store before the other wrote, as
   * when a newcomer tries an id in the moment its owner reconnects with a
   * clean session (Aedes has removed the owner's records, ours are not
   * written yet). So once a connection is recorded in a shared store, the
   * records are read back; each connection writes before it reads, so the
   * later one sees both. The user that held the id already keeps it, and
   * the others' records go; a newcomer that finds another user's record
   * gives way: its record goes, and it is closed before its CONNACK. Two
   * newcomers that both see each other both give way and try again; one
   * that read back before the other wrote is the one that gets in.
   */
  async settle (client: Client): Promise<void> {
    const id = client.id
    const username = this.#usernames.get(client)
    if (!this.#shared || username === undefined) return
    let records
    try {
      records = await this.#stored(id)
    } catch (err) {
      this.#log.warn({ err, clientId: id }, 'the owner records of a client id could not be read back')
      return
    }
    const others = records.filter((record) => record.username !== username)
    if (others.length === 0) return
    if (this.#incumbents.has(client)) {
      this.#log.warn({ clientId: id, username, others: others.map((o) => o.username) }, 'another user connected with this client id as its owner came back; it stays the owner\'s')
      await this.#remove(id, others.map((record) => record.topic))
      return
    }
    this.#log.warn({ clientId: id, username, other: others[0]?.username }, 'connection closed: another user connected with this client id at the same moment')
    this.#evicted.add(client)
    await this.#remove(id, [ownerMarker(id, username), ownerMarker(id, username, this.#broker.id)])
    client.close()
  }

  /** See P2PHandle.endSessions. */
  async endSessions (refuse: (username: string, clientId: string) => boolean): Promise<number> {
    // read first: the list is not walked while it is changed
    const ids: string[] = []
    for await (const id of clientsSubscribedTo(this.#broker, SESSIONS_TOPIC)) ids.push(id)
    let ended = 0
    for (const id of ids) {
      const records = await this.#stored(id)
      if (!records.some(({ username }) => refuse(username, id))) continue
      await dropQueue(this.#broker, id)
      await endSession(this.#broker, id)
      ended++
    }
    if (ended > 0) this.#log.info({ ended }, 'sessions ended: their owners may no longer hold them')
    return ended
  }

  async #remove (id: string, topics: string[]): Promise<void> {
    await removeSubscriptions(this.#broker, id, topics).catch((err: unknown) => { this.#log.warn({ err, clientId: id }, 'owner records not removed') })
  }

  /**
   * The records in the store of users holding `clientId`: its persistent
   * session's owner first, then the users of connections to live brokers.
   * Records of connections that are gone are removed on the way; those of
   * users that are gone only by endSessions(), once this node is told, so a
   * node that has not reloaded yet cannot free another's ids.
   */
  async #stored (clientId: string): Promise<Array<{ username: string, topic: string }>> {
    const owners: Array<{ username: string, topic: string }> = []
    const stale: string[] = []
    for (const { topic } of await subscriptionsOf(this.#broker, clientId)) {
      const marker = ownerOf(clientId, topic)
      if (marker === null) continue
      const { username, brokerId } = marker
      if (brokerId === undefined) {
        owners.unshift({ username, topic })
      } else if (brokerId === this.#broker.id ? this.#holders.has(clientId) : brokerAlive(this.#broker, brokerId, this.#upSince) !== false) {
        owners.push({ username, topic })
      } else {
        stale.push(topic)
      }
    }
    if (stale.length > 0) {
      removeSubscriptions(this.#broker, clientId, stale).catch((err: unknown) => { this.#log.warn({ err, clientId }, 'stale owner records not removed') })
    }
    return owners
  }
}
