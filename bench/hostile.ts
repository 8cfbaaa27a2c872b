/**
 * The hostile part: what clients that mean harm can make a broker hold.
 * Each attack runs against a fresh plain Aedes (where it applies) and a
 * fresh aedes-p2p CLI broker with every limit at its default, one after the
 * other, each bounded in bytes and in time. The broker's RSS is read from
 * /proc every 100 ms from the moment the attack begins until a second after
 * it ends; a broker that dies is reported as such, with how it ended.
 */
import { rssBytes } from '../harness/proc.js'
import { ATTACKS, type Attack, type AttackResult } from './attacks.js'
import { passwordFlood } from './hostile-auth.js'
import { startCliBroker, startPlain, type HostileBroker } from './hostile-brokers.js'
import { redisAway } from './hostile-cluster.js'
import type { Bound } from './pour.js'
import { HOSTILE_BROKERS, type HostileBrokerName, type HostileOutcome, type HostileResults, type HostileRow } from './results.js'
import { hostileSummary } from './report.js'
import { watchRss, type RssSeen, type RssWatch } from './rss-watch.js'

// a broker that died is reaped, and its stderr read, within this long
const REAPED_MS = 2000

export async function hostile (bound: Bound, progress: (line: string) => void): Promise<HostileResults> {
  const rows: HostileRow[] = []
  for (const attack of [...ATTACKS, redisAway(), passwordFlood]) {
    const plain = attack.notPlain !== undefined
      ? { skipped: attack.notPlain }
      : await underAttack(attack, 'plain', startPlain, bound)
    const cli = await underAttack(attack, 'cli', attack.startCli ?? (() => startCliBroker()), bound)
    const row: HostileRow = { attack: attack.id, what: attack.what, plain, cli }
    rows.push(row)
    progress(`hostile ${attack.id}: ${hostileSummary(row)}`)
  }
  return { bound, rows }
}

async function underAttack (attack: Attack, name: HostileBrokerName, start: () => Promise<HostileBroker>, bound: Bound): Promise<HostileOutcome> {
  const broker = await start()
  let watch: RssWatch | undefined
  const begin = (): void => { watch ??= watchRss(broker.pid) }
  try {
    let result: AttackResult | undefined
    let error: string | undefined
    try {
      result = await attack.run({ broker, bound, begin })
    } catch (err) {
      error = `${HOSTILE_BROKERS[name]}: ${(err as Error).message}`
    }
    const rss = watch?.stop() ?? readNow(broker.pid)
    const died = await ending(broker)
    return {
      rss,
      sent: result?.sent ?? { bytes: 0, messages: 0, seconds: 0 },
      died,
      counted: died === null ? await broker.counted() : null,
      notes: result?.notes ?? [],
      measured: result?.measured ?? {},
      // an attack cut short by the broker's death is no fault of the attack
      ...(error === undefined || died !== null ? {} : { error })
    }
  } finally {
    await broker.stop()
  }
}

/** How the broker ended, or null if it is still running; a process gone is given time to be reaped. */
async function ending (broker: HostileBroker): Promise<string | null> {
  const deadline = Date.now() + REAPED_MS
  for (;;) {
    const ended = broker.ended()
    if (ended !== null || Date.now() > deadline || running(broker.pid)) return ended
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function running (pid: number): boolean {
  return readNow(pid).before > 0
}

/** For an attack that failed before it began: what the broker holds now, 0 if it is gone. */
function readNow (pid: number): RssSeen {
  let now = 0
  try {
    now = rssBytes(pid)
  } catch { /* gone */ }
  return { before: now, peak: now, after: now }
}
