// The load generator: a process of its own, driven over IPC by bench/run.ts. It opens many SSE
// connections with raw sockets, spread over the source addresses 127.0.0.1..127.0.0.N so that
// ephemeral ports never run out, publishes events that carry their send time, and counts what
// arrives. Parsing is kept minimal: find each frame's "seq" and "sentAt" and nothing else.
// Over HTTP/2 (TLS or h2c) each SSE connection is a stream of a node:http2 client session; how many
// streams share a session is the request's streamsPerSession (1 for a browser tab's TLS connection).
// Over TLS+HTTP/1.1 the raw socket is a TLS one that offers only http/1.1 by ALPN.
import net from 'node:net'
import http2 from 'node:http2'
import tls from 'node:tls'
import { performance } from 'node:perf_hooks'

/** What the connections speak: HTTP/1.1 in clear or over TLS, HTTP/2 over TLS, or HTTP/2 in clear (h2c). */
export type Protocol = 'http1' | 'tls-http1' | 'tls-h2' | 'h2c'

/** HTTP/1.1, in clear or over TLS: one raw socket per SSE connection. */
const overHttp1 = (protocol: Protocol): boolean => protocol === 'http1' || protocol === 'tls-http1'
/** The protocol a TLS connection offers by ALPN; undefined in clear. */
const ALPN: Record<Protocol, string | undefined> = { http1: undefined, 'tls-http1': 'http/1.1', 'tls-h2': 'h2', h2c: undefined }
export interface ConnectRequest {
  type: 'connect'
  port: number
  protocol: Protocol
  paths: string[]
  sourceAddresses: number
  concurrency: number
  /** HTTP/2 only: streams opened on each session. */
  streamsPerSession: number
}
export interface PublishRequest {
  type: 'publish'
  port: number
  protocol: Protocol
  /** One POST per event: path and body for event `seq`. */
  events: Array<{ path: string, headers: Record<string, string>, template: string }>
  /** Events per second, or 0 for as fast as the publisher can. */
  rate: number
  /** Deliveries to wait for, and how long at most after the last publish. */
  expected: number
  settleMs: number
}
export type LoadgenRequest = ConnectRequest | PublishRequest | { type: 'close' }

export interface ConnectResult { type: 'connected', connections: number, failed: number, seconds: number }
export interface PublishResult {
  type: 'published'
  events: number
  publishSeconds: number
  received: number
  duplicates: number
  /** From the first event sent to the last delivery received. */
  deliverySeconds: number
  latencyMs: { p50: number, p99: number, max: number }
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
const now = (): number => performance.timeOrigin + performance.now()

const SEQ = Buffer.from('"seq":')
const SENT_AT = Buffer.from('"sentAt":')
const FRAME_END = Buffer.from('\n\n')

class Subscriber {
  pending: Buffer | undefined
  /** Position in `subscribers`, once connected. */
  index = -1
  constructor (readonly close: () => void) {}
}

let subscribers: Subscriber[] = []
/** One bit per (subscriber, event): a second arrival is a duplicate. */
let seen = new Uint8Array(0)
let eventCount = 0
let received = 0
let duplicates = 0
let latencies = new Float64Array(0)
let lastArrival = 0
let onDelivery: (() => void) | undefined

function readNumber (frame: Buffer, key: Buffer): number {
  const at = frame.indexOf(key)
  if (at < 0) return -1
  let value = 0
  for (let i = at + key.length; i < frame.length; i++) {
    const digit = frame[i]! - 48
    if (digit < 0 || digit > 9) {
      if (frame[i] === 46) { // a decimal point: the rest of the number is the fraction
        let scale = 0.1
        for (let j = i + 1; j < frame.length; j++) {
          const d = frame[j]! - 48
          if (d < 0 || d > 9) break
          value += d * scale
          scale /= 10
        }
      }
      break
    }
    value = value * 10 + digit
  }
  return value
}

function onFrame (subscriber: Subscriber, frame: Buffer, arrivedAt: number): void {
  const seq = readNumber(frame, SEQ)
  if (seq < 0 || seq >= eventCount) return // a comment, a retry hint or a headers block
  const sentAt = readNumber(frame, SENT_AT)
  const bit = subscriber.index * eventCount + seq
  if ((seen[bit >> 3]! & (1 << (bit & 7))) !== 0) {
    duplicates++
    return
  }
  seen[bit >> 3]! |= 1 << (bit & 7)
  latencies[received++] = arrivedAt - sentAt
  lastArrival = arrivedAt
  onDelivery?.()
}

function onData (subscriber: Subscriber, chunk: Buffer): void {
  const arrivedAt = now()
  let data = subscriber.pending === undefined ? chunk : Buffer.concat([subscriber.pending, chunk])
  let start = 0
  for (let end = data.indexOf(FRAME_END, start); end >= 0; end = data.indexOf(FRAME_END, start)) {
    onFrame(subscriber, data.subarray(start, end), arrivedAt)
    start = end + 2
  }
  subscriber.pending = start < data.length ? Buffer.from(data.subarray(start)) : undefined
  data = Buffer.alloc(0)
}

const sourceAddress = (index: number, request: ConnectRequest): string => `127.0.0.${1 + (index % request.sourceAddresses)}`
let failed = 0

function connected (subscriber: Subscriber): void {
  subscriber.index = subscribers.push(subscriber) - 1
}

/**
 * A connection to the server: TCP, or TLS over it offering `protocol`'s ALPN (the certificate is the
 * throwaway self-signed one bench/run.ts made). Either takes writes at once and sends them once it can.
 */
function connectSocket (protocol: Protocol, port: number, localAddress?: string): net.Socket {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress })
  const alpn = ALPN[protocol]
  return alpn === undefined ? socket : tls.connect({ socket, ALPNProtocols: [alpn], rejectUnauthorized: false })
}

