'use strict'
// A small network of real Node DHT nodes on one host, driven over stdio as JSON lines.
//
//   node dht_network.js --nodes N [--bootstrap 127.0.0.1:P,...] [--host 127.0.0.1]
//                       [--impl hyperdht|dht-rpc] [--timeout SECONDS]
//
// Without --bootstrap the first node is a bootstrapper (persistent at once) and the others
// bootstrap from it; with --bootstrap every node bootstraps from that list. Other nodes are
// created with {ephemeral: false, firewalled: false}, one after another, each fully bootstrapped.
// First stdout line: {"event":"ready","bootstrap":[...],"nodes":[info...]}.
// Then commands on stdin, {"id":n,"cmd":...}, answered {"id":n,"result":...} or {"id":n,"error":...}:
//   findNode {node, target}  -> {closest: [{host,port,id}]} (the query's closest replies)
//   table {node}             -> [{host,port,id}]
//   info {node}              -> {host,port,id,ephemeral,firewalled}
//   ping {node, host, port}  -> {id, to}
//   spawn {bootstrap}        -> info of a new node (next index)
//   destroy {node} / suspend {node} / resume {node} (dht-rpc's suspend/resume: a laptop's sleep)
//   stats {node}             -> {tx: [internal commands sent by command], tableSize,
//                               checks: {sweeps, sweep, fullRow, downHint} (see countChecks)}
//   listen {node, seed}      -> {publicKey} (a hyperdht server); relays {node} -> its announcer's relays
//   announce {node, topic, seed, relayAddresses} / unannounce {node, topic, seed}
//   lookup {node, topic}     -> [{publicKey, relayAddresses}]
//   immutablePut {node, value} -> {hash}; immutableGet {node, hash} -> {value} | null
//   mutablePut {node, seed, value, seq}; mutableGet {node, publicKey, seq} -> {seq, value} | null
// (hyperdht commands need --impl hyperdht; values, keys and seeds are hex)
//   exit                     -> destroys everything and exits 0
// Exits by itself when stdin closes or after --timeout seconds (default 120).

const dgram = require('dgram')
const readline = require('readline')

const args = { nodes: '5', host: '127.0.0.1', impl: 'hyperdht', timeout: '120' }
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1]

const DHT = args.impl === 'dht-rpc' ? require('dht-rpc') : require('hyperdht')
const host = args.host
const nodes = []
const servers = new Map()

const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const parseList = (s) => s.split(',').filter(Boolean).map((a) => {
  const [h, p] = a.split(':')
  return { host: h, port: Number(p) }
})

