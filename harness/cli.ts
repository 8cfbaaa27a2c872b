/** The broker CLI as a child process, the way an operator runs it. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url))

export interface RunningCli {
  child: ChildProcess
  port: number
  lines: Array<Record<string, unknown>>
  stderr: () => string
  /** sends `signal` and resolves with the exit code */
  stop (signal?: NodeJS.Signals): Promise<number | null>
}

/** `nodeFlags` go to Node itself, before the CLI's own arguments. */
export async function startCli (args: string[], nodeFlags: string[] = []): Promise<RunningCli> {
  const child = spawn(process.execPath, [...nodeFlags, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: Array<Record<string, unknown>> = []
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  let buffered = ''
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString()
      let nl
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>
        buffered = buffered.slice(nl + 1)
        lines.push(line)
        if (line.listener === 'mqtt') resolve(line.port as number)
      }
    })
    child.once('exit', (code) => { reject(new Error(`broker exited with ${code}: ${stderr}`)) })
  })
  const exited = once(child, 'exit')
  return {
    child,
    port,
    lines,
    stderr: () => stderr,
    async stop (signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal)
      const [code] = await exited
      return code as number | null
    }
  }
}

/** Runs the CLI expecting it to exit on its own (bad input). */
export async function runCli (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit')
  return { code: code as number | null, stdout, stderr }
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
}

/** True when something accepts TCP connections on the port. */
export async function isListening (port: number): Promise<boolean> {
  const { connect } = await import('node:net')
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}
