'use strict'
// A Node swarm peer: hyperswarm-hugin (keypear keys, the Hugin apps' way) or upstream hyperswarm,
// on a loopback network (or --host, e.g. 0.0.0.0 inside the NAT lab), joined to one topic; JSON
// lines on stdout.
//
//   node swarm_peer.js --bootstrap 127.0.0.1:P --seed HEX --topic HEX [--group HEX]
//        [--impl hugin|upstream] [--role both|server|client] [--mode echo|source|sink|ping] [--bytes N]
//        [--count N]
//        [--host 127.0.0.1] [--timeout S] [--start-at EPOCH_MS] [--trace 1] [--relay-through HEX]
// {"event":"ready","publicKey"} once the topic is flushed; {"event":"connection","remotePublicKey",
// "client","connectMs"} per connection (connectMs: from the swarm's dht.connect call to the open,
// client side only, by performance.now() to 0.01 ms); {"event":"connect-error","code","ms"} for every outgoing connect the swarm
// makes that fails (hyperswarm retries it; e.g. HOLEPUNCH_ABORTED); echo mode echoes every
// message; --trace 1 adds {"event":"trace","name":"peerHandshake"|"peerHolepunch","start","ms",
// "err"} for every handshake / holepunch round trip through a DHT relay (start: ms since the
// script began; wraps hyperdht's private _router); source mode writes --bytes random
// bytes to each connection in 16 KiB messages and reports {"event":"echoed","remotePublicKey",
// "bytes","ok"} when the same bytes came back; sink mode reads --bytes and reports {"event":"sunk",
// "remotePublicKey","bytes","seconds"} (first byte to last), then ends; ping mode (bench/all.py)
// makes --count round trips of 32 bytes and reports {"event":"pings","count","median_ms","p99_ms"}.
// {"event":"close","remotePublicKey"} per close. The connection line also has "remoteAddress"
// (HOST:PORT its raw stream sends to: a relay's while relayed); {"event":"direct","remotePublicKey",
// "remoteAddress"} when a relayed stream moves to a punched path (udx's remote-changed).
// Exits by itself after --timeout seconds (default 60) or when stdin closes.

const crypto = require('crypto')
const readline = require('readline')
const Keychain = require('keypear')

const args = { impl: 'hugin', role: 'both', mode: 'echo', bytes: '0', timeout: '60', host: '127.0.0.1' }
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1]
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const hex = (b) => Buffer.from(b).toString('hex')
const hundredths = (ms) => Math.round(ms * 100) / 100
const bootstrap = args.bootstrap.split(',').map((a) => ({ host: a.split(':')[0], port: Number(a.split(':')[1]) }))
const topic = Buffer.from(args.topic, 'hex')

// --relay-through HEX: a blind relay's key (hyperswarm's relayThrough: used when our NAT is random
// or after a failed punch)
const relayThrough = args['relay-through'] ? Buffer.from(args['relay-through'], 'hex') : null
let swarm
if (args.impl === 'hugin') {
  const HyperDHT = require('hyperdht-hugin')
  const Hyperswarm = require('hyperswarm-hugin')
  const dhtKeys = Keychain.from(HyperDHT.keyPair(Buffer.from(args.seed, 'hex')))
  const group = Keychain.from(HyperDHT.keyPair(Buffer.from(args.group, 'hex')))
  const sig = group.get().sign(dhtKeys.get().publicKey)
  // The apps let the swarm make its DHT (bound to every interface); we bind --host (loopback).
  const dht = new HyperDHT({ bootstrap, host: args.host }, sig, dhtKeys, group)
  swarm = new Hyperswarm({ dht, relayThrough }, sig, dhtKeys, group)
} else {
  const HyperDHT = require('hyperdht')
  const Hyperswarm = require('hyperswarm')
  const keyPair = HyperDHT.keyPair(Buffer.from(args.seed, 'hex'))
  swarm = new Hyperswarm({ dht: new HyperDHT({ bootstrap, host: args.host }), keyPair, relayThrough })
}

