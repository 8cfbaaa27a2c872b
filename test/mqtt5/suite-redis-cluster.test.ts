// the shared P2P suite with MQTT 5 clients on Aedes 2, and what MQTT 5 adds, on a 3-master Redis Cluster
import { speakMqtt5 } from '../helpers/protocol.js'
import { twoNodesOnRedisCluster } from '../helpers/topology.js'
import { p2pSuite } from '../p2p/suite.js'
import { mqtt5 } from './behaviour.js'

speakMqtt5()
const topology = twoNodesOnRedisCluster()
p2pSuite(topology)
mqtt5(topology)
