/** The handle register() returns: config, reload, start/stop, immutable, counters. */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { INVALID_MODE } from '../src/index.js'
import { tempFile } from './helpers/files.js'
import { fence, inbox, waitFor } from './helpers/messages.js'
import { brokerPerTest } from './helpers/broker.js'

const broker = brokerPerTest()

describe('plugin handle', () => {
  it('reports its config', async () => {
    const b = await broker({ plugin: { mode: 'both', keyword: 'direct' } })
    assert.deepEqual(b.plugin.config, { mode: 'both', keyword: 'direct', rules: [] })
  })

  it('reads rmqtt\'s rmqtt-p2p-messaging.toml unchanged', async () => {
    const path = await tempFile('rmqtt.toml', '##--------------------------------------------------------------------\n##rmqtt-p2p-messaging\n##--------------------------------------------------------------------\n\n# prefix, suffix, both\nmode = "suffix"\n')
    const b = await broker({ plugin: { configFile: path } })
    assert.deepEqual(b.plugin.config, { mode: 'suffix', keyword: 'p2p', rules: [] })
  })

  it('reloads a new mode from an object for the next PUBLISH, without dropping clients', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    await b.plugin.reload({ mode: 'suffix' })
    await alice.publishAsync('x/p2p/bob', 'm', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.topic, 'x')
    assert.ok(alice.connected && bob.connected)
  })

  it('re-reads its config file on reload()', async () => {
    const path = await tempFile('reload.toml', 'mode = "prefix"\n')
    const b = await broker({ plugin: { configFile: path } })
    await writeFile(path, 'mode = "both"\n')
    await b.plugin.reload()
    assert.equal(b.plugin.config.mode, 'both')
  })

  it('refuses a bad reload with the exact message and keeps the running config', async () => {
    const b = await broker({ plugin: { mode: 'suffix' } })
    await assert.rejects(b.plugin.reload({ mode: 'sideways' as never }), { message: INVALID_MODE })
    const path = await tempFile('bad.toml', 'mode = "sideways"\n')
    await assert.rejects(b.plugin.reload(path), (err: Error) => err.message.endsWith(INVALID_MODE))
    assert.equal(b.plugin.config.mode, 'suffix')
  })

  it('treats P2P topics as ordinary while stopped, and routes them again after start()', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    await bob.subscribeAsync('p2p/bob/#', { qos: 1 })
    const got = inbox(bob)
    b.plugin.stop()
    assert.equal(b.plugin.running, false)
    await alice.publishAsync('p2p/bob/x', 'while stopped', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.topic, 'p2p/bob/x')
    b.plugin.start()
    await alice.publishAsync('p2p/bob/x', 'running', { qos: 1 })
    await waitFor(got, 2)
    assert.equal(got[1]?.topic, 'x')
  })

  it('refuses stop() and reload() when immutable', async () => {
    const b = await broker({ plugin: { immutable: true } })
    assert.equal(b.plugin.immutable, true)
    assert.throws(() => { b.plugin.stop() }, /immutable/)
    await assert.rejects(b.plugin.reload({ mode: 'both' }), /immutable/)
    assert.equal(b.plugin.running, true)
  })

  it('counts received, delivered, queued and dropped by reason', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const dave = await b.connect('dave', { clean: false })
    await dave.endAsync()
    const got = inbox(bob)
    await alice.publishAsync('p2p/bob/a', '1', { qos: 1 })
    await alice.publishAsync('p2p/bob/b', '2', { qos: 0 })
    await alice.publishAsync('p2p/dave/c', '3', { qos: 1 })
    await alice.publishAsync('p2p//c', '4', { qos: 1 })
    await alice.publishAsync('p2p/nobody/d', '5', { qos: 1 })
    await waitFor(got, 2)
    await fence(alice, bob, got)
    assert.deepEqual(b.plugin.counters, {
      received: 5,
      delivered: 2,
      queued: 1,
      forwarded: 0,
      dropped: { malformed: 1, no_session: 1, refused: 0 }
    })
  })
})
