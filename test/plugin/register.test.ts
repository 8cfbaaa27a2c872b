/** register() and its handle: config, reload, start/stop, startup, immutable, counters, and the errors' codes. */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { Aedes } from 'aedes'
import { emitterCluster, INVALID_MODE, register, type P2POptions } from '../../src/index.js'
import { brokerPerTest, captureLog } from '../helpers/broker.js'
import { tempFile } from '../helpers/files.js'
import { fence, collect, waitFor } from '../helpers/messages.js'

const broker = brokerPerTest()

/** The error's code (and key) match: callers branch on those, not on the message. */
function coded (code: string, key?: string) {
  return (err: Error & { code?: string, key?: string }): boolean => {
    assert.equal(err.code, code, err.message)
    if (key !== undefined) assert.equal(err.key, key)
    return true
  }
}

/** A bare broker for register() itself, closed after `use`. */
async function withAedes (use: (aedes: Aedes) => Promise<void>): Promise<void> {
  const aedes = await Aedes.createBroker()
  try {
    await use(aedes)
  } finally {
    await new Promise<void>((resolve) => { aedes.close(() => { resolve() }) })
  }
}

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
    const got = collect(bob)
    await b.plugin.reload({ mode: 'suffix' })
    await alice.publishAsync('x/p2p/bob', 'm', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.topic, 'x')
    assert.ok(alice.connected && bob.connected)
  })

  it('keeps the running value of every key a reload object leaves out', async () => {
    const rules = [{ action: 'deny' as const, target: 'admin' }]
    const b = await broker({ plugin: { keyword: 'direct', rules } })
    await b.plugin.reload({ mode: 'both' })
    assert.deepEqual(b.plugin.config, { mode: 'both', keyword: 'direct', rules })
  })

  it('re-reads its config file on reload()', async () => {
    const path = await tempFile('reload.toml', 'mode = "prefix"\n')
    const b = await broker({ plugin: { configFile: path } })
    await writeFile(path, 'mode = "both"\n')
    await b.plugin.reload()
    assert.equal(b.plugin.config.mode, 'both')
  })

  it('keeps the inline options given to register() over the file on every reload from a file, as at register time', async () => {
    const path = await tempFile('inline.toml', 'mode = "prefix"\nkeyword = "direct"\n')
    const b = await broker({ plugin: { configFile: path, mode: 'both' } })
    assert.deepEqual(b.plugin.config, { mode: 'both', keyword: 'direct', rules: [] })
    await writeFile(path, 'mode = "suffix"\nkeyword = "dm"\n')
    await b.plugin.reload()
    assert.deepEqual(b.plugin.config, { mode: 'both', keyword: 'dm', rules: [] })
    await b.plugin.reload(await tempFile('other.toml', 'mode = "prefix"\n'))
    assert.deepEqual(b.plugin.config, { mode: 'both', keyword: 'p2p', rules: [] })
  })

  it('refuses reload() with no argument and no configFile, saying the inline options stay', async () => {
    const b = await broker({ plugin: { mode: 'both' } })
    await assert.rejects(b.plugin.reload(), (err: Error) => coded('ERR_P2P_CONFIG', 'configFile')(err) && /inline options stay as given/.test(err.message))
    assert.equal(b.plugin.config.mode, 'both')
  })

  it('refuses a bad reload with the exact message and ERR_P2P_CONFIG, and keeps the running config', async () => {
    const b = await broker({ plugin: { mode: 'suffix' } })
    await assert.rejects(b.plugin.reload({ mode: 'sideways' as never }), { message: INVALID_MODE, code: 'ERR_P2P_CONFIG', key: 'mode' })
    const path = await tempFile('bad.toml', 'mode = "sideways"\n')
    await assert.rejects(b.plugin.reload(path), (err: Error) => coded('ERR_P2P_CONFIG', 'mode')(err) && err.message.endsWith(INVALID_MODE))
    await assert.rejects(b.plugin.reload({ mdoe: 'both' } as never), coded('ERR_P2P_CONFIG', 'mdoe'))
    await assert.rejects(b.plugin.reload(), coded('ERR_P2P_CONFIG', 'configFile'))
    assert.equal(b.plugin.config.mode, 'suffix')
  })

  it('treats P2P topics as ordinary while stopped, and routes them again after start()', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    await bob.subscribeAsync('p2p/bob/#', { qos: 1 })
    const got = collect(bob)
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

  it('installs stopped with startup: false, as rmqtt\'s default_startup does, until start()', async () => {
    const b = await broker({ plugin: { startup: false } })
    assert.equal(b.plugin.running, false)
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    await bob.subscribeAsync('p2p/bob/#', { qos: 1 })
    const got = collect(bob)
    await alice.publishAsync('p2p/bob/x', 'not yet', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.topic, 'p2p/bob/x', 'an ordinary topic while stopped')
    assert.equal(b.plugin.counters.received, 0)
    b.plugin.start()
    await alice.publishAsync('p2p/bob/x', 'now', { qos: 1 })
    await waitFor(got, 2)
    assert.equal(got[1]?.topic, 'x')
  })

  it('refuses stop() and reload() with ERR_P2P_IMMUTABLE when immutable', async () => {
    const b = await broker({ plugin: { immutable: true } })
    assert.equal(b.plugin.immutable, true)
    assert.throws(() => { b.plugin.stop() }, coded('ERR_P2P_IMMUTABLE'))
    await assert.rejects(b.plugin.reload({ mode: 'both' }), coded('ERR_P2P_IMMUTABLE'))
    assert.equal(b.plugin.running, true)
    assert.equal(b.plugin.config.mode, 'prefix')
  })

  it('counts received, delivered, queued and dropped by reason', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const dave = await b.connect('dave', { clean: false })
    await dave.endAsync()
    const got = collect(bob)
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
      dropped: { malformed: 1, no_session: 1, refused: 0, queue_full: 0, slow_consumer: 0, expired: 0, cluster_unavailable: 0, too_large: 0 },
      limits: {}
    })
  })
})

