/** What `--redis` accepts (docs/behaviour.md §10), and what it refuses before anything connects. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadSettings } from '../../src/broker/settings.js'
import { redactedUrl, redisTarget } from '../../src/cluster/redis-target.js'

describe('--redis URLs', () => {
  it('names one Redis, a Redis Cluster, or a Sentinel set and its master', () => {
    assert.deepEqual(redisTarget('redis://127.0.0.1:6379/2'), { kind: 'single', url: 'redis://127.0.0.1:6379/2' })
    assert.deepEqual(redisTarget('redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002'), {
      kind: 'cluster', tls: false, nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: '::1', port: 7002 }]
    })
    assert.equal((redisTarget('REDIS+CLUSTER://h1:7000') as { kind: string }).kind, 'cluster')
    assert.deepEqual(redisTarget('rediss+cluster://app:s%40cret@h1:7000'), { kind: 'cluster', tls: true, username: 'app', password: 's@cret', nodes: [{ host: 'h1', port: 7000 }] })
    assert.deepEqual(redisTarget('redis+sentinel://:pw@s1:26379,s2:26379/my%20master'), {
      kind: 'sentinel', tls: false, password: 'pw', name: 'my master', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }]
    })
  })

  it('refuses what it cannot use, saying what is wrong, before anything listens', async () => {
    const bad: Array<[string, RegExp]> = [
      ['http://127.0.0.1:6379', /must be a redis:\/\/ or rediss:\/\/ URL/],
      ['redis+cluster://h1', /"h1" is not one/],
      ['redis+cluster://h1:99999', /"h1:99999" is not one/],
      ['redis+cluster://h1:7000/0', /no path for a Redis Cluster/],
      ['redis+sentinel://s1:26379', /end with the master name/],
      ['redis+sentinel://s1:26379/', /end with the master name/],
      ['redis+shard://h1:1', /must be a redis:\/\//],
      ['redis+cluster://:%zz@h1:7000', /percent-encode/]
    ]
    for (const [url, message] of bad) {
      await assert.rejects(loadSettings(undefined, [{ key: 'cluster.redis', value: url, where: '--redis' }]), { code: 'ERR_P2P_CONFIG', key: 'cluster.redis', message }, url)
    }
  })

  it('keeps passwords out of what it logs, wherever the URL holds one', () => {
    assert.equal(redactedUrl('redis://:hunter2@h:6379/?password=hunter3'), 'redis://:***@h:6379/?password=***')
    assert.equal(redactedUrl('redis+cluster://app:hunter2@h1:7000,h2:7001'), 'redis+cluster://app:***@h1:7000,h2:7001')
    assert.equal(redactedUrl('redis+sentinel://s1:26379/m'), 'redis+sentinel://s1:26379/m')
    // a password may hold '@' and '/': all of it goes, up to the last '@'
    assert.equal(redactedUrl('redis://u:p@ss/w@h:1'), 'redis://u:***@h:1')
    assert.equal(redactedUrl('redis+sentinel://:s/x@h:1/m'), 'redis+sentinel://:***@h:1/m')
    const refused = loadSettings(undefined, [{ key: 'cluster.redis', value: 'redis+cluster://:hunter2@h1', where: '--redis' }])
    return assert.rejects(refused, (err: Error) => !err.message.includes('hunter2'))
  })
})
