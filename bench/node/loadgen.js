'use strict'
// dht-rpc load generator: keeps --window requests in flight at one target for --seconds and
// prints one JSON line {sent, answered, lost, seconds, rttMedianMs, rttP99Ms}.
// Requests are built by hand (dht-rpc envelope, version 3): PING or FIND_NODE (random target).
//
//   node loadgen.js --host 127.0.0.1 --port P --command ping|find_node [--window 128] [--seconds 10]

const dgram = require('dgram')
const crypto = require('crypto')

const args = { host: '127.0.0.1', window: '128', seconds: '10', command: 'ping' }
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1]

const host = args.host
const port = Number(args.port)
const windowSize = Number(args.window)
const seconds = Number(args.seconds)
const findNode = args.command === 'find_node'

const to = Buffer.from([...host.split('.').map(Number), port & 0xff, port >> 8])
const inflight = new Map() // tid -> send time (ms, hrtime)
const rtts = []
let tid = crypto.randomInt(65536)
let sent = 0
let answered = 0
let lost = 0
let running = true

const socket = dgram.createSocket('udp4')

function request () {
  tid = (tid + 1) & 0xffff
  while (inflight.has(tid)) tid = (tid + 1) & 0xffff
  const head = Buffer.from([0x03, findNode ? 0x0c : 0x04, tid & 0xff, tid >> 8])
  const body = findNode ? Buffer.concat([Buffer.from([0x02]), crypto.randomBytes(32)]) : Buffer.from([0x00])
  inflight.set(tid, performance.now())
  sent++
  socket.send(Buffer.concat([head, to, body]), port, host)
}

socket.on('message', (msg) => {
  if (msg.length < 4 || msg[0] !== 0x13) return
  const t = msg[2] | (msg[3] << 8)
  const start = inflight.get(t)
  if (start === undefined) return
  inflight.delete(t)
  answered++
  if (rtts.length < 200000) rtts.push(performance.now() - start)
  if (running) request()
})

socket.bind(0, '127.0.0.1', () => {
  const started = performance.now()
  for (let i = 0; i < windowSize; i++) request()
  const sweep = setInterval(() => {
    const now = performance.now()
    for (const [t, at] of inflight) {
      if (now - at > 1000) {
        inflight.delete(t)
        lost++
        if (running) request()
      }
    }
  }, 100)
  setTimeout(() => {
    running = false
    clearInterval(sweep)
    const elapsed = (performance.now() - started) / 1000
    rtts.sort((a, b) => a - b)
    const pick = (q) => (rtts.length ? rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))] : null)
    process.stdout.write(JSON.stringify({
      command: args.command, sent, answered, lost, seconds: elapsed, rttMedianMs: pick(0.5), rttP99Ms: pick(0.99)
    }) + '\n')
    socket.close()
  }, seconds * 1000)
})
