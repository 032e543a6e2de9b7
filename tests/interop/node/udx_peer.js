'use strict'
// One end of a secret-stream connection on a real udx-native stream, for interop tests and
// benchmarks. Given the handshake result (tx, rx, hash) it runs @hyperswarm/secret-stream on a
// `framed` udx-native stream exactly as hyperdht does, and plays one role:
//   sink: read to the end, report {"event":"done","bytes","sha256"}, then end
//   source: write --bytes bytes (random, 64 KiB messages, honouring backpressure), report
//           {"event":"sent","bytes","sha256"}, end, read to the end
//   echo: write every message back; end when the peer ends
//   ping: --count round trips of 32 bytes against an echoing peer, reported as {"event":"pings"}
// Arguments: --id N --remote-id N --remote-port P [--remote-host 127.0.0.1] --initiator 0|1
//            --tx HEX --rx HEX --hash HEX --mode M [--bytes N] [--wait-first 0|1] [--timeout S]
// With --wait-first 1 the stream is connected by the first packet that arrives (hyperdht's server
// hook) instead of to --remote-port up front.
// stdout: {"event":"ready","port":P,"id":N} first; {"event":"close","error":...} last.

const crypto = require('crypto')
const readline = require('readline')
const UDX = require('udx-native')
const NoiseSecretStream = require('@hyperswarm/secret-stream')

const args = { 'remote-host': '127.0.0.1', mode: 'sink', bytes: '0', 'wait-first': '0', timeout: '120' }
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1]
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const udx = new UDX()
const socket = udx.createSocket()
socket.bind(0, '127.0.0.1')
const remoteId = Number(args['remote-id'])
// As hyperdht does: the secret stream starts once the UDX stream is connected (a server
// connects in its firewall hook, on the first packet from the client).
const stream = new NoiseSecretStream(args.initiator === '1', null, {
  autoStart: false,
  keepAlive: 5000
})
const handshake = {
  tx: Buffer.from(args.tx, 'hex'),
  rx: Buffer.from(args.rx, 'hex'),
  hash: Buffer.from(args.hash, 'hex'),
  publicKey: Buffer.alloc(32),
  remotePublicKey: Buffer.alloc(32)
}
const raw = udx.createStream(Number(args.id), {
  framed: true,
  firewall (sock, port, host) {
    if (!raw.connected) {
      raw.connect(sock, remoteId, port, host)
      stream.start(raw, { handshake })
    }
    return false
  }
})
if (args['wait-first'] !== '1') {
  raw.connect(socket, remoteId, Number(args['remote-port']), args['remote-host'])
  stream.start(raw, { handshake })
}

const timer = setTimeout(() => { out({ event: 'error', error: 'timeout' }); process.exit(1) }, Number(args.timeout) * 1000)
timer.unref()

let received = 0
let firstData = 0
const hash = crypto.createHash('sha256')
let onPong = null
stream.on('data', (data) => {
  if (received === 0) firstData = performance.now()
  received += data.length
  if (onPong) return onPong()
  if (args.mode === 'sink') hash.update(data)
  if (args.mode === 'echo') stream.write(data)
})
stream.on('end', () => {
  if (args.mode === 'sink') {
    const seconds = (performance.now() - firstData) / 1000
    out({ event: 'done', bytes: received, sha256: hash.digest('hex'), seconds })
  }
  if (args.mode !== 'source') stream.end()
})
stream.on('error', (err) => out({ event: 'error', error: err.code || err.message }))
stream.on('close', () => {
  out({ event: 'close', received })
  socket.close()
  setTimeout(() => process.exit(0), 50)
})

async function source (total) {
  const sent = crypto.createHash('sha256')
  let n = 0
  while (n < total) {
    const chunk = crypto.randomBytes(Math.min(65536, total - n))
    sent.update(chunk)
    n += chunk.length
    if (!stream.write(chunk)) await new Promise((resolve) => stream.once('drain', resolve))
  }
  out({ event: 'sent', bytes: n, sha256: sent.digest('hex') })
  stream.end()
}

// stdin: {"cmd":"destroy"} destroys the stream (the peer must see a DESTROY).
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (JSON.parse(line).cmd === 'destroy') stream.destroy()
})

// ping: --count round trips of a 32-byte message against an echoing peer.
async function ping (count) {
  const rtts = []
  const payload = Buffer.alloc(32, 7)
  for (let i = 0; i < count; i++) {
    const start = performance.now()
    await new Promise((resolve) => { onPong = resolve; stream.write(payload) })
    rtts.push(performance.now() - start)
  }
  onPong = null
  rtts.sort((a, b) => a - b)
  out({ event: 'pings', count, median_ms: rtts[Math.floor(count / 2)], p99_ms: rtts[Math.floor(count * 0.99)] })
  stream.end()
}

out({ event: 'ready', port: socket.address().port, id: Number(args.id) })
if (args.mode === 'source') source(Number(args.bytes))
if (args.mode === 'ping') ping(Number(args.count || 10000))
