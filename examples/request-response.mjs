// Request/response between two MQTT 5 clients, over P2P. Start the broker with
// `npm start -- --mqtt5`, then: node examples/request-response.mjs
// (MQTT_URL=mqtt://host:port for another broker.)
import { Buffer } from 'node:buffer'
import mqtt from 'mqtt'

const url = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883'

// the service answers on the response topic each request names, with its correlation data
const clock = await mqtt.connectAsync(url, { clientId: 'clock', protocolVersion: 5 })
clock.on('message', (topic, payload, { properties }) => {
  if (properties?.responseTopic === undefined) return
  // p2p-sender is written by the broker: the one user property a sender cannot forge
  console.log(`clock: ${topic} asked by ${properties.userProperties['p2p-sender']}`)
  clock.publish(properties.responseTopic, new Date().toISOString(), { qos: 1, properties: { correlationData: properties.correlationData } })
})

const alice = await mqtt.connectAsync(url, { clientId: 'alice', protocolVersion: 5 })
alice.on('message', async (topic, payload, { properties }) => {
  console.log(`alice: ${payload} on ${topic}, request ${properties.correlationData}, from ${properties.userProperties['p2p-sender']}`)
  await Promise.all([alice.endAsync(), clock.endAsync()])
})
await alice.publishAsync('p2p/clock/time', '', {
  qos: 1,
  properties: { responseTopic: 'p2p/alice/answers', correlationData: Buffer.from('request-1') }
})
