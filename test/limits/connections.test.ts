/**
 * max_connections (docs/behaviour.md §7): past it, a new connection is
 * answered CONNACK 3 (server unavailable), and the clients already
 * connected are untouched.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import mqttPacket from 'mqtt-packet'
import { startCli } from '../../harness/cli.js'
import { connackCode, connectClient } from '../helpers/broker.js'
import { collect, until, waitFor } from '../helpers/messages.js'
import { connectPacket, rawClient } from '../helpers/raw.js'
import { limitHits, serverPerTest } from '../helpers/server.js'

const server = serverPerTest()

/** What the broker answers a client's CONNECT: the CONNACK code, or 'closed'. */
async function answerTo (port: number, clientId: string, protocolVersion: 4 | 5 = 4): Promise<number | 'closed'> {
  return connackCode(port, clientId, { protocolVersion })
}

describe('max_connections', () => {
  it('answers CONNACK 3 past the limit and keeps serving the clients it has', async () => {
    const s = await server({ limits: { max_connections: 3 } })
    const port = s.addresses.mqtt?.port ?? 0
    const alice = await connectClient(port, 'alice')
    const bob = await connectClient(port, 'bob')
    const carol = await connectClient(port, 'carol')
    assert.equal(await answerTo(port, 'dave'), 3)
    const got = collect(bob)
    await alice.publishAsync('p2p/bob/still', 'here', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(await limitHits(s, 'max_connections'), 1)
    // room again once a client leaves
    await carol.endAsync()
    const deadline = Date.now() + 5000
    let answer = await answerTo(port, 'dave')
    while (answer !== 0 && Date.now() < deadline) answer = await answerTo(port, 'dave')
    assert.equal(answer, 0)
  })

  it('counts connections that never log in', async () => {
    const s = await server({ limits: { max_connections: 2 } })
    const port = s.addresses.mqtt?.port ?? 0
    const idle = [await rawClient({ tcp: port }), await rawClient({ tcp: port })]
    assert.equal(await answerTo(port, 'late'), 3)
    for (const raw of idle) raw.destroy()
  })

  it('answers an MQTT 5 client past the limit with reason code 0x88, server unavailable', async () => {
    const s = await server({ limits: { max_connections: 1 } })
    const port = s.addresses.mqtt?.port ?? 0
    const first = await connectClient(port, 'first')
    assert.equal(await answerTo(port, 'v5', 5), 0x88)
    await first.endAsync()
  })

  it('closes a refused connection that never sends its CONNECT, and one that sends something else', async () => {
    const s = await server({ limits: { max_connections: 1 } })
    const port = s.addresses.mqtt?.port ?? 0
    const first = await connectClient(port, 'first')
    const silent = await rawClient({ tcp: port })
    const rude = await rawClient({ tcp: port })
    rude.send({ cmd: 'pingreq' })
    await rude.closed
    // REFUSAL_WAIT_MS later
    await Promise.race([silent.closed, new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('silent connection still open')) }, 8000))])
    assert.deepEqual(silent.packets, [])
    await first.endAsync()
  })

  it('answers the CONNECT of a refused connection even when it comes in pieces', async () => {
    const s = await server({ limits: { max_connections: 1 } })
    const port = s.addresses.mqtt?.port ?? 0
    const first = await connectClient(port, 'first')
    const raw = await rawClient({ tcp: port })
    const bytes = mqttPacket.generate(connectPacket({ clientId: 'pieces' }))
    for (const byte of bytes) raw.send(Buffer.from([byte]))
    const connack = await raw.next('connack') as { returnCode?: number }
    assert.equal(connack.returnCode, 3)
    await raw.closed
    await first.endAsync()
  })
})

describe('stopping', () => {
  it('ends connections that never logged in, so a stop does not wait for them', async () => {
    const cli = await startCli(['--port', '0', '--log-level', 'info'])
    await until(() => cli.lines.some((l) => l.msg === 'P2P messaging ready'), 5000, 'the broker started')
    const idle = await rawClient({ tcp: cli.port })
    const half = await rawClient({ tcp: cli.port })
    half.send(mqttPacket.generate(connectPacket({ clientId: 'half' })).subarray(0, 5))
    const started = Date.now()
    const code = await cli.stop('SIGTERM')
    assert.equal(code, 0)
    // Aedes alone would wait 30 s (connectTimeout) for their CONNECT
    assert.ok(Date.now() - started < 5000, `stopped after ${Date.now() - started} ms`)
    await Promise.all([idle.closed, half.closed])
  })
})
