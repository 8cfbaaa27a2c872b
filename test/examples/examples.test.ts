/**
 * The examples run as a user runs them, from the repository: the embedding
 * example against the package as built (dist/), the request/response one
 * against the broker with --mqtt5, the cluster script with its own Redis and
 * three broker processes, the systemd unit checked by systemd and its
 * command line run.
 */
import assert from 'node:assert/strict'
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, describe, it } from 'node:test'
import { freePort, isListening } from '../../harness/cli.js'
import { connectClient } from '../helpers/broker.js'
import { collect, waitFor } from '../helpers/messages.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const running: ChildProcess[] = []
// each example runs in a process group of its own: a failed test leaves no node or Redis behind
after(() => {
  for (const child of running) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    } catch { /* already gone */ }
  }
})

/** Starts `command`, resolving once its output has `count` lines matching `pattern`, with their first groups. */
async function start (command: string, args: string[], env: Record<string, string>, pattern: RegExp, count: number): Promise<{ child: ChildProcess, found: string[] }> {
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  running.push(child)
  const found: string[] = []
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${command} did not come up in 20 s:\n${output}`)) }, 20_000)
    const read = (d: Buffer): void => {
      output += d.toString()
      found.length = 0
      for (const m of output.matchAll(new RegExp(pattern, 'g'))) found.push(m[1] ?? '')
      if (found.length >= count) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout?.on('data', read)
    child.stderr?.on('data', read)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${command} exited with ${code}:\n${output}`)) })
  })
  return { child, found }
}

/** The first of three ports in a row that are free now, below the range the OS hands out to outgoing connections. */
async function freeRun (): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const first = 20_000 + Math.floor(Math.random() * 10_000)
    if ((await Promise.all([first, first + 1, first + 2].map(isListening))).every((up) => !up)) return first
  }
  throw new Error('no three free ports in a row')
}

async function p2pBetween (fromPort: number, toPort: number): Promise<void> {
  const alice = await connectClient(fromPort, 'ex-alice')
  const bob = await connectClient(toPort, 'ex-bob')
  const got = collect(bob)
  await alice.publishAsync('p2p/ex-bob/chat', 'hi', { qos: 1 })
  await waitFor(got, 1)
  assert.equal(got[0]?.topic, 'chat')
  await alice.endAsync()
  await bob.endAsync()
}

