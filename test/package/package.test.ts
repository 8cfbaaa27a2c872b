/** What `npm publish` would ship, and what a user importing the package gets. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { SUPPORTED_AEDES } from '../../src/plugin/host.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))

interface Manifest {
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  devDependencies: Record<string, string>
  bin: Record<string, string>
  license: string
  keywords?: string[]
  repository?: { url: string }
}

async function manifest (): Promise<Manifest> {
  return JSON.parse(await readFile(root + 'package.json', 'utf8')) as Manifest
}

/** The tarball's file list, without running the build again (other tests use dist/ meanwhile). */
async function packed (): Promise<string[]> {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root })
  const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>
  return (pack?.files ?? []).map((f) => f.path)
}

describe('the package', () => {
  it('ships the build, the example config, the systemd unit, the docs, LICENSE and CHANGELOG, and nothing of the sources, tests, benchmarks or other examples', async () => {
    const files = await packed()
    for (const needed of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'config/example.toml', 'examples/systemd/aedes-p2p.service', 'docs/behaviour.md', 'README.md', 'LICENSE', 'CHANGELOG.md', 'package.json']) {
      assert.ok(files.includes(needed), `${needed} is shipped`)
    }
    // the unit is for an installed package (its comments copy it from there); the other examples run from a clone
    for (const file of files) assert.doesNotMatch(file, /^(src|test|build|bench|harness)\/|^examples\/(?!systemd\/aedes-p2p\.service$)/, `${file} is not shipped`)
  })

  it('carries its sources inside its source maps, so no map points at a file it does not ship', async () => {
    const maps = (await packed()).filter((f) => f.endsWith('.map'))
    assert.ok(maps.length > 0)
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(await readFile(root + map, 'utf8')) as { sources: string[], sourcesContent?: Array<string | null> }
      assert.equal(sourcesContent?.length, sources.length, map)
      assert.ok(sourcesContent.every((s) => typeof s === 'string' && s.length > 0), map)
    }
  })

  it('takes Aedes as a peer, in the range register() checks', async () => {
    const pkg = await manifest()
    assert.equal(pkg.peerDependencies.aedes, SUPPORTED_AEDES)
    assert.equal(pkg.dependencies.aedes, undefined)
    assert.ok(pkg.devDependencies.aedes !== undefined, 'the tests run against a real Aedes')
  })

  it('says where it lives and what it is, under the MIT licence it ships', async () => {
    const pkg = await manifest()
    assert.match(pkg.repository?.url ?? '', /^git\+https:\/\//)
    assert.ok((pkg.keywords ?? []).includes('aedes'))
    assert.equal(pkg.license, 'MIT')
    assert.match(await readFile(root + 'LICENSE', 'utf8'), /^MIT License/)
  })

  it('has a bin that runs with node', async () => {
    const pkg = await manifest()
    const main = await readFile(root + (pkg.bin['aedes-p2p'] ?? ''), 'utf8')
    assert.ok(main.startsWith('#!/usr/bin/env node\n'))
  })

  it('exports the API only', async () => {
    const api = await import('aedes-p2p-messaging')
    assert.deepEqual(Object.keys(api).sort(), ['CLUSTER_LIMIT_DEFAULTS', 'ConfigError', 'INVALID_MODE', 'LIMIT_DEFAULTS', 'P2PError', 'PLUGIN_DEFAULTS', 'SENDER_PROPERTY', 'emitterCluster', 'register', 'standalone'])
  })
})
