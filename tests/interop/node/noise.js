'use strict'
// One side of a hyperdht Noise IK handshake, run by the real hyperdht-hugin code
// (lib/noise-wrap.js + lib/messages.js) with keypear keys, driven over stdio as JSON lines.
//
//   node noise.js --role initiator|responder --seed HEX --group HEX --mid valid|other|truncated|none
//                 [--remote HEX]   (initiator: the responder's public key)
//
// stdout: {"event":"ready","publicKey":HEX}, then {"msg1":HEX} / {"msg2":HEX} and a final
// {"event":"result","accepted":bool,"reason":...,"hash","tx","rx","remotePublicKey","payload"}.
// stdin: {"msg1":HEX} for a responder, {"msg2":HEX} for an initiator.
// Exits by itself after 30 s at most.

const readline = require('readline')
const HyperDHT = require('hyperdht-hugin')
const Keychain = require('keypear')
const NoiseWrap = require('hyperdht-hugin/lib/noise-wrap')
const c = require('compact-encoding')
const messages = require('hyperdht-hugin/lib/messages')

const args = {}
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1]

const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const dhtKeys = Keychain.from(HyperDHT.keyPair(Buffer.from(args.seed, 'hex')))
const keyPair = dhtKeys.get()
const group = Keychain.from(HyperDHT.keyPair(Buffer.from(args.group, 'hex')))
const otherGroup = Keychain.from(HyperDHT.keyPair(Buffer.alloc(32).fill('some other group')))

function ourMid () {
  if (args.mid === 'valid' || args.mid === 'truncated') return group.get().sign(keyPair.publicKey)
  if (args.mid === 'other') return otherGroup.get().sign(keyPair.publicKey)
  return null
}

function ourPayload () {
  return {
    version: 1,
    error: 0,
    firewall: 1,
    holepunch: null,
    addresses4: [{ host: '127.0.0.1', port: 40000 }],
    addresses6: [],
    udx: { version: 1, reusableSocket: false, id: 7, seq: 0 },
    secretStream: {},
    relayThrough: null,
    relayAddresses: null,
    mid: ourMid()
  }
}

// A payload with the mid bit set but 24 of its 64 bytes cut off, for --mid truncated.
function sendPayload (wrap) {
  if (args.mid !== 'truncated') return wrap.send(ourPayload())
  const full = c.encode(messages.noisePayload, ourPayload())
  return wrap.handshake.send(full.subarray(0, full.length - 24))
}

// The client-side check of hyperdht-hugin's connect.js: verify mid over the remote static key.
function check (wrap, payload) {
  if (payload.version !== 1) return 'version'
  if (!payload.mid) return 'missing-mid'
  let ok = false
  try {
    ok = group.get().verify(wrap.remotePublicKey, payload.mid)
  } catch (err) {
    return 'verify-threw: ' + err.message
  }
  return ok ? null : 'bad-mid'
}

function describe (p) {
  return {
    version: p.version,
    firewall: p.firewall,
    addresses4: p.addresses4,
    udx: p.udx,
    secretStream: p.secretStream,
    mid: hex(p.mid)
  }
}

function finish (wrap, payload, reason) {
  const res = { event: 'result', accepted: reason === null, reason, payload: payload && describe(payload) }
  if (reason === null && wrap.handshake.complete) {
    const f = wrap.final()
    Object.assign(res, { hash: hex(f.hash), tx: hex(f.tx), rx: hex(f.rx), remotePublicKey: hex(f.remotePublicKey) })
  }
  out(res)
  process.exit(0)
}

setTimeout(() => { out({ event: 'error', error: 'timeout' }); process.exit(1) }, 30000).unref()

const isInitiator = args.role === 'initiator'
const wrap = new NoiseWrap(keyPair, isInitiator ? Buffer.from(args.remote, 'hex') : null)
out({ event: 'ready', publicKey: hex(keyPair.publicKey) })
if (isInitiator) out({ msg1: hex(sendPayload(wrap)) })

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const msg = JSON.parse(line)
  let payload
  try {
    payload = wrap.recv(Buffer.from(isInitiator ? msg.msg2 : msg.msg1, 'hex'))
  } catch (err) {
    return finish(wrap, null, 'decrypt: ' + err.message)
  }
  const reason = check(wrap, payload)
  if (!isInitiator && reason === null) out({ msg2: hex(sendPayload(wrap)) })
  finish(wrap, payload, reason)
})
rl.on('close', () => process.exit(0))