// Every outgoing connect the swarm makes: its start time, and its error if it fails (hyperswarm
// itself swallows these and retries later).
const connectStarted = new WeakMap()
const dhtConnect = swarm.dht.connect.bind(swarm.dht)
swarm.dht.connect = (...connectArgs) => {
  const started = performance.now()
  const socket = dhtConnect(...connectArgs)
  connectStarted.set(socket, started)
  socket.on('error', (err) => out({ event: 'connect-error', code: err.code || String(err), ms: Math.round(performance.now() - started) }))
  return socket
}

if (args.trace === '1') {
  const began = Date.now()
  const router = swarm.dht._router
  for (const name of ['peerHandshake', 'peerHolepunch']) {
    const original = router[name].bind(router)
    router[name] = async (...callArgs) => {
      const start = Date.now()
      const trace = (err) => out({ event: 'trace', name, start: start - began, ms: Date.now() - start, err })
      try {
        const reply = await original(...callArgs)
        trace(null)
        return reply
      } catch (err) {
        trace(err.code || String(err))
        throw err
      }
    }
  }
}

async function shutdown (code) {
  await swarm.destroy().catch(() => {})
  await swarm.dht.destroy().catch(() => {})
  process.exit(code)
}
setTimeout(() => { out({ event: 'timeout' }); shutdown(0) }, Number(args.timeout) * 1000).unref()
readline.createInterface({ input: process.stdin }).on('close', () => shutdown(0))

swarm.on('connection', (conn, info) => {
  const remote = hex(conn.remotePublicKey)
  const started = connectStarted.get(conn)
  const raw = conn.rawStream
  const where = () => (raw && raw.remoteHost ? raw.remoteHost + ':' + raw.remotePort : null)
  out({ event: 'connection', remotePublicKey: remote, client: info.client, connectMs: started ? hundredths(performance.now() - started) : null, remoteAddress: where() })
  // hyperdht 6.34 moves a relayed stream to a punched path with changeRemote
  if (raw) raw.on('remote-changed', () => out({ event: 'direct', remotePublicKey: remote, remoteAddress: where() }))
  conn.on('error', () => {})
  conn.on('close', () => out({ event: 'close', remotePublicKey: remote }))
  if (args.mode === 'echo') {
    conn.on('data', (data) => conn.write(data))
    return
  }
  if (args.mode === 'sink') {
    const total = Number(args.bytes)
    let received = 0
    let first = 0n
    conn.on('data', (data) => {
      if (!received) first = process.hrtime.bigint()
      received += data.length
      if (received >= total) {
        out({ event: 'sunk', remotePublicKey: remote, bytes: received, seconds: Number(process.hrtime.bigint() - first) / 1e9 })
      }
    })
    conn.on('end', () => conn.end())
    return
  }
  if (args.mode === 'ping') {
    const count = Number(args.count || '1000')
    const payload = Buffer.alloc(32, 7)
    const rtts = []
    let start = 0n
    const next = () => { start = process.hrtime.bigint(); conn.write(payload) }
    conn.on('data', () => {
      rtts.push(Number(process.hrtime.bigint() - start) / 1e6)
      if (rtts.length < count) return next()
      rtts.sort((a, b) => a - b)
      out({ event: 'pings', count, median_ms: rtts[Math.floor(count / 2)], p99_ms: rtts[Math.floor(count * 0.99)] })
      conn.end()
    })
    next()
    return
  }
  const total = Number(args.bytes)
  const sent = crypto.createHash('sha256')
  const back = crypto.createHash('sha256')
  let received = 0
  for (let n = 0; n < total; n += 16384) {
    const chunk = crypto.randomBytes(Math.min(16384, total - n))
    sent.update(chunk)
    conn.write(chunk)
  }
  conn.on('data', (data) => {
    back.update(data)
    received += data.length
    if (received >= total) out({ event: 'echoed', remotePublicKey: remote, bytes: received, ok: hex(sent.digest()) === hex(back.digest()) })
  })
})

async function main () {
  const startAt = Number(args['start-at'] || 0)
  if (startAt > Date.now()) await new Promise((resolve) => setTimeout(resolve, startAt - Date.now()))
  const discovery = swarm.join(topic, { server: args.role !== 'client', client: args.role !== 'server' })
  await discovery.flushed()
  out({ event: 'ready', publicKey: hex(swarm.keyPair.publicKey) })
}
main().catch((err) => { out({ event: 'error', message: String(err) }); shutdown(1) })
