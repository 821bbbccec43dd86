import net from 'node:net'
import t from 'tap'
import { startApp, waitUntil } from './helpers/app.js'
import { openStream, type StreamClient } from './helpers/sse-client.js'
import { ConnectionCounter } from '../services/connection-counter.js'

async function open (t: Tap, url: string, from = '127.0.0.1', headers: Record<string, string> = {}): Promise<StreamClient> {
  const client = await openStream(`${url}/events/subscribe?all=true`, headers, from)
  t.teardown(() => client.close())
  if (client.status === 200) await client.until('the retry hint', () => client.retry !== undefined)
  return client
}
type Tap = { teardown (fn: () => unknown): void }

async function bodyOf (client: StreamClient): Promise<unknown> {
  await client.until('the end of the response', () => client.ended)
  return JSON.parse(client.raw)
}

t.test('concurrent streams per client address are capped, and freed on close', async t => {
  const { url, app } = await startApp(t, { MAX_CONNECTIONS_PER_IP: '3' })
  const first = await Promise.all([1, 2, 3].map(async () => await open(t, url)))
  t.same(first.map(client => client.status), [200, 200, 200], 'three at once are fine')

  const fourth = await open(t, url)
  t.equal(fourth.status, 429)
  t.equal(fourth.headers['retry-after'], '10')
  t.match(fourth.headers['content-type'], /^application\/json/)
  t.same(await bodyOf(fourth), {
    error: 'too_many_per_ip',
    message: '3 event streams are open from 127.0.0.1 already; close one first'
  })
  t.equal((await open(t, url, '127.0.0.2')).status, 200, 'another address has its own count')

  first[0]!.close()
  await waitUntil('the place is given back', () => app.connectionLimits.openFrom('127.0.0.1') === 2)
  t.equal((await open(t, url)).status, 200, 'a closed stream frees its place')
  t.equal(app.broker.metrics.connections.too_many_per_ip, 1)
})

t.test('the instance-wide cap answers 503 with Retry-After', async t => {
  const { url, app } = await startApp(t, { MAX_CONNECTIONS: '2' })
  await open(t, url, '127.0.0.1')
  await open(t, url, '127.0.0.2')
  const third = await open(t, url, '127.0.0.3')
  t.equal(third.status, 503)
  t.equal(third.headers['retry-after'], '10')
  t.same(await bodyOf(third), { error: 'over_capacity', message: 'this instance holds as many event streams as it may; try again shortly' })
  t.equal(app.broker.metrics.connections.over_capacity, 1)
  t.equal((await fetch(`${url}/events/subscribe?streams=bad%20id`)).status, 400, 'a bad request is still a 400, and takes no place')
})

t.test('X-Forwarded-For is ignored unless TRUST_PROXY says otherwise', async t => {
  const forged = { 'x-forwarded-for': '203.0.113.7' }
  const untrusting = await startApp(t, { MAX_CONNECTIONS_PER_IP: '1' })
  await open(t, untrusting.url, '127.0.0.1', forged)
  t.equal((await open(t, untrusting.url, '127.0.0.1', { 'x-forwarded-for': '203.0.113.8' })).status, 429,
    'a forged header does not dodge the cap')

  const trusting = await startApp(t, { MAX_CONNECTIONS_PER_IP: '1', TRUST_PROXY: 'true' })
  t.equal((await open(t, trusting.url, '127.0.0.1', forged)).status, 200)
  t.equal((await open(t, trusting.url, '127.0.0.1', { 'x-forwarded-for': '203.0.113.8' })).status, 200, 'each client behind the proxy counts alone')
  t.equal((await open(t, trusting.url, '127.0.0.1', forged)).status, 429)
  t.equal(trusting.app.connectionLimits.openFrom('203.0.113.7'), 1)

  // One trusted hop: the proxy's own entry is believed, what the client wrote before it is not.
  const oneHop = await startApp(t, { MAX_CONNECTIONS_PER_IP: '1', TRUST_PROXY: '1' })
  await open(t, oneHop.url, '127.0.0.1', { 'x-forwarded-for': '198.51.100.1, 203.0.113.9' })
  t.equal(oneHop.app.connectionLimits.openFrom('203.0.113.9'), 1)
})

t.test('ConnectionCounter', async t => {
  const counter = new ConnectionCounter(2, 3)
  t.equal(counter.acquire('a'), 'ok')
  t.equal(counter.acquire('a'), 'ok')
  t.equal(counter.acquire('a'), 'too_many_per_ip')
  t.equal(counter.acquire('b'), 'ok')
  t.equal(counter.acquire('c'), 'over_capacity')
  counter.release('a')
  counter.release('nobody') // never counted: nothing happens
  t.equal(counter.total, 2)
  t.equal(counter.openFrom('a'), 1)
  t.equal(counter.openFrom('nobody'), 0)
  t.throws(() => new ConnectionCounter(0, 1), { message: 'maxPerAddress must be a positive integer' })
  t.throws(() => new ConnectionCounter(1, 1.5), { message: 'maxTotal must be a positive integer' })
})

t.test('request heads and bodies are bounded on every route', async t => {
  const { url } = await startApp(t)
  const { port } = new URL(url)
  const response = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.end(`GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\nX-Padding: ${'x'.repeat(20 * 1024)}\r\n\r\n`)
    })
    let text = ''
    socket.on('data', chunk => { text += String(chunk) })
    socket.on('close', () => resolve(text))
    socket.on('error', reject)
  })
  t.match(response, /^HTTP\/1\.1 431 /, 'a head over 16 KiB is refused')
  const big = await fetch(`${url}/events/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ event: 'stream.cancelled', data: { streamId: '1', pad: 'x'.repeat(1024 * 1024) } })
  })
  t.equal(big.status, 413, 'a body over 1 MiB is refused')
})
