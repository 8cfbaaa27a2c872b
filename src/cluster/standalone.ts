/** One broker on its own: a target not connected here is connected nowhere. */
import type { Cluster } from './strategy.js'

export function standalone (): Cluster {
  return {
    indexMayLag: false,
    attach () {},
    // a stored message waits in the session queue for the target to come back
    elsewhere: (_p2p, _payload, _qos, stored) => stored === undefined ? 'no_session' : 'queued'
  }
}