describe('register()', () => {
  it('refuses a second registration on one broker with ERR_P2P_ALREADY_REGISTERED, also when both run at once', async () => {
    await withAedes(async (aedes) => {
      await register(aedes, { logger: captureLog() })
      await assert.rejects(register(aedes, { logger: captureLog() }), coded('ERR_P2P_ALREADY_REGISTERED'))
    })
    await withAedes(async (aedes) => {
      const path = await tempFile('slow.toml', 'mode = "both"\n')
      const results = await Promise.allSettled([
        register(aedes, { configFile: path, logger: captureLog() }),
        register(aedes, { configFile: path, logger: captureLog() })
      ])
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'])
    })
  })

  it('rejects an option it does not know, naming it and listing every option', async () => {
    await withAedes(async (aedes) => {
      await assert.rejects(register(aedes, { mdoe: 'suffix' } as never), (err: Error) => {
        coded('ERR_P2P_CONFIG', 'mdoe')(err)
        for (const known of ['mode', 'keyword', 'rules', 'configFile', 'authorize', 'immutable', 'startup', 'cluster', 'logger']) {
          assert.ok(err.message.includes(known), `${known} in: ${err.message}`)
        }
        return true
      })
    })
  })

  it('rejects bad options with ERR_P2P_CONFIG and the key', async () => {
    await withAedes(async (aedes) => {
      const cases: Array<[P2POptions, string]> = [
        [{ mode: 'x' as never }, 'mode'],
        [{ keyword: 'a/b' }, 'keyword'],
        [{ rules: [{ action: 'maybe' as never }] }, 'rules[0].action'],
        [{ authorize: 'yes' as never }, 'authorize'],
        [{ cluster: {} as never }, 'cluster'],
        [{ configFile: '/nonexistent/p2p.toml' }, 'config'],
        [null as never, 'options']
      ]
      for (const [options, key] of cases) await assert.rejects(register(aedes, options === null ? options : { logger: captureLog(), ...options }), coded('ERR_P2P_CONFIG', key))
    })
  })

  it('refuses a cluster strategy that already serves another broker', async () => {
    const cluster = emitterCluster()
    await withAedes(async (first) => {
      await register(first, { cluster, logger: captureLog() })
      await withAedes(async (second) => {
        const hooks = [second.publish, second.authenticate, second.authorizeSubscribe, second.authorizeForward, second.preConnect]
        await assert.rejects(register(second, { cluster, logger: captureLog() }), coded('ERR_P2P_CONFIG', 'cluster'))
        assert.deepEqual([second.publish, second.authenticate, second.authorizeSubscribe, second.authorizeForward, second.preConnect], hooks, 'nothing installed')
        await register(second, { logger: captureLog() })
      })
    })
  })

  it('refuses what is not an Aedes broker with ERR_P2P_NOT_AEDES', async () => {
    for (const notAedes of [undefined, null, {}, { publish () {} }, 'aedes']) {
      await assert.rejects(register(notAedes as never), coded('ERR_P2P_NOT_AEDES'))
    }
  })

  it('refuses an Aedes outside the supported versions with ERR_P2P_AEDES_VERSION', async () => {
    for (const version of ['0.51.3', '1.1.0', '3.0.0']) {
      await withAedes(async (aedes) => {
        Object.defineProperty(aedes, 'version', { value: version })
        await assert.rejects(register(aedes), (err: Error) => coded('ERR_P2P_AEDES_VERSION')(err) && err.message.includes(version))
      })
    }
  })
})
