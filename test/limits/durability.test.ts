/**
 * Acknowledged means kept (docs/behaviour.md §7). With --data-dir, a broker
 * killed with SIGKILL at any moment and started again delivers every
 * message it acknowledged, once, in order; in a cluster, killing a sender's
 * node right after its PUBACK loses nothing acknowledged.
 */
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import { runCli, type RunningCli } from '../../harness/cli.js'
import { startRedis, type TestRedis } from '../../harness/redis.js'
import type { Session } from '../helpers/broker.js'
import { tempFile } from '../helpers/files.js'
import { closed, collect, fence, until, waitFor, type Received } from '../helpers/messages.js'
import { brokerProcesses } from '../helpers/processes.js'

const processes = brokerProcesses(afterEach)
let redis: TestRedis | undefined
after(async () => { await redis?.stop() })

const broker = processes.start
const client = async (b: RunningCli, clientId: string, clean = true): Promise<MqttClient> => processes.client(b, clientId, { clean })
const comeBack = async (b: RunningCli, clientId: string): Promise<Session> => processes.collecting(b, clientId, { clean: false })

const payloads = (got: Received[], topic: string): string[] => got.filter((m) => m.topic === topic).map((m) => m.payload.toString())
const numbered = (prefix: string, from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`)

const killed = processes.kill

describe('--data-dir', () => {
  it('delivers every message acknowledged before a SIGKILL, once and in order, after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-data-'))
    let b = await broker('--data-dir', dir)
    const bob = await client(b, 'bob', false)
    await bob.subscribeAsync('news', { qos: 1 })
    await bob.endAsync()
    const alice = await client(b, 'alice')
    for (let i = 0; i < 100; i++) await alice.publishAsync('p2p/bob/direct', `p${i}`, { qos: 1 })
    for (let i = 0; i < 20; i++) await alice.publishAsync('p2p/bob/exactly', `x${i}`, { qos: 2 })
    for (let i = 0; i < 50; i++) await alice.publishAsync('news', `n${i}`, { qos: 1 })
    // right after the last acknowledgement
    await alice.publishAsync('state', 'on', { qos: 1, retain: true })
    await killed(b)

    b = await broker('--data-dir', dir)
    const back = await comeBack(b, 'bob')
    await waitFor(back.got, 170, 10_000)
    const sender = await client(b, 'carol')
    const got = await fence(sender, back.client, back.got)
    assert.deepEqual(payloads(got, 'direct'), numbered('p', 0, 100))
    assert.deepEqual(payloads(got, 'exactly'), numbered('x', 0, 20))
    assert.deepEqual(payloads(got, 'news'), numbered('n', 0, 50))
    assert.equal(got.length, 170, 'each once')
    const late = await client(b, 'dave')
    const retained = collect(late)
    await late.subscribeAsync('state')
    await waitFor(retained, 1)
    assert.equal(retained[0]?.payload.toString(), 'on')
  })

  it('keeps the order of a queue that spans restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-data-'))
    let b = await broker('--data-dir', dir)
    const bob = await client(b, 'bob', false)
    await bob.endAsync()
    for (let run = 0; run < 3; run++) {
      const alice = await client(b, `alice-${run}`)
      for (let i = 0; i < 10; i++) await alice.publishAsync('p2p/bob/q', `r${run}-${i}`, { qos: 1 })
      await killed(b)
      b = await broker('--data-dir', dir)
    }
    const back = await comeBack(b, 'bob')
    await waitFor(back.got, 30)
    assert.deepEqual(back.got.map((m) => m.payload.toString()), [0, 1, 2].flatMap((run) => numbered(`r${run}-`, 0, 10)))
  })

  it('keeps each sender\'s order in a burst, at QoS 1 and 2, to a target online and offline', async () => {
    // LevelDB finishes writes in any order; the store's answers come back in the order asked
    const dir = await mkdtemp(join(tmpdir(), 'p2p-data-'))
    const b = await broker('--data-dir', dir)
    const online = await comeBack(b, 'online')
    const away = await client(b, 'away', false)
    await away.endAsync()
    const alice = await client(b, 'alice')
    const burst = async (qos: 1 | 2): Promise<void> => {
      await Promise.all(Array.from({ length: 300 }, async (_, i) => {
        await Promise.all([alice.publishAsync('p2p/online/b', `${qos}-${i}`, { qos }), alice.publishAsync('p2p/away/b', `${qos}-${i}`, { qos })])
      }))
    }
    await Promise.all([burst(1), burst(2)])
    const back = await comeBack(b, 'away')
    for (const got of [online.got, back.got]) {
      await waitFor(got, 600, 10_000)
      for (const qos of [1, 2]) assert.deepEqual(payloads(got, 'b').filter((p) => p.startsWith(`${qos}-`)), numbered(`${qos}-`, 0, 300))
    }
  })

  it('counts a queue filled before a restart against its bound after it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-data-'))
    const config = await tempFile('queue.toml', '[limits]\nmax_queued_messages = 5\n')
    let b = await broker('--data-dir', dir, '--config', config)
    const bob = await client(b, 'bob', false)
    await bob.endAsync()
    const alice = await client(b, 'alice')
    for (let i = 0; i < 5; i++) await alice.publishAsync('p2p/bob/q', `m${i}`, { qos: 1 })
    await killed(b)
    b = await broker('--data-dir', dir, '--config', config)
    const again = await client(b, 'alice-again')
    again.publish('p2p/bob/q', 'one too many', { qos: 1 })
    await closed(again)
    const back = await comeBack(b, 'bob')
    await waitFor(back.got, 5)
    const carol = await client(b, 'carol')
    assert.deepEqual(payloads(await fence(carol, back.client, back.got), 'q'), numbered('m', 0, 5))
  })

  it('expires, after a restart, a session that was offline before it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-data-'))
    const config = await tempFile('expiry.toml', '[limits]\nsession_expiry = 1\n')
    let b = await broker('--data-dir', dir)
    const bob = await client(b, 'bob', false)
    await bob.endAsync()
    await killed(b)
    b = await broker('--data-dir', dir, '--config', config)
    await until(() => b.lines.some((l) => l.limit === 'session_expiry' && l.clientId === 'bob'), 10_000, 'bob\'s session ended')
    const back = await comeBack(b, 'bob')
    assert.equal(back.sessionPresent, false)
  })

  it('refuses a data directory another broker is using, and exits 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-data-'))
    await broker('--data-dir', dir)
    const second = await runCli(['--port', '0', '--data-dir', dir])
    assert.equal(second.code, 1)
    assert.match(second.stderr, /another broker/)
  })

  it('is not combined with --redis', async () => {
    const result = await runCli(['--port', '0', '--data-dir', '/tmp/x', '--redis', 'redis://127.0.0.1:6379'])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /cannot be combined/)
  })
})

describe('a cluster node killed right after a PUBACK', () => {
  for (const target of ['online', 'offline'] as const) {
    it(`loses no acknowledged P2P message to an ${target} persistent target`, async () => {
      redis ??= await startRedis({ durable: true })
      const cluster = ['--redis', redis.url]
      const [n1, n2] = [await broker(...cluster), await broker(...cluster)]
      let bob = await comeBack(n2, `bob-${target}`)
      if (target === 'offline') await bob.client.endAsync()
      const alice = await client(n1, `alice-${target}`)
      alice.on('error', () => {})
      const acked: string[] = []
      // a stream of QoS 1 messages, many in flight, until the node dies under
      // it; fewer than max_queued_messages, which an offline queue would refuse
      let i = 0
      const sending = (async () => {
        while (!alice.disconnected && i < 900) {
          const payload = `m${i++}`
          alice.publish(`p2p/bob-${target}/s`, payload, { qos: 1 }, (err) => { if (err === undefined || err === null) acked.push(payload) })
          if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve))
        }
      })()
      await until(() => acked.length >= 300 || i >= 900, 10_000, '300 acknowledged')
      await n1.stop('SIGKILL')
      await sending
      if (target === 'offline') bob = await comeBack(n2, `bob-${target}`)
      const seen = new Set<string>()
      await until(() => {
        for (const m of bob.got) seen.add(m.payload.toString())
        return acked.every((p) => seen.has(p))
      }, 30_000, `every acknowledged message at bob (${acked.length} acknowledged)`).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; missing: ${acked.filter((p) => !seen.has(p)).slice(0, 20).join(' ')}; received ${seen.size}: ${bob.got.slice(0, 5).map((m) => m.payload.toString()).join(' ')}`)
      })
    })
  }
})
