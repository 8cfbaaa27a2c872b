import { twoBrokersSharingAnEmitter } from '../helpers/topology.js'
import { p2pSuite } from './suite.js'

p2pSuite(twoBrokersSharingAnEmitter)
