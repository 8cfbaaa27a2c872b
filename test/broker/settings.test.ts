/** The broker's settings for limits and durability (docs/behaviour.md §7): defaults, the file, the flags. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadSettings } from '../../src/broker/settings.js'
import { tempFile } from '../helpers/files.js'

describe('[limits], [persistence] and [cluster] settings', () => {
  it('has every limit on with no config at all', async () => {
    const { limits, persistence, cluster } = await loadSettings(undefined)
    assert.deepEqual(limits, {
      max_packet_size: 1024 * 1024,
      max_connections: 100_000,
      max_queued_messages: 1000,
      max_queued_bytes: 64 * 1024 * 1024,
      max_queued_bytes_total: 256 * 1024 * 1024,
      max_pending_bytes: 1024 * 1024,
      message_expiry: 0,
      session_expiry: 0,
      max_auth_pending: 64
    })
    assert.deepEqual(persistence, {})
    assert.deepEqual(cluster, { max_buffered_messages: 10_000, max_buffered_bytes: 64 * 1024 * 1024, startup_timeout: 30 })
  })

  it('reads them from the file, and flags override the file', async () => {
    const file = await tempFile('limits.toml', [
      'mode = "both"',
      '[limits]',
      'max_packet_size = 4096',
      'max_queued_messages = 50',
      'message_expiry = 3600',
      '[persistence]',
      'path = "/var/lib/aedes-p2p"',
      '[cluster]',
      'max_buffered_messages = 500',
      ''
    ].join('\n'))
    const settings = await loadSettings(file, [
      { key: 'limits.max_packet_size', value: '8192', where: '--max-packet-size' },
      { key: 'persistence.path', value: '/srv/p2p', where: '--data-dir' }
    ])
    assert.equal(settings.plugin.mode, 'both')
    assert.equal(settings.limits.max_packet_size, 8192)
    assert.equal(settings.limits.max_queued_messages, 50)
    assert.equal(settings.limits.message_expiry, 3600)
    assert.equal(settings.limits.max_pending_bytes, 1024 * 1024, 'what the file leaves out keeps its default')
    assert.equal(settings.persistence.path, '/srv/p2p')
    assert.equal(settings.cluster.max_buffered_messages, 500)
  })

  it('names the setting at fault', async () => {
    const bad = async (toml: string): Promise<unknown> => loadSettings(await tempFile('bad.toml', toml)).then(() => undefined, (err: unknown) => err)
    assert.equal((await bad('[limits]\nmax_queued_bytes = 0\n') as { key: string }).key, 'limits.max_queued_bytes')
    assert.equal((await bad('[limits]\nsession_expiry = 1.5\n') as { key: string }).key, 'limits.session_expiry')
    assert.equal((await bad('[persistence]\npath = ""\n') as { key: string }).key, 'persistence.path')
    assert.equal((await bad('[persistence]\ndir = "x"\n') as { key: string }).key, 'persistence.dir')
  })
})
