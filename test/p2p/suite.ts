/**
 * The P2P behaviour (docs/behaviour.md §1–3, the limits of §7, and the identities of §8), written once and run on every
 * topology: each *.test.ts beside this file hands it one.
 */
import { after, before, describe } from 'node:test'
import type { Topology } from '../helpers/topology.js'
import { composition } from './composition.js'
import { delivery } from './delivery.js'
import { limits } from './limits.js'
import { offline } from './offline.js'
import { ownership } from './ownership.js'
import { privacy } from './privacy.js'
import { qos } from './qos.js'
import { takeover } from './takeover.js'

export function p2pSuite (topology: Topology): void {
  describe(`P2P on ${topology.name}`, () => {
    before(async () => { await topology.prepare() })
    after(async () => { await topology.dispose() })
    delivery(topology)
    qos(topology)
    privacy(topology)
    offline(topology)
    takeover(topology)
    ownership(topology)
    composition(topology)
    limits(topology)
  })
}
