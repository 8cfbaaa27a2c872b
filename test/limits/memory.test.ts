/**
 * No client, however hostile, makes the broker's memory grow without bound
 * (docs/behaviour.md §7). Each test runs the broker CLI as its own process
 * and reads its resident set size from /proc while an attack that would take
 * gigabytes runs; the bound asserted is wide (tens of MB), never a timing.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import type { RunningCli } from '../../harness/cli.js'
import { rssBytes } from '../../harness/proc.js'
import { tempFile } from '../helpers/files.js'
import { collect, waitFor } from '../helpers/messages.js'
import { brokerProcesses } from '../helpers/processes.js'
import { announcing, rawSession, rawClient } from '../helpers/raw.js'

const MB = 1024 * 1024
const processes = brokerProcesses(after)

async function broker (config = ''): Promise<RunningCli> {
  return config === '' ? processes.start() : processes.start('--config', await tempFile('limits.toml', config))
}

async function client (port: number, clientId: string, clean = true): Promise<MqttClient> {
  const b = processes.running.find((r) => r.port === port)
  if (b === undefined) throw new Error(`no broker on ${port}`)
  return processes.client(b, clientId, { clean })
}

/** The most the broker's RSS rose above where it was while `attack` ran, in MB. */
async function peakGrowth (cli: RunningCli, attack: () => Promise<void>): Promise<number> {
  const pid = cli.child.pid ?? 0
  const before = rssBytes(pid)
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, rssBytes(pid)) }, 50)
  try {
    await attack()
    // what the broker still holds once the attack has landed
    await new Promise((resolve) => setTimeout(resolve, 300))
    peak = Math.max(peak, rssBytes(pid))
  } finally {
    clearInterval(sampler)
  }
  return (peak - before) / MB
}

/**
 * Publishes `total` MB in `size`-byte messages, or for `ms`, whichever ends
 * first; or until the broker closes the sender (a QoS 1 message it does not
 * acknowledge). Returns the MB sent.
 */
async function flood (sender: MqttClient, topic: string, totalMb: number, size: number, qos: 0 | 1, ms = 20_000): Promise<number> {
  const payload = Buffer.alloc(size)
  const deadline = Date.now() + ms
  const gone = new Promise<void>((resolve) => { sender.once('close', () => { resolve() }) })
  let sent = 0
  while (sent * size < totalMb * MB && Date.now() < deadline && sender.connected) {
    // a window of publishes in flight keeps the socket full without waiting on each
    await Promise.race([Promise.all(Array.from({ length: 16 }, async () => sender.publishAsync(topic, payload, { qos }))), gone])
    sent += 16
  }
  return (sent * size) / MB
}

/** As flood(), from sender after sender: one refused and disconnected comes back, as a client does, until `totalMb` or `ms`. */
async function floodAgain (cli: RunningCli, topic: string, totalMb: number, size: number, ms = 15_000): Promise<number> {
  const deadline = Date.now() + ms
  let sent = 0
  for (let round = 0; sent < totalMb && Date.now() < deadline; round++) {
    sent += await flood(await client(cli.port, `flooder-${round}`), topic, totalMb - sent, size, 1, deadline - Date.now())
  }
  return sent
}

let alive = 0

/** The broker answers: a P2P message between two fresh clients arrives. */
async function stillServes (port: number): Promise<void> {
  const a = await client(port, `alive-a-${++alive}`)
  const b = await client(port, `alive-b-${alive}`)
  const got = collect(b)
  await a.publishAsync(`p2p/${b.options.clientId ?? ''}/x`, 'ok', { qos: 1 })
  await waitFor(got, 1)
}