/** Opens one HTTP/1.1 SSE connection on a raw socket (TCP or TLS). */
async function openHttp1 (request: ConnectRequest, index: number): Promise<void> {
  const path = request.paths[index % request.paths.length]!
  await new Promise<void>(resolve => {
    const socket = connectSocket(request.protocol, request.port, sourceAddress(index, request))
    const subscriber = new Subscriber(() => socket.destroy())
    socket.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n`)
    // Connected once the status line has arrived.
    socket.once('data', chunk => {
      if (!chunk.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) {
        socket.destroy() // counted as failed when it closes
      } else {
        connected(subscriber)
        socket.setTimeout(0)
      }
      socket.on('data', more => onData(subscriber, more))
      resolve()
    })
    // Refused, reset, closed or silent for 10 s before answering (a server out of connections): a failure.
    socket.once('close', () => { if (subscriber.index < 0) { failed++; resolve() } })
    socket.once('error', () => {})
    socket.setTimeout(10_000, () => { if (subscriber.index < 0) socket.destroy() })
  })
}

const h2Authority = (protocol: Protocol, port: number): string => `${protocol === 'tls-h2' ? 'https' : 'http'}://127.0.0.1:${port}`

function h2Session (protocol: Protocol, port: number, localAddress?: string): http2.ClientHttp2Session {
  const session = http2.connect(h2Authority(protocol, port), { createConnection: () => connectSocket(protocol, port, localAddress) })
  session.on('error', () => {}) // its streams count as failed
  return session
}

/** Opens one HTTP/2 session and `streamsPerSession` SSE streams on it, from connection `first` on. */
async function openHttp2Session (request: ConnectRequest, first: number): Promise<void> {
  const session = h2Session(request.protocol, request.port, sourceAddress(first, request))
  const last = Math.min(first + request.streamsPerSession, request.paths.length)
  const streams = Array.from({ length: last - first }, async (_, i) => await new Promise<void>(resolve => {
    const stream = session.request({ ':path': request.paths[(first + i) % request.paths.length]!, accept: 'text/event-stream' })
    const subscriber = new Subscriber(() => session.destroy())
    const fail = (): void => { if (subscriber.index < 0) { failed++; subscriber.index = -2; resolve() } }
    stream.once('response', headers => {
      if (headers[':status'] !== 200) { stream.close(); fail(); return }
      connected(subscriber)
      stream.on('data', (chunk: Buffer) => onData(subscriber, chunk))
      resolve()
    })
    stream.once('close', fail)
    stream.once('error', () => {})
    stream.setTimeout(10_000, () => { if (subscriber.index < 0) stream.close() })
  }))
  await Promise.all(streams)
}

async function connect (request: ConnectRequest): Promise<ConnectResult> {
  const started = now()
  failed = 0
  let next = 0
  const step = overHttp1(request.protocol) ? 1 : request.streamsPerSession
  const openOne = overHttp1(request.protocol) ? openHttp1 : openHttp2Session
  const worker = async (): Promise<void> => {
    while (next < request.paths.length) {
      const first = next
      next += step
      await openOne(request, first)
    }
  }
  await Promise.all(Array.from({ length: request.concurrency }, worker))
  return { type: 'connected', connections: subscribers.length, failed, seconds: (now() - started) / 1000 }
}

/** Keep-alive HTTP/1.1 POSTs over one socket, one at a time. */
interface Publisher {
  post (path: string, headers: Record<string, string>, body: string): Promise<void>
  close (): void
}

/** POSTs as streams of one HTTP/2 session, one at a time. */
function http2Publisher (protocol: Protocol, port: number): Publisher {
  const session = h2Session(protocol, port)
  return {
    async post (path, headers, body) {
      await new Promise<void>(resolve => {
        const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json', ...headers })
        stream.once('response', answer => {
          if (Number(answer[':status']) >= 300) process.stderr.write(`publish failed: ${String(answer[':status'])}\n`)
        })
        stream.resume()
        stream.once('close', resolve)
        stream.end(body)
      })
    },
    close: () => session.close()
  }
}

function http1Publisher (protocol: Protocol, port: number): Publisher {
  const socket = connectSocket(protocol, port)
  socket.setNoDelay(true)
  let waiting: (() => void) | undefined
  let buffered = ''
  socket.on('data', chunk => {
    buffered += chunk.toString('latin1')
    // Responses are small; one complete head and body ends with the body's length.
    const headEnd = buffered.indexOf('\r\n\r\n')
    if (headEnd < 0) return
    const length = /content-length: (\d+)/i.exec(buffered.slice(0, headEnd))
    if (length !== null && buffered.length < headEnd + 4 + Number(length[1])) return
    if (!/^HTTP\/1\.1 20\d/.test(buffered)) process.stderr.write(`publish failed: ${buffered.slice(0, 200)}\n`)
    buffered = ''
    waiting?.()
  })
  return {
    async post (path, headers, body) {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
      await new Promise<void>(resolve => {
        waiting = resolve
        socket.write(`POST ${path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
      })
    },
    close: () => socket.destroy()
  }
}

async function publish (request: PublishRequest): Promise<PublishResult> {
  eventCount = request.events.length
  seen = new Uint8Array(Math.ceil(subscribers.length * eventCount / 8) + 1)
  latencies = new Float64Array(Math.max(request.expected, 1))
  received = 0
  duplicates = 0
  const post = overHttp1(request.protocol) ? http1Publisher(request.protocol, request.port) : http2Publisher(request.protocol, request.port)
  const started = now()
  for (let seq = 0; seq < request.events.length; seq++) {
    if (request.rate > 0) {
      const due = started + seq * 1000 / request.rate
      const wait = due - now()
      if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
    }
    const { path, headers, template } = request.events[seq]!
    await post.post(path, headers, template.replace('"sentAt":0', `"sentAt":${now().toFixed(3)}`))
  }
  post.close()
  const publishSeconds = (now() - started) / 1000
  if (received < request.expected) {
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, request.settleMs)
      onDelivery = () => {
        if (received >= request.expected) { clearTimeout(timer); resolve() }
      }
    })
    onDelivery = undefined
  }
  const sorted = latencies.subarray(0, received).sort()
  const at = (q: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return {
    type: 'published',
    events: request.events.length,
    publishSeconds,
    received,
    duplicates,
    deliverySeconds: (lastArrival - started) / 1000,
    latencyMs: { p50: at(0.5), p99: at(0.99), max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]! }
  }
}

process.on('message', (request: LoadgenRequest) => {
  const reply = (result: unknown): void => { process.send!(result) }
  if (request.type === 'connect') void connect(request).then(reply)
  else if (request.type === 'publish') void publish(request).then(reply)
  else {
    for (const { close } of subscribers) close()
    subscribers = []
    process.disconnect()
  }
})
