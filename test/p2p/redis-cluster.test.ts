import { twoNodesOnRedisCluster } from '../helpers/topology.js'
import { p2pSuite } from './suite.js'

p2pSuite(twoNodesOnRedisCluster())
