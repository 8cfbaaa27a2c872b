/**
 * Letting a client in (src/broker/admission.ts, docs/behaviour.md §7): a
 * client that hangs up after its checks, while Aedes still looks up its
 * session, is not left in the broker's table.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { guardAdmission } from '../../src/broker/admission.js'
import { LimitHits } from '../../src/plugin/limits.js'
import { brokerPerTest, captureLog } from '../helpers/broker.js'
import { until } from '../helpers/messages.js'
import { connectPacket, rawClient } from '../helpers/raw.js'

const start = brokerPerTest()

describe('admission', () => {
  for (const guarded of [true, false]) {
    it(guarded
      ? 'unregisters a client that closed while Aedes was connecting it'
      : 'shows why: without it, Aedes 1.2 keeps such a client registered', async () => {
      let lookingUp: (client: { closed: boolean }) => void = () => {}
      const lookedUp = new Promise<{ closed: boolean }>((resolve) => { lookingUp = resolve })
      let release: () => void = () => {}
      const released = new Promise<void>((resolve) => { release = resolve })
      const b = await start({
        setup (broker) {
          // a store that takes its time: the client hangs up meanwhile
          const persistence = (broker as unknown as { persistence: Record<string, (...args: unknown[]) => Promise<unknown>> }).persistence
          const clean = persistence.cleanSubscriptions?.bind(persistence)
          persistence.cleanSubscriptions = async (...args) => {
            lookingUp(args[0] as { closed: boolean })
            await released
            return clean?.(...args)
          }
          if (guarded) guardAdmission(broker, { hits: new LimitHits(captureLog()), log: captureLog() })
        }
      })
      const raw = await rawClient({ tcp: b.port })
      raw.send(connectPacket({ clientId: 'fleeting' }))
      const connecting = await lookedUp
      raw.destroy()
      await until(() => connecting.closed, 2000, 'the broker to see it gone')
      release()
      const clients = (): string[] => Object.keys((b.broker as unknown as { clients: object }).clients)
      if (guarded) {
        await until(() => b.broker.connectedClients === 0 && clients().length === 0, 2000, 'no client left')
      } else {
        await until(() => clients().length === 1, 2000, 'the closed client registered')
        assert.equal(b.broker.connectedClients, 1)
      }
    })
  }
})