function freePort () {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4')
    s.once('error', reject)
    s.bind(0, host, () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function info (node) {
  const addr = node.address()
  return { host: addr.host, port: addr.port, id: hex(node.id), ephemeral: node.ephemeral, firewalled: node.firewalled }
}

// Which of dht-rpc's table checks sent a node's PINGs: its sweep (_pingSome), a full row
// (_repingAndSwap) or a DOWN_HINT (_check outside the sweep). Counted by wrapping the methods.
function countChecks (node) {
  const checks = { sweeps: 0, sweep: 0, fullRow: 0, downHint: 0 }
  const pingSome = node._pingSome.bind(node)
  const check = node._check.bind(node)
  const repingAndSwap = node._repingAndSwap.bind(node)
  let sweeping = false
  node._pingSome = () => {
    checks.sweeps++
    sweeping = true
    try { pingSome() } finally { sweeping = false }
  }
  node._check = (n) => {
    if (sweeping) checks.sweep++
    else checks.downHint++
    check(n)
  }
  node._repingAndSwap = (newNode, oldNode) => {
    checks.fullRow++
    repingAndSwap(newNode, oldNode)
  }
  node.checks = checks
}

async function addNode (bootstrap) {
  const node = new DHT({ ephemeral: false, firewalled: false, host, port: await freePort(), bootstrap })
  countChecks(node)
  nodes.push(node)
  await node.fullyBootstrapped()
  return node
}

async function handle (msg) {
  const node = nodes[msg.node || 0]
  switch (msg.cmd) {
    case 'findNode': {
      const q = node.findNode(Buffer.from(msg.target, 'hex'))
      await q.finished()
      return { closest: q.closestReplies.map((r) => ({ host: r.from.host, port: r.from.port, id: hex(r.from.id) })) }
    }
    case 'table':
      return node.table.toArray().map((n) => ({ host: n.host, port: n.port, id: hex(n.id) }))
    case 'info':
      return info(node)
    case 'ping': {
      const res = await node.ping({ host: msg.host, port: msg.port })
      return { id: hex(res.from.id), to: res.to }
    }
    case 'announce': {
      const keyPair = DHT.keyPair(Buffer.from(msg.seed, 'hex'))
      const relays = (msg.relayAddresses || []).map((a) => ({ host: a[0], port: a[1] }))
      await node.announce(Buffer.from(msg.topic, 'hex'), keyPair, relays).finished()
      return { publicKey: hex(keyPair.publicKey) }
    }
    case 'unannounce': {
      const keyPair = DHT.keyPair(Buffer.from(msg.seed, 'hex'))
      await node.unannounce(Buffer.from(msg.topic, 'hex'), keyPair)
      return null
    }
    case 'lookup': {
      const found = new Map()
      for await (const reply of node.lookup(Buffer.from(msg.topic, 'hex'))) {
        for (const peer of reply.peers) {
          found.set(hex(peer.publicKey), peer.relayAddresses.map((a) => [a.host, a.port]))
        }
      }
      return [...found].map(([publicKey, relayAddresses]) => ({ publicKey, relayAddresses }))
    }
    case 'immutablePut': {
      const { hash } = await node.immutablePut(Buffer.from(msg.value, 'hex'))
      return { hash: hex(hash) }
    }
    case 'immutableGet': {
      const res = await node.immutableGet(Buffer.from(msg.hash, 'hex'))
      return res ? { value: hex(res.value) } : null
    }
    case 'mutablePut': {
      const keyPair = DHT.keyPair(Buffer.from(msg.seed, 'hex'))
      await node.mutablePut(keyPair, Buffer.from(msg.value, 'hex'), { seq: msg.seq })
      return { publicKey: hex(keyPair.publicKey) }
    }
    case 'mutableGet': {
      const res = await node.mutableGet(Buffer.from(msg.publicKey, 'hex'), { seq: msg.seq || 0, latest: true })
      return res ? { seq: res.seq, value: hex(res.value) } : null
    }
    case 'spawn':
      return info(await addNode(parseList(msg.bootstrap.join(','))))
    case 'destroy':
      await node.destroy()
      return null
    case 'suspend':
      await node.suspend()
      return null
    case 'resume':
      await node.resume()
      return null
    case 'stats':
      // internal commands sent and received (index: PING 0, PING_NAT 1, FIND_NODE 2, DOWN_HINT 3)
      return { tx: node.io.stats.commands.map((c) => c.tx), tableSize: node.table.toArray().length, checks: node.checks || null }
    case 'listen': {
      const keyPair = DHT.keyPair(Buffer.from(msg.seed, 'hex'))
      const server = node.createServer()
      await server.listen(keyPair)
      servers.set(msg.node || 0, server)
      return { publicKey: hex(keyPair.publicKey) }
    }
    case 'relays': {
      const server = servers.get(msg.node || 0)
      return server._announcer.relays.map((r) => [r.relayAddress.host, r.relayAddress.port])
    }
    case 'exit':
      await shutdown(0)
      return null
    default:
      throw new Error('unknown command ' + msg.cmd)
  }
}

let stopping = false
async function shutdown (code) {
  if (stopping) return
  stopping = true
  await Promise.allSettled(nodes.map((n) => n.destroy()))
  process.exit(code)
}

async function main () {
  setTimeout(() => shutdown(0), Number(args.timeout) * 1000).unref()
  let bootstrap
  const count = Number(args.nodes)
  if (args.bootstrap) {
    bootstrap = parseList(args.bootstrap)
  } else {
    const port = await freePort()
    const first = DHT.bootstrapper(port, host, { host })
    nodes.push(first)
    await first.fullyBootstrapped()
    bootstrap = [{ host, port }]
  }
  while (nodes.length < count) await addNode(bootstrap)
  out({ event: 'ready', bootstrap: bootstrap.map((b) => b.host + ':' + b.port), nodes: nodes.map(info) })

  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', async (line) => {
    let msg
    try {
      msg = JSON.parse(line)
      out({ id: msg.id, result: await handle(msg) })
    } catch (err) {
      out({ id: msg && msg.id, error: err.message })
    }
  })
  rl.on('close', () => shutdown(0))
}

main().catch((err) => {
  out({ event: 'error', error: err.stack })
  shutdown(1)
})
