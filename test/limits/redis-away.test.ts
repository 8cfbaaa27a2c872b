/**
 * A cluster node while its Redis is away (docs/behaviour.md §7): what it
 * holds for the cluster is bounded, a connecting client gets an answer
 * within 2 s, a stop ends within 10 s, and a client that hangs up at the
 * worst moment leaves no Redis subscription behind. Broker processes on a
 * real Redis, which the tests kill.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { afterEach, describe, it } from 'node:test'
import { promisify } from 'node:util'
import type { IClientOptions, MqttClient } from 'mqtt'
import { freePort, isListening, runCli, type RunningCli } from '../../harness/cli.js'
import { rssBytes } from '../../harness/proc.js'
import { startRedis, type TestRedis } from '../../harness/redis.js'
import { hashPassword } from '../../src/broker/users.js'
import { connackCode } from '../helpers/broker.js'
import { tempFile } from '../helpers/files.js'
import { closed, collect, until, waitFor } from '../helpers/messages.js'
import { brokerProcesses } from '../helpers/processes.js'
import { connectPacket, rawClient } from '../helpers/raw.js'

let redis: TestRedis | undefined
const processes = brokerProcesses(afterEach)
afterEach(async () => {
  await redis?.stop()
  redis = undefined
})

async function node (config = ''): Promise<RunningCli> {
  redis ??= await startRedis({ durable: false })
  return config === ''
    ? processes.start('--redis', redis.url)
    : processes.start('--redis', redis.url, '--config', await tempFile('cluster.toml', config))
}

const client = async (n: RunningCli, id: string, options?: IClientOptions): Promise<MqttClient> => processes.client(n, id, options)

const unreachable = (n: RunningCli): boolean => n.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('Redis unreachable'))

async function killRedis (...watching: RunningCli[]): Promise<void> {
  await redis?.stop()
  await until(() => watching.every(unreachable), 10_000, 'the nodes to notice')
}

/** The CONNACK code a new client gets within 2 s, or 'closed'. */
async function answerWithin2s (n: RunningCli, clientId: string): Promise<number | 'closed'> {
  return connackCode(n.port, clientId, { connectTimeout: 2000 })
}

