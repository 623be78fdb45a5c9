// A small IPFS peer for the cache's push/pull tests, built from helia's components: a
// blockstore-core blockstore with @helia/unixfs on top, speaking the two HTTP APIs the cache uses:
//   POST /api/v0/dag/import        (Kubo RPC: multipart body with one CAR; every block hash-checked)
//   GET  /ipfs/<cid>?format=car     (trustless gateway: the DAG under <cid> as a CAR)
//   GET  /api/v0/ls?arg=<cid>      (names and sizes @helia/unixfs lists under a folder)
// Why not `createHelia()`: helia 7's libp2p stack imports undici 7, which needs Node >= 22 (this
// machine has Node 20), and a networked node is not needed offline. Prints "listening <port>".
import http from 'node:http'
import { MemoryBlockstore } from 'blockstore-core'
import { unixfs } from '@helia/unixfs'
import { defaultLogger } from '@libp2p/logger'
import { CarReader, CarWriter } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const blockstore = new MemoryBlockstore()
const fs = unixfs({ blockstore, logger: defaultLogger() })

async function collect (req) {
  const parts = []
  for await (const chunk of req) parts.push(chunk)
  return Buffer.concat(parts)
}

function carFromMultipart (body, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType || '')
  if (!m) return body
  const boundary = Buffer.from('--' + (m[1] || m[2]))
  const start = body.indexOf(boundary)
  const headerEnd = body.indexOf('\r\n\r\n', start)
  const end = body.indexOf(Buffer.concat([Buffer.from('\r\n'), boundary]), headerEnd)
  return body.subarray(headerEnd + 4, end)
}

async function importCar (bytes) {
  const reader = await CarReader.fromBytes(bytes)
  for await (const { cid, bytes: block } of reader.blocks()) {
    const digest = await sha256.digest(block)
    if (!Buffer.from(digest.digest).equals(Buffer.from(cid.multihash.digest))) throw new Error(`block ${cid} does not match its hash`)
    await blockstore.put(cid, block)
  }
  const roots = await reader.getRoots()
  for (const root of roots) await fs.stat(root) // walks the root through @helia/unixfs
  return roots
}

async function exportCar (root, res) {
  const { writer, out } = CarWriter.create([root])
  const done = (async () => { for await (const chunk of out) res.write(chunk) })()
  const seen = new Set()
  const walk = async (cid) => {
    if (seen.has(cid.toString())) return
    seen.add(cid.toString())
    const got = await blockstore.get(cid)
    const block = got instanceof Uint8Array ? got : await collectBytes(got)
    await writer.put({ cid, bytes: block })
    if (cid.code === dagPb.code) for (const link of dagPb.decode(block).Links) await walk(link.Hash)
  }
  await walk(root)
  await writer.close()
  await done
}

async function collectBytes (it) {
  const parts = []
  for await (const p of it) parts.push(p)
  return Buffer.concat(parts)
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost')
  try {
    if (req.method === 'POST' && url.pathname === '/api/v0/dag/import') {
      const roots = await importCar(carFromMultipart(await collect(req), req.headers['content-type']))
      res.writeHead(200, { 'content-type': 'application/json' })
      for (const r of roots) res.write(JSON.stringify({ Root: { Cid: { '/': r.toString() }, PinErrorMsg: '' } }) + '\n')
      return res.end()
    }
    if (req.method === 'GET' && url.pathname.startsWith('/ipfs/')) {
      const root = CID.parse(url.pathname.slice(6))
      if (!(await blockstore.has(root))) { res.writeHead(404); return res.end('not found') }
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1' })
      await exportCar(root, res)
      return res.end()
    }
    if (url.pathname === '/api/v0/ls') {
      const entries = []
      for await (const e of fs.ls(CID.parse(url.searchParams.get('arg')))) entries.push({ Name: e.name, Hash: e.cid.toString(), Size: Number(e.size ?? 0) })
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ Objects: [{ Links: entries }] }))
    }
    res.writeHead(404); res.end('unknown endpoint')
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }); res.end(String(err && err.message))
  }
})
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => console.log(`listening ${server.address().port}`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
