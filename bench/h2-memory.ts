// What an idle TLS+h2 connection's memory is made of (after `npm run bench -- --only none` or `npx tsc -p . --outDir .build`):
// `node --expose-gc .build/bench/h2-memory.js [--connections 1000]`.
// Measures, in a fresh server process for each variant (this file with `server`, so that no variant
// reuses memory another freed), what N idle client connections add to its
// RSS, V8 heap and off-heap (external) memory, layer by layer: a plain TLS socket; a TLS+h2 session;
// a session with one open SSE stream; the same with session settings that shrink nghttp2's share.
// The clients run in a child process (this file with `client`), so their memory is not counted.
import { fork } from 'node:child_process'
import http2 from 'node:http2'
import tls from 'node:tls'
import type net from 'node:net'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { makeCertificate } from '../test/helpers/tls.js'

type Layer = 'tls' | 'h2 session' | 'h2 session + SSE stream'
interface Variant { name: string, layer: Layer, settings?: http2.Settings, maxSessionMemory?: number }

const VARIANTS: Variant[] = [
  { name: 'plain TLS socket', layer: 'tls' },
  { name: 'TLS+h2 session, no stream', layer: 'h2 session' },
  { name: 'TLS+h2 session + SSE stream (Node defaults)', layer: 'h2 session + SSE stream' },
  { name: '… headerTableSize 0', layer: 'h2 session + SSE stream', settings: { headerTableSize: 0 } },
  { name: '… initialWindowSize 16 KiB, maxConcurrentStreams 1', layer: 'h2 session + SSE stream', settings: { initialWindowSize: 16_384, maxConcurrentStreams: 1 } },
  { name: '… maxSessionMemory 1 MiB', layer: 'h2 session + SSE stream', maxSessionMemory: 1 }
]

interface ClientRequest { port: number, layer: Layer, connections: number }

/** The client side: opens the connections, says so, and holds them until killed. */
async function client ({ port, layer, connections }: ClientRequest): Promise<void> {
  const open = async (): Promise<void> => await new Promise<void>((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', ALPNProtocols: ['h2'], rejectUnauthorized: false })
    socket.once('error', reject)
    if (layer === 'tls') { socket.once('secureConnect', () => resolve()); return }
    const session = http2.connect(`https://127.0.0.1:${port}`, { createConnection: () => socket })
    session.once('error', reject)
    if (layer === 'h2 session') { session.once('remoteSettings', () => resolve()); return }
    const stream = session.request({ ':path': '/events/subscribe', accept: 'text/event-stream' })
    stream.once('response', () => resolve())
    stream.resume()
  })
  for (let i = 0; i < connections; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, connections - i) }, open))
  }
  process.send!('open')
}

interface Footprint { rss: number, heapUsed: number, external: number }

function footprint (): Footprint {
  globalThis.gc?.()
  const { rss, heapUsed, external } = process.memoryUsage()
  return { rss, heapUsed, external }
}

/** The server for one variant: TLS only, or h2 answering every stream as an SSE stream that stays open. */
function listen (variant: Variant, cert: { key: Buffer, cert: Buffer }): net.Server {
  if (variant.layer === 'tls') return tls.createServer({ ...cert, ALPNProtocols: ['h2'] }, socket => socket.on('error', () => {}))
  const server = http2.createSecureServer({ ...cert, settings: variant.settings, maxSessionMemory: variant.maxSessionMemory })
  server.on('stream', stream => {
    stream.respond({ ':status': 200, 'content-type': 'text/event-stream' })
    stream.write(': open\n\n')
    stream.on('error', () => {})
  })
  server.on('sessionError', () => {})
  return server
}

async function measure (variant: Variant, connections: number, cert: { key: Buffer, cert: Buffer }): Promise<Footprint> {
  const server = listen(variant, cert)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const before = footprint()
  const child = fork(fileURLToPath(import.meta.url), ['client'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve())
    child.once('exit', code => reject(new Error(`client exited with ${code}`)))
    child.send({ port, layer: variant.layer, connections } satisfies ClientRequest)
  })
  await new Promise(resolve => setTimeout(resolve, 1000))
  const after = footprint()
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
  await new Promise(resolve => { server.close(resolve); (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.() })
  const per = (key: keyof Footprint): number => (after[key] - before[key]) / 1024 / connections
  return { rss: per('rss'), heapUsed: per('heapUsed'), external: per('external') }
}

/** Runs one variant in a server process of its own, and returns its footprint per connection. */
async function measureApart (variant: number, connections: number, key: string, cert: string): Promise<Footprint> {
  const server = fork(fileURLToPath(import.meta.url), ['server', String(variant), String(connections), key, cert],
    { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return await new Promise<Footprint>((resolve, reject) => {
    server.once('message', result => resolve(result as Footprint))
    server.once('exit', code => reject(new Error(`server exited with ${code}`)))
  })
}

async function main (): Promise<void> {
  const at = process.argv.indexOf('--connections')
  const connections = at >= 0 ? Number(process.argv[at + 1]) : 1000
  const teardowns: Array<() => unknown> = []
  const certificate = makeCertificate({ teardown: fn => teardowns.push(fn) })
  const lines = [
    `## Idle TLS+h2 connection memory, ${connections} connections, node ${process.version}`, '',
    '| variant | RSS KiB per connection | V8 heap KiB | external KiB |', '|---|---|---|---|'
  ]
  try {
    for (const [index, variant] of VARIANTS.entries()) {
      const { rss, heapUsed, external } = await measureApart(index, connections, certificate.env.TLS_KEY, certificate.env.TLS_CERT)
      lines.push(`| ${variant.name} | ${rss.toFixed(1)} | ${heapUsed.toFixed(1)} | ${external.toFixed(1)} |`)
    }
  } finally {
    for (const teardown of teardowns) teardown()
  }
  process.stdout.write(lines.join('\n') + '\n')
}

const [role, variant, connections, key, cert] = process.argv.slice(2)
if (role === 'client') {
  process.once('message', request => { void client(request as ClientRequest) })
} else if (role === 'server') {
  const result = await measure(VARIANTS[Number(variant)]!, Number(connections), { key: readFileSync(key!), cert: readFileSync(cert!) })
  process.send!(result)
  process.disconnect()
} else {
  await main()
}