describe('examples', () => {
  it('embed.mjs: an Aedes of your own with the plugin, listening, stopped by SIGTERM', async () => {
    const { child, found } = await start(process.execPath, ['examples/embed.mjs'], { PORT: '0' }, /on 127\.0\.0\.1:(\d+)/, 1)
    const port = Number(found[0])
    await p2pBetween(port, port)
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    assert.deepEqual(await exited, [0, null])
  })

  it('request-response.mjs: a request and its answer between two MQTT 5 clients, on the broker run with --mqtt5', async () => {
    const broker = await start(process.execPath, ['dist/cli/main.js', '--mqtt5', '--port', '0'], {}, /"listener":"mqtt","host":"127\.0\.0\.1","port":(\d+)/, 1)
    const child = spawn(process.execPath, ['examples/request-response.mjs'], { cwd: root, env: { ...process.env, MQTT_URL: `mqtt://127.0.0.1:${broker.found[0] ?? ''}` }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    running.push(child)
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
    // 'close' comes once its output is read to the end
    const [code] = await once(child, 'close') as [number | null]
    clearTimeout(timer)
    assert.equal(code, 0, output)
    assert.match(output, /^clock: time asked by alice$/m)
    assert.match(output, /^alice: \S+ on answers, request request-1, from clock$/m)
    broker.child.kill('SIGTERM')
  })

  it('cluster.sh: three nodes on one Redis, P2P from node 1 to node 3, and everything stopped by SIGTERM', async () => {
    const redisPort = await freePort()
    const base = await freeRun()
    const env = { REDIS_PORT: String(redisPort), BASE_PORT: String(base) }
    const { child, found } = await start('bash', ['examples/cluster.sh'], env, /"listener":"mqtt","host":"127\.0\.0\.1","port":(\d+)/, 3)
    assert.deepEqual(found.map(Number).sort(), [base, base + 1, base + 2])
    await p2pBetween(base, base + 2)
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    assert.deepEqual(await exited, [0, null])
    for (const port of [base, base + 1, base + 2, redisPort]) assert.equal(await isListening(port), false, `nothing left on ${port}`)
  })

  it('cluster.sh: stops every process it started when one node cannot start', async () => {
    const redisPort = await freePort()
    const base = await freeRun()
    const squatter = createServer().listen(base + 1, '127.0.0.1')
    await once(squatter, 'listening')
    try {
      const child = spawn('bash', ['examples/cluster.sh'], { cwd: root, env: { ...process.env, REDIS_PORT: String(redisPort), BASE_PORT: String(base) }, stdio: ['ignore', 'ignore', 'pipe'], detached: true })
      running.push(child)
      let stderr = ''
      child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
      const [code] = await once(child, 'exit') as [number | null]
      assert.notEqual(code, 0)
      assert.match(stderr, new RegExp(`cannot listen for mqtt on 127\\.0\\.0\\.1:${base + 1}`))
      assert.match(stderr, /stopping the others/)
      for (const port of [base, base + 2, redisPort]) assert.equal(await isListening(port), false, `nothing left on ${port}`)
    } finally {
      squatter.close()
    }
  })

  it('systemd/aedes-p2p.service: its command line starts the broker, which stops on SIGTERM', async () => {
    const unit = await readFile(root + UNIT, 'utf8')
    const pkg = JSON.parse(await readFile(root + 'package.json', 'utf8')) as { name: string, bin: Record<string, string> }
    const [node, script, ...flags] = execStart(unit)
    assert.equal(node, '/usr/bin/node')
    assert.equal(script, `/opt/aedes-p2p/node_modules/${pkg.name}/${(pkg.bin['aedes-p2p'] ?? '').replace(/^\.\//, '')}`, 'the bin, installed with npm install --prefix /opt/aedes-p2p')
    // here: this Node, the build, the example config, a data directory of its own and any free port
    const data = await mkdtemp(join(tmpdir(), 'p2p-unit-'))
    const here = flags.map((flag, i) => flags[i - 1] === '--config' ? 'config/example.toml' : flags[i - 1] === '--data-dir' ? data : flag)
    const { child } = await start(process.execPath, ['dist/cli/main.js', ...here, '--port', '0'], {}, /"msg":"(P2P messaging ready)"/, 1)
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    assert.deepEqual(await exited, [0, null])
  })

  const analyze = spawnSync('systemd-analyze', ['--version']).error === undefined
  it('systemd/aedes-p2p.service: systemd-analyze verify finds nothing to say about it', { skip: analyze ? false : 'systemd-analyze is not installed' }, async () => {
    // verify checks that ExecStart's program exists: on a machine whose node
    // is not /usr/bin/node, a copy names this one
    const dir = await mkdtemp(join(tmpdir(), 'p2p-unit-'))
    const copy = join(dir, 'aedes-p2p.service')
    const unit = await readFile(root + UNIT, 'utf8')
    await writeFile(copy, unit.replace(/^ExecStart=\/usr\/bin\/node /m, `ExecStart=${process.execPath} `))
    const { stderr } = await promisify(execFile)('systemd-analyze', ['verify', copy])
    // lines about other units (the targets it names, on this machine) are not its own
    assert.deepEqual(stderr.split('\n').filter((line) => line.includes('aedes-p2p.service')), [])
  })
})

const UNIT = 'examples/systemd/aedes-p2p.service'

/** ExecStart's program and arguments; the unit quotes none. */
function execStart (unit: string): string[] {
  const line = /^ExecStart=(.*)$/m.exec(unit)?.[1]
  assert.ok(line !== undefined, 'the unit has an ExecStart')
  return line.trim().split(/\s+/)
}
