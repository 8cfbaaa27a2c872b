/**
 * A flood of wrong passwords against the CLI broker with one user in its
 * config file: GUESSERS connections at once, each trying a wrong password
 * and, once answered, trying again on a new connection. A quarter of the
 * way in, the real user connects with the right password, trying again
 * 100 ms after each CONNACK 3 as a client with a short back-off would: how
 * long it waits to be let in is the figure that matters.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import mqttPacket from 'mqtt-packet'
import { runCli } from '../harness/cli.js'
import { answerTo, connectPacket } from '../harness/raw.js'
import type { Attack } from './attacks.js'
import { startCliBroker, type HostileBroker } from './hostile-brokers.js'

const GUESSERS = 200
const MAX_GUESSES = 100_000
const USER = 'alice'
const PASSWORD = 'the-right-one'
const RETRY_MS = 100
// a client that is not let in this long after the flood ends is reported as never let in
const GRACE_MS = 5000

async function startWithUser (): Promise<HostileBroker> {
  const hashed = await runCli(['hash-password', PASSWORD])
  if (hashed.code !== 0) throw new Error(`hash-password failed: ${hashed.stderr}`)
  const dir = await mkdtemp(join(tmpdir(), 'p2p-hostile-'))
  const config = join(dir, 'users.toml')
  await writeFile(config, `[[users]]\nusername = "${USER}"\npassword = '${hashed.stdout.trim()}'\n`)
  try {
    const broker = await startCliBroker(['--config', config])
    return { ...broker, async stop () { await broker.stop(); await rm(dir, { recursive: true, force: true }) } }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

const answered = (code: number | null): string => code === null ? 'no answer' : `CONNACK ${code}`

export const passwordFlood: Attack = {
  id: 'password-flood',
  what: `${GUESSERS} connections at a time with wrong passwords, one user configured; the real user connects a quarter of the way in`,
  notPlain: 'plain Aedes checks no passwords: a hook of the operator\'s would be measured, not Aedes',
  startCli: startWithUser,
  async run ({ broker, bound, begin }) {
    const to = { tcp: broker.port }
    // every guess is about this long: its client id grows by a digit now and then
    const guessBytes = mqttPacket.generate(connectPacket({ clientId: 'guess-0', username: USER, password: 'wrong' })).length
    const started = performance.now()
    const deadline = started + bound.ms
    const answers = new Map<string, number>()
    let guesses = 0
    const guesser = async (): Promise<void> => {
      while (performance.now() < deadline && guesses < MAX_GUESSES) {
        const { code } = await answerTo(to, { clientId: `guess-${++guesses}`, username: USER, password: 'wrong' })
        const key = answered(code)
        answers.set(key, (answers.get(key) ?? 0) + 1)
      }
    }
    const user = async (): Promise<string[]> => {
      await sleep(bound.ms / 4)
      const from = performance.now()
      let first: string | undefined
      for (let tries = 1; performance.now() < deadline + GRACE_MS; tries++) {
        const { code, ms } = await answerTo(to, { clientId: 'the-user', username: USER, password: PASSWORD })
        first ??= `${answered(code)} after ${Math.round(ms)} ms`
        if (code === 0) return [`the real user's first answer: ${first}; let in after ${Math.round(performance.now() - from)} ms and ${tries} tr${tries === 1 ? 'y' : 'ies'}`]
        if (code !== 3 && code !== null) return [`the real user's first answer: ${first}; then ${answered(code)}: refused`]
        await sleep(RETRY_MS)
      }
      return [`the real user's first answer: ${first ?? 'none'}; never let in`]
    }
    begin()
    const [notes] = await Promise.all([user(), ...Array.from({ length: GUESSERS }, guesser)])
    const seconds = Math.round(performance.now() - started) / 1000
    const tally = [...answers].sort((a, b) => b[1] - a[1]).map(([what, n]) => `${what} ×${n.toLocaleString('en-US')}`).join(', ')
    return {
      sent: { bytes: guesses * guessBytes, messages: guesses, seconds },
      notes: [...notes, `wrong passwords answered: ${tally}`]
    }
  }
}
