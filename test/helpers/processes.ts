/**
 * Broker processes, as operators run them (the CLI), and the clients
 * connected to them: everything started through here is stopped by the
 * hook handed in (`after` for a file, `afterEach` for each test).
 */
import type { IClientOptions, MqttClient } from 'mqtt'
import { startCli, type RunningCli } from '../../harness/cli.js'
import { connectClient, connectCollectingAt, type Session } from './broker.js'

export interface Processes {
  /** a broker on a free port, logging at info level, with these flags too */
  start (...args: string[]): Promise<RunningCli>
  /** the brokers started here and still running, oldest first */
  readonly running: readonly RunningCli[]
  /** SIGKILLs a broker started here */
  kill (broker: RunningCli): Promise<void>
  /** stops every broker started here with `signal` */
  stopAll (signal: NodeJS.Signals): Promise<void>
  client (broker: RunningCli, clientId: string, options?: IClientOptions): Promise<MqttClient>
  /** connects and collects from before the CONNACK, as a restored session's queue follows it at once */
  collecting (broker: RunningCli, clientId: string, options?: IClientOptions): Promise<Session>
}

export function brokerProcesses (cleanUp: (fn: () => Promise<void>) => void): Processes {
  const running: RunningCli[] = []
  const clients: MqttClient[] = []
  cleanUp(async () => {
    await Promise.all(clients.splice(0).map(async (c) => c.endAsync(true)))
    await Promise.all(running.splice(0).map(async (b) => b.stop('SIGKILL')))
  })
  return {
    running,
    async start (...args) {
      const broker = await startCli(['--port', '0', '--log-level', 'info', ...args])
      running.push(broker)
      return broker
    },
    async kill (broker) {
      await broker.stop('SIGKILL')
      running.splice(running.indexOf(broker), 1)
    },
    async stopAll (signal) {
      await Promise.all(running.splice(0).map(async (b) => b.stop(signal)))
    },
    async client (broker, clientId, options = {}) {
      const c = await connectClient(broker.port, clientId, options)
      clients.push(c)
      return c
    },
    async collecting (broker, clientId, options = {}) {
      const session = await connectCollectingAt(broker.port, clientId, options)
      clients.push(session.client)
      return session
    }
  }
}