describe('a node while Redis is away', () => {
  it('answers a connecting client CONNACK 3 within 2 s, and lets it in once Redis is back', async () => {
    const n = await node()
    await killRedis(n)
    assert.equal(await answerWithin2s(n, 'newcomer'), 3)
    await redis?.start()
    await until(() => n.lines.filter((l) => l.msg === 'Redis connection restored').length === 3, 10_000, 'every connection back')
    assert.equal(await answerWithin2s(n, 'newcomer'), 0)
  })

  it('answers CONNACK 3 within 2 s to a client connecting just after Redis froze, before anything noticed', async () => {
    const n = await node()
    const pid = redis?.pid() ?? 0
    process.kill(pid, 'SIGSTOP')
    try {
      assert.equal(await answerWithin2s(n, 'frozen-out'), 3)
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    assert.equal(await answerWithin2s(n, 'thawed'), 0)
  })

  it('drops cross-node QoS 0 past max_buffered_messages, stays bounded, and serves its own clients', async () => {
    const config = '[cluster]\nmax_buffered_messages = 100\n'
    const [n1, n2] = [await node(config), await node(config)]
    const alice = await client(n1, 'alice')
    const carol = await client(n1, 'carol')
    await client(n2, 'bob')
    await killRedis(n1, n2)
    const pid = n1.child.pid ?? 0
    const before = rssBytes(pid)
    const payload = Buffer.alloc(16 * 1024)
    // 160 MB that would wait for Redis, were nothing bounded
    for (let i = 0; i < 10_000; i++) alice.publish('p2p/bob/x', payload, { qos: 0 })
    await until(() => n1.lines.some((l) => l.limit === 'max_buffered_messages'), 10_000, 'the bound to bite')
    const got = collect(carol)
    await alice.publishAsync('p2p/carol/here', 'local', { qos: 1 })
    await waitFor(got, 1)
    const grew = (rssBytes(pid) - before) / (1024 * 1024)
    assert.ok(grew < 100, `RSS grew ${grew.toFixed(1)} MB while 160 MB were sent`)
  })

  it('counts what an MQTT 5 sender puts beside a tiny payload against max_buffered_bytes', async () => {
    // few messages, each a byte of payload and 48 KB of user properties: only their weight can bound them
    const config = '[broker]\nmqtt5 = true\n[cluster]\nmax_buffered_messages = 100000\nmax_buffered_bytes = 4194304\n'
    const [n1, n2] = [await node(config), await node(config)]
    const alice = await client(n1, 'alice', { protocolVersion: 5 })
    const carol = await client(n1, 'carol', { protocolVersion: 5 })
    await client(n2, 'bob', { protocolVersion: 5 })
    await killRedis(n1, n2)
    const pid = n1.child.pid ?? 0
    const before = rssBytes(pid)
    const properties = { userProperties: { padding: 'x'.repeat(48 * 1024) } }
    // 144 MB that would wait for Redis, were only payloads counted
    for (let i = 0; i < 3000; i++) alice.publish('p2p/bob/x', 'x', { qos: 0, properties })
    await until(() => n1.lines.some((l) => l.limit === 'max_buffered_bytes'), 10_000, 'the bound to bite')
    const got = collect(carol)
    await alice.publishAsync('p2p/carol/here', 'local', { qos: 1 })
    await waitFor(got, 1)
    const grew = (rssBytes(pid) - before) / (1024 * 1024)
    assert.ok(grew < 100, `RSS grew ${grew.toFixed(1)} MB while 144 MB were sent`)
  })

  it('does not acknowledge cross-node QoS 1 past max_buffered_messages, and closes the sender', async () => {
    const config = '[cluster]\nmax_buffered_messages = 5\n'
    const [n1, n2] = [await node(config), await node(config)]
    const alice = await client(n1, 'alice')
    await client(n2, 'bob')
    await killRedis(n1, n2)
    let acked = 0
    for (let i = 0; i < 10; i++) alice.publish('p2p/bob/x', String(i), { qos: 1 }, (err) => { if (err === undefined || err === null) acked++ })
    await closed(alice)
    assert.equal(acked, 0, 'nothing waiting for Redis was acknowledged')
    // the node says why, on its log (which may reach us after the socket's close)
    await until(() => n1.lines.some((l) => l.limit === 'max_buffered_messages'), 5000, 'the limit logged')
  })

  it('stops within 10 s on SIGTERM, saying what it could not flush, and exits 1', async () => {
    const n = await node()
    const alice = await client(n, 'alice')
    await killRedis(n)
    // work that waits for Redis: a retained message to store
    alice.publish('state', 'on', { qos: 1, retain: true })
    const started = Date.now()
    const code = await n.stop('SIGTERM')
    assert.ok(Date.now() - started < 10_000, `stopped after ${Date.now() - started} ms`)
    assert.equal(code, 1)
    assert.ok(n.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown gave up waiting')))
  })

  it('says it is not ready (503) while Redis is away, and while it shuts down, yet stays alive (/health 200)', async () => {
    const adminPort = await freePort()
    const n = await node(`[admin]\nport = ${adminPort}\n`)
    const probe = async (path: string): Promise<{ status: number, body: { status: string, reasons?: string[] } }> => {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`)
      return { status: res.status, body: await res.json() as { status: string, reasons?: string[] } }
    }
    assert.deepEqual(await probe('/ready'), { status: 200, body: { status: 'ready', reasons: [] } })
    const alice = await client(n, 'alice')
    await killRedis(n)
    const ready = await probe('/ready')
    assert.equal(ready.status, 503)
    assert.match(ready.body.reasons?.join() ?? '', /Redis unreachable/)
    assert.deepEqual([(await probe('/health')).status, (await probe('/health')).body.status], [200, 'degraded'])
    // the console's detail view still answers, saying what the store could not tell
    const detail = await fetch(`http://127.0.0.1:${adminPort}/api/v1/clients/alice`, { signal: AbortSignal.timeout(5000) })
    assert.equal(detail.status, 200)
    assert.equal((await detail.json() as { queued_messages: number | null }).queued_messages, null)
    // a shutdown that waits on Redis: the admin listener stays up meanwhile, for the probes
    alice.publish('state', 'on', { qos: 1, retain: true })
    const stopped = n.stop('SIGTERM')
    await until(() => n.lines.some((l) => l.msg === 'shutting down'))
    const closing = await probe('/ready')
    assert.equal(closing.status, 503)
    assert.ok(closing.body.reasons?.includes('shutting down'))
    await stopped
  })
})

describe('a node whose Redis never comes', () => {
  it('waits [cluster] startup_timeout with nothing listening, then exits 1 saying where it looked', async () => {
    const [redisPort, mqttPort] = [await freePort(), await freePort()]
    const config = await tempFile('away.toml', '[cluster]\nstartup_timeout = 2\n')
    const started = Date.now()
    const ran = runCli(['--port', String(mqttPort), '--redis', `redis://:hunter2@127.0.0.1:${redisPort}/?password=hunter3`, '--config', config])
    await new Promise((resolve) => setTimeout(resolve, 1000))
    assert.equal(await isListening(mqttPort), false, 'nothing listens while it waits')
    const { code, stdout, stderr } = await ran
    assert.equal(code, 1)
    assert.ok(Date.now() - started < 10_000)
    assert.match(stderr, new RegExp(`Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redisPort}/\\?password=\\*\\*\\* did not answer within 2 s \\(last error: connect ECONNREFUSED`))
    assert.ok(!/hunter[23]/.test(stdout + stderr), 'the password stays out of the logs, in either place a URL can hold it')
    assert.match(stdout, /waiting for it before listening/)
    assert.doesNotMatch(stdout, /clients connected here are served/)
  })
})

describe('a node on Redis, with clients that hang up at the worst moment', () => {
  it('leaves no channel subscription for clients that hang up during their password check', async () => {
    const password = await hashPassword('pw')
    const n = await node(`[[users]]\nusername = "u"\npassword = "${password}"\n`)
    for (let i = 0; i < 100; i++) {
      const raw = await rawClient({ tcp: n.port })
      raw.send(connectPacket({ clientId: `gone-${i}`, username: 'u', password: 'pw' }))
      // gone while scrypt runs
      setTimeout(() => { raw.destroy() }, i % 20)
    }
    const channels = async (): Promise<string> => {
      const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(redis?.port), 'PUBSUB', 'CHANNELS', '$p2p/*'])
      return stdout.trim()
    }
    // past max_auth_pending a client is told to come back (CONNACK 3): it does, until the flood is answered
    let stays: MqttClient | undefined
    for (let attempt = 0; stays === undefined && attempt < 20; attempt++) {
      stays = await processes.client(n, 'stays', { username: 'u', password: 'pw' }).catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 250))
        return undefined
      })
    }
    assert.ok(stays !== undefined, 'let in once the flood was answered')
    // every check of the flood has finished by now: 'stays' waited behind them
    await new Promise((resolve) => setTimeout(resolve, 1000))
    assert.equal(await channels(), '$p2p/stays')
  })
})
