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
  stop (): Promise<void>
  /** starts again on the same port, with the data it had (append-only file) */
  start (): Promise<void>
}

export async function startRedis (): Promise<TestRedis> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'p2p-redis-'))
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
    child = proc
    await new Promise<void>((resolve, reject) => {
      let out = ''
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('Ready to accept connections')) resolve()
      })
      proc.once('exit', (code) => { reject(new Error(`redis-server exited with ${code}: ${out}`)) })
    })
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    async stop () {
      if (child === undefined || child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
  }
}
