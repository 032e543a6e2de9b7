'use strict'
// One end of a secret-stream connection on a real udx-native stream, for interop tests and
// benchmarks. Given the handshake result (tx, rx, hash) it runs @hyperswarm/secret-stream on a
// `framed` udx-native stream exactly as hyperdht does, and plays one role:
//   sink: read to the end, report {"event":"done","bytes","sha256"}, then end
//   source: write --bytes bytes (random, 64 KiB messages, honouring backpressure), report
//           {"event":"sent","bytes","sha256"}, end, read to the end
//   echo: write every message back; end when the peer ends
//   pingpong: like echo (the other side measures round trips)
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
const raw = udx.createStream(Number(args.id), {
  framed: true,
  firewall (sock, port, host) {
    if (!raw.connected) raw.connect(sock, remoteId, port, host)
    return false
  }
})
if (args['wait-first'] !== '1') raw.connect(socket, remoteId, Number(args['remote-port']), args['remote-host'])

const stream = new NoiseSecretStream(args.initiator === '1', raw, {
  keepAlive: 5000,
  handshake: {
    tx: Buffer.from(args.tx, 'hex'),
    rx: Buffer.from(args.rx, 'hex'),
    hash: Buffer.from(args.hash, 'hex'),
    publicKey: Buffer.alloc(32),
    remotePublicKey: Buffer.alloc(32)
  }
})

const timer = setTimeout(() => { out({ event: 'error', error: 'timeout' }); process.exit(1) }, Number(args.timeout) * 1000)
timer.unref()

let received = 0
const hash = crypto.createHash('sha256')
stream.on('data', (data) => {
  received += data.length
  if (args.mode === 'sink') hash.update(data)
  if (args.mode === 'echo' || args.mode === 'pingpong') stream.write(data)
})
stream.on('end', () => {
  if (args.mode === 'sink') out({ event: 'done', bytes: received, sha256: hash.digest('hex') })
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

out({ event: 'ready', port: socket.address().port, id: Number(args.id) })
if (args.mode === 'source') source(Number(args.bytes))
