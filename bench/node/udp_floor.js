'use strict'
// One end of a raw UDP ping/echo on loopback with Node's dgram (no protocol): the floor of a
// Node round trip on this machine.  bench/udp_floor.py runs the pair.
//
//   node udp_floor.js echo PORT            (answers every datagram to its sender, until killed)
//   node udp_floor.js ping COUNT PORT      (prints {"p50us": ...} after COUNT round trips)

const dgram = require('dgram')

const [role, count, port] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])]
const socket = dgram.createSocket('udp4')
if (role === 'echo') {
  socket.on('message', (message, from) => socket.send(message, from.port, from.address))
  socket.bind(0, '127.0.0.1', () => console.log(JSON.stringify({ port: socket.address().port })))
} else {
  const rtts = []
  const payload = Buffer.alloc(72)
  let start = 0n
  const ping = () => { start = process.hrtime.bigint(); socket.send(payload, port, '127.0.0.1') }
  socket.on('message', () => {
    rtts.push(Number(process.hrtime.bigint() - start) / 1000)
    if (rtts.length < count) return ping()
    rtts.sort((a, b) => a - b)
    console.log(JSON.stringify({ p50us: rtts[rtts.length >> 1] }))
    socket.close()
  })
  socket.bind(0, '127.0.0.1', ping)
}
