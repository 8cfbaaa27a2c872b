// the shared P2P suite with MQTT 5 clients on Aedes 2, and what MQTT 5 adds
import { speakMqtt5 } from '../helpers/protocol.js'
import { oneBroker } from '../helpers/topology.js'
import { p2pSuite } from '../p2p/suite.js'
import { mqtt5 } from './behaviour.js'

speakMqtt5()
p2pSuite(oneBroker)
mqtt5(oneBroker)