describe('memory under attack', () => {
  it('a P2P target that never reads costs tens of MB, however much is sent to it', async () => {
    const cli = await broker()
    const target = await rawSession({ tcp: cli.port }, { clientId: 'sink' })
    target.stopReading()
    const sender = await client(cli.port, 'flooder')
    let sent = 0
    const grew = await peakGrowth(cli, async () => { sent = await flood(sender, 'p2p/sink/x', 512, 64 * 1024, 0) })
    assert.ok(sent >= 256, `sent ${sent} MB`)
    assert.ok(grew < 100, `RSS grew ${grew.toFixed(1)} MB while ${sent} MB went to a reader that stopped`)
    await stillServes(cli.port)
    target.destroy()
  })

  it('a persistent target that never reads holds at most its queue and max_pending_bytes', async () => {
    const cli = await broker('[limits]\nmax_queued_bytes = 16777216\n')
    const target = await rawSession({ tcp: cli.port }, { clientId: 'sink', clean: false })
    target.stopReading()
    let sent = 0
    // once its queue is full, a sender is refused (not acknowledged, disconnected): it comes back and tries again
    const grew = await peakGrowth(cli, async () => { sent = await floodAgain(cli, 'p2p/sink/x', 256, 64 * 1024) })
    assert.ok(sent >= 128, `sent ${sent} MB`)
    assert.ok(grew < 120, `RSS grew ${grew.toFixed(1)} MB for a 16 MB queue while ${sent} MB were sent`)
    assert.ok(cli.lines.some((l) => l.limit === 'max_queued_bytes'), 'the queue bound bit, and said so')
    await stillServes(cli.port)
    target.destroy()
  })

  it('an ordinary subscriber that never reads, then leaves, neither grows memory nor brings the broker down', async () => {
    // plain Aedes 1.2 holds the publisher and one emitter slot per message for
    // such a subscriber, and overflows its stack when it leaves and they are released
    const cli = await broker()
    const target = await rawSession({ tcp: cli.port }, { clientId: 'sink' })
    target.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'news', qos: 0 }] })
    await target.next('suback')
    target.stopReading()
    const sender = await client(cli.port, 'flooder')
    let sent = 0
    const grew = await peakGrowth(cli, async () => { sent = await flood(sender, 'news', 512, 64 * 1024, 0) })
    assert.ok(grew < 100, `RSS grew ${grew.toFixed(1)} MB while ${sent} MB went to a subscriber that stopped reading`)
    target.destroy()
    await target.closed
    await stillServes(cli.port)
    assert.equal(cli.child.exitCode, null, 'the broker is still running')
  })

  it('an offline session flooded at QoS 1 holds at most max_queued_messages', async () => {
    const cli = await broker()
    const away = await client(cli.port, 'away', false)
    await away.endAsync()
    let sent = 0
    // 16 KiB messages: the 1000 the queue keeps are 16 MB, all of them would be ten times that
    const grew = await peakGrowth(cli, async () => { sent = await floodAgain(cli, 'p2p/away/x', 160, 16 * 1024, 15_000) })
    assert.ok(sent >= 100, `only ${sent} MB sent`)
    assert.ok(grew < 100, `RSS grew ${grew.toFixed(1)} MB for ${sent} MB to an offline session`)
    assert.ok(cli.lines.some((l) => l.limit === 'max_queued_messages'), 'the bound bit, and said so')
  })

  it('connections that never log in, announcing 250 MB CONNECTs, cost nothing', async () => {
    const cli = await broker()
    const grew = await peakGrowth(cli, async () => {
      const attackers = await Promise.all(Array.from({ length: 6 }, async () => rawClient({ tcp: cli.port })))
      for (const raw of attackers) raw.send(announcing(1, 250 * MB))
      // the body follows, as fast as the broker takes it
      const chunk = Buffer.alloc(MB)
      for (let i = 0; i < 64; i++) for (const raw of attackers) if (!raw.isClosed()) raw.send(chunk)
      await Promise.all(attackers.map(async (raw) => raw.closed))
    })
    assert.ok(grew < 30, `RSS grew ${grew.toFixed(1)} MB`)
    await stillServes(cli.port)
  })
})
