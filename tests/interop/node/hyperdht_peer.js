'use strict'
// A Node hyperdht peer (hyperdht-hugin with keypear keys, or upstream hyperdht) on a loopback
// network (or --host, e.g. 0.0.0.0 inside the NAT lab), as a server or a client, driven by
// arguments; JSON lines on stdout.
//
//   node hyperdht_peer.js --bootstrap 127.0.0.1:P --seed HEX --role server|client
//        [--impl hugin|upstream] [--group HEX] [--firewall 1|0] [--remote HEX] [--bytes N]
//        [--host 127.0.0.1] [--timeout S] [--punch 1] [--fast-open 0] [--relay-through HEX]
//        [--holepunch 0] [--until-direct 1]
// --punch 1 forces NAT holepunching on one host, as hyperdht's own "force holepunch" test:
// an ephemeral node without the quick firewall check (so it stays firewalled), a server that
// keeps its local addresses to itself and a client that never takes a local connection.
// --fast-open 0: the client sends no probe before the first holepunch round (connect's fastOpen).
// --relay-through HEX: a blind relay's key (connect's / createServer's relayThrough); --holepunch 0
// never punches (the server's holepunch: false, the client's holepunch callback saying no).
// server: {"event":"listening","publicKey"}, then {"event":"connection","remotePublicKey"} and
//         echoes every message; {"event":"refused","reason"} when its firewall declines.
// client: connects to --remote, writes --bytes random bytes in 16 KiB messages, reads the echo
//         back and reports {"event":"echoed","bytes","sha256","ok"} or {"event":"error","code"}.
//         --until-direct 1: keeps writing (at most 512 KiB ahead of the echo) until the relayed
//         stream moved to a direct path, then --bytes more, then checks the echo as above.
// Both roles print {"event":"direct","remoteHost","remotePort"} when hyperdht moves a relayed
// stream to a direct path (udx's remote-changed).
// Exits by itself after --timeout seconds (default 60) or when stdin closes.

const crypto = require('crypto')
const readline = require('readline')
const Keychain = require('keypear')

const args = { impl: 'hugin', firewall: '1', bytes: '0', timeout: '60', host: '127.0.0.1', punch: '0', 'fast-open': '1', holepunch: '1' }
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1]
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const hex = (b) => Buffer.from(b).toString('hex')
const bootstrap = args.bootstrap.split(',').map((a) => ({ host: a.split(':')[0], port: Number(a.split(':')[1]) }))

const punch = args.punch === '1'
const dhtOpts = punch ? { bootstrap, host: args.host, quickFirewall: false, ephemeral: true } : { bootstrap, host: args.host }
const hugin = args.impl === 'hugin'
const HyperDHT = hugin ? require('hyperdht-hugin') : require('hyperdht')
let dht
let keyPair
let group = null
if (hugin) {
  const dhtKeys = Keychain.from(HyperDHT.keyPair(Buffer.from(args.seed, 'hex')))
  group = Keychain.from(HyperDHT.keyPair(Buffer.from(args.group, 'hex')))
  keyPair = dhtKeys.get()
  const sig = group.get().sign(keyPair.publicKey)
  dht = new HyperDHT(dhtOpts, sig, dhtKeys, group)
} else {
  keyPair = HyperDHT.keyPair(Buffer.from(args.seed, 'hex'))
  dht = new HyperDHT(dhtOpts)
}

async function shutdown (code) {
  await dht.destroy().catch(() => {})
  process.exit(code)
}
setTimeout(() => { out({ event: 'timeout' }); shutdown(0) }, Number(args.timeout) * 1000).unref()
readline.createInterface({ input: process.stdin }).on('close', () => shutdown(0))

// hyperswarm-hugin's barrier: refuse a handshake without our group's signature over the key.
function firewall (remotePublicKey, payload) {
  if (!hugin || args.firewall !== '1') return false
  let ok = false
  try {
    ok = !!payload.mid && group.get().verify(remotePublicKey, payload.mid)
  } catch {}
  if (!ok) out({ event: 'refused', reason: payload.mid ? 'bad-mid' : 'missing-mid' })
  return !ok
}

async function server () {
  const relayThrough = args['relay-through'] ? Buffer.from(args['relay-through'], 'hex') : null
  const s = dht.createServer({ firewall, shareLocalAddress: !punch, relayThrough, holepunch: args.holepunch === '0' ? false : undefined }, (socket) => {
    out({ event: 'connection', remotePublicKey: hex(socket.remotePublicKey) })
    reportDirect(socket)
    socket.on('data', (data) => socket.write(data))
    socket.on('end', () => socket.end())
    socket.on('error', () => {})
  })
  await s.listen(keyPair)
  out({ event: 'listening', publicKey: hex(keyPair.publicKey), punches: dht.stats.punches })
}

function reportDirect (socket) {
  const raw = socket.rawStream
  raw.on('remote-changed', () => out({ event: 'direct', remoteHost: raw.remoteHost, remotePort: raw.remotePort }))
}

async function client () {
  await dht.fullyBootstrapped()
  const started = Date.now()
  const socket = dht.connect(Buffer.from(args.remote, 'hex'), {
    keyPair,
    localConnection: !punch,
    fastOpen: args['fast-open'] !== '0',
    relayThrough: args['relay-through'] ? Buffer.from(args['relay-through'], 'hex') : null,
    holepunch: args.holepunch === '0' ? () => false : undefined
  })
  const untilDirect = args['until-direct'] === '1'
  let total = untilDirect ? Infinity : Number(args.bytes)
  const sent = crypto.createHash('sha256')
  const back = crypto.createHash('sha256')
  let received = 0
  let written = 0
  function pump () {
    while (written < total && written - received <= 512 * 1024) {
      const chunk = crypto.randomBytes(Math.min(16384, total - written))
      sent.update(chunk)
      written += chunk.length
      socket.write(chunk)
    }
  }
  socket.on('open', () => {
    out({ event: 'open', remotePublicKey: hex(socket.remotePublicKey), ms: Date.now() - started, punches: dht.stats.punches })
    if (untilDirect) {
      socket.rawStream.on('remote-changed', () => {
        out({ event: 'direct', remoteHost: socket.rawStream.remoteHost, remotePort: socket.rawStream.remotePort })
        total = written + Number(args.bytes)
        pump()
      })
      socket.on('data', pump)
      pump()
      return
    }
    for (let n = 0; n < total; n += 16384) {
      const chunk = crypto.randomBytes(Math.min(16384, total - n))
      sent.update(chunk)
      socket.write(chunk)
    }
    if (total === 0) socket.end()
  })
  socket.on('data', (data) => {
    back.update(data)
    received += data.length
    if (received === total) {
      const a = sent.digest('hex')
      const b = back.digest('hex')
      out({ event: 'echoed', bytes: received, sha256: b, ok: a === b })
      socket.end()
    }
  })
  socket.on('error', (err) => out({ event: 'error', code: err.code || err.message, ms: Date.now() - started }))
  socket.on('close', () => out({ event: 'close' }))
}

;(args.role === 'server' ? server() : client()).catch((err) => {
  out({ event: 'error', code: err.code || err.message })
})
