'use strict'
// A Node blind relay (blind-relay's Server on an upstream hyperdht node): relays for anyone
// who connects, as the hyperdht tests set one up.  JSON lines on stdout.
//
//   node relay_server.js --bootstrap 127.0.0.1:P [--host 127.0.0.1] [--seed HEX] [--timeout S]
// {"event":"relay","publicKey","host","port"} once listening; {"event":"pair","isInitiator"} per
// matched pairing side.  Exits by itself after --timeout seconds (default 60) or when stdin closes.

const crypto = require('crypto')
const readline = require('readline')
const HyperDHT = require('hyperdht')
const RelayServer = require('blind-relay').Server

const args = { host: '127.0.0.1', timeout: '60' }
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1]
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const bootstrap = args.bootstrap.split(',').map((a) => ({ host: a.split(':')[0], port: Number(a.split(':')[1]) }))
const seed = args.seed ? Buffer.from(args.seed, 'hex') : crypto.randomBytes(32)

const dht = new HyperDHT({ bootstrap, host: args.host })
const relay = new RelayServer({ createStream: (opts) => dht.createRawStream({ ...opts, framed: true }) })

async function shutdown (code) {
  await relay.close().catch(() => {})
  await dht.destroy().catch(() => {})
  process.exit(code)
}
setTimeout(() => { out({ event: 'timeout' }); shutdown(0) }, Number(args.timeout) * 1000).unref()
readline.createInterface({ input: process.stdin }).on('close', () => shutdown(0))

async function main () {
  const keyPair = HyperDHT.keyPair(seed)
  const server = dht.createServer((socket) => {
    socket.on('error', () => {})
    const session = relay.accept(socket, { id: socket.remotePublicKey })
    session.on('error', () => {})
    session.on('pair', (isInitiator) => out({ event: 'pair', isInitiator }))
  })
  await server.listen(keyPair)
  await dht.fullyBootstrapped()
  out({ event: 'relay', publicKey: keyPair.publicKey.toString('hex'), host: dht.host, port: dht.port })
}

main().catch((err) => { out({ event: 'error', code: err.code || err.message }); shutdown(1) })
