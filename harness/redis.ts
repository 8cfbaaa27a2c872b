/** A throwaway redis-server on a free loopback port. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './cli.js'

export interface TestRedis {
  url: string
  port: number
  pid (): number
  stop (): Promise<void>
  /** starts again on the same port, with the data it had (append-only file) */
  start (): Promise<void>
}

export interface RedisOptions {
  /** every write on disk before it is acknowledged (default true), so a restart loses nothing */
  durable?: boolean
}

export async function startRedis ({ durable = true }: RedisOptions = {}): Promise<TestRedis> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'p2p-redis-'))
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    const persistence = durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
    child = proc
    await new Promise<void>((resolve, reject) => {
      let out = ''
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('Ready to accept connections')) resolve()
      })
      proc.once('exit', (code) => { reject(new Error(`redis-server exited with ${code}: ${out}`)) })
      // not installed, or not runnable: an error to report, not an unhandled event
      proc.once('error', reject)
    })
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: () => child?.pid ?? -1,
    start,
    async stop () {
      // a killed process has a signal code and no exit code
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
  }
}
