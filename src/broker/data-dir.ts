/**
 * `--data-dir` (docs/behaviour.md §7): sessions, subscriptions, offline
 * queues, retained messages and wills on disk, with aedes-persistence-level
 * over LevelDB (classic-level). Each write reaches the operating system
 * before Aedes or the plugin acknowledges what it holds, so a process killed
 * at any moment, SIGKILL included, loses nothing acknowledged; a machine
 * that loses power may lose the last writes (LevelDB does not fsync each).
 *
 * LevelDB completes its reads and writes on libuv's threads, in whatever
 * order they finish; Aedes and the plugin take the order in which a store
 * answers for the order of the messages (a QoS 2 message is published once
 * it is stored, a queued P2P message is written once it is queued). So the
 * store's answers are handed back in the order it was asked: the work itself
 * still runs side by side.
 *
 * A queue on disk replays in key order: broker id, then packet counter. Each
 * run of the broker takes a new id that sorts after the last one (a run
 * number kept beside the store), so a queue that spans restarts replays in
 * the order it was written, no counter of a new run can land on a key of an
 * old one, and the wills the last run left are published as those of a
 * broker that is gone.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { P2PError } from '../plugin/errors.js'

const require = createRequire(import.meta.url)
// CommonJS with no ESM entry
const levelPersistence = require('aedes-persistence-level') as (db: unknown) => unknown

export interface DataDir {
  /** for Aedes.createBroker() */
  persistence: unknown
  /** this run's broker id */
  id: string
}

export async function openDataDir (path: string): Promise<DataDir> {
  try {
    await mkdir(path, { recursive: true })
  } catch (err) {
    throw new P2PError('ERR_P2P_DATA_DIR', `cannot create the data directory ${path}: ${(err as Error).message}`, { cause: err })
  }
  const db = new ClassicLevel(join(path, 'store'))
  try {
    await db.open()
  } catch (err) {
    const cause = (err as { cause?: Error }).cause?.message ?? (err as Error).message
    // LevelDB locks its directory: a second broker on it is refused here
    throw new P2PError('ERR_P2P_DATA_DIR', `cannot open the data directory ${path}: ${cause}${/lock/i.test(cause) ? ' (is another broker using it?)' : ''}`, { cause: err })
  }
  try {
    const run = await nextRun(path, db)
    return { persistence: answerInOrder(levelPersistence(db) as Record<string, unknown>), id: `aedes-p2p-${String(run).padStart(12, '0')}` }
  } catch (err) {
    await db.close()
    throw err
  }
}

// every method of the aedes-persistence contract that answers with a promise
const ASYNC_METHODS = [
  'storeRetained', 'addSubscriptions', 'removeSubscriptions', 'subscriptionsByClient', 'subscriptionsByTopic',
  'cleanSubscriptions', 'outgoingEnqueue', 'outgoingEnqueueCombi', 'outgoingUpdate', 'outgoingClearMessageId',
  'incomingStorePacket', 'incomingGetPacket', 'incomingDelPacket', 'cleanIncoming', 'putWill', 'getWill', 'delWill'
]

/**
 * Makes the persistence answer in the order it is asked. Only the object
 * Aedes holds is wrapped: the persistence's calls to itself go to the
 * unwrapped methods, so one answer never waits for another it is part of.
 */
function answerInOrder (persistence: Record<string, unknown>): Record<string, unknown> {
  let last: Promise<unknown> = Promise.resolve()
  const settled = (): void => {}
  for (const name of ASYNC_METHODS) {
    const method = persistence[name]
    if (typeof method !== 'function') continue
    const original = (method as (...args: unknown[]) => Promise<unknown>).bind(persistence)
    persistence[name] = (...args: unknown[]): Promise<unknown> => {
      const answer = original(...args)
      // handled now, though only passed on later: a refusal ('no such packet') is an answer too
      answer.catch(settled)
      const inOrder = last.then(async () => answer)
      last = inOrder.then(settled, settled)
      return inOrder
    }
  }
  return persistence
}

/** Counts this run in `<path>/run`, written whole or not at all. */
async function nextRun (path: string, db: ClassicLevel): Promise<number> {
  const file = join(path, 'run')
  let last = 0
  try {
    last = Number.parseInt(await readFile(file, 'utf8'), 10)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new P2PError('ERR_P2P_DATA_DIR', `cannot read ${file}: ${(err as Error).message}`, { cause: err })
    // a store without its run number would reuse old runs' ids and overwrite their queued messages
    if ((await db.keys({ limit: 1 }).all()).length > 0) throw new P2PError('ERR_P2P_DATA_DIR', `${file} is missing but the store beside it holds data; restore the file (its last run number) or empty the directory`)
  }
  if (!Number.isSafeInteger(last) || last < 0) throw new P2PError('ERR_P2P_DATA_DIR', `${file} does not hold a run number`)
  const run = last + 1
  await writeFile(file + '.tmp', String(run) + '\n', { flush: true })
  await rename(file + '.tmp', file)
  return run
}
