// P2P messaging in an Aedes broker of your own, listening on 127.0.0.1:1883
// (PORT=0 picks a free port). From a clone: npm run build && node examples/embed.mjs
// With the package installed, the same code runs as it is.
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import { register } from 'aedes-p2p-messaging'

const broker = await Aedes.createBroker()
const p2p = await register(broker, { mode: 'prefix' }) // set your own hooks before: register() wraps them
const server = createServer(broker.handle)

server.listen(Number(process.env.PORT ?? 1883), '127.0.0.1', () => {
  const { port } = server.address()
  console.log(`MQTT with P2P (${p2p.config.mode} mode) on 127.0.0.1:${port}`)
  console.log(`try: mosquitto_sub -p ${port} -i bob -t none -v   and   mosquitto_pub -p ${port} -t p2p/bob/chat -m hi`)
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close()
    broker.close(() => { console.log('stopped') })
  })
}
