import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildApp } from '../app.js'
import { loadConfig } from '../services/config.js'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { connect } from './helpers/raw-socket.js'

const PLAIN = 'GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n'

t.test('a plain GET stream is taken past Node\'s HTTP parser, and ends when its client hangs up', async t => {
  const { url, app } = await startApp(t)
  const client = await connect(url)
  client.socket.write(PLAIN)
  await waitUntil('the retry hint', () => client.received().includes('retry:'))
  t.match(client.received(), /^HTTP\/1\.1 200 OK\r\n/)
  t.match(client.received(), /content-type: text\/event-stream; charset=utf-8\r\n/i)
  t.match(client.received(), /transfer-encoding: chunked\r\n/i)
  t.equal(app.streamIntake.direct, 1, 'held by the intake')
  const stats = await (await fetch(`${url}/events/stats`)).json() as { connections: { direct: number } }
  t.equal(stats.connections.direct, 1, 'and counted in the stats')
  client.socket.write('bytes nobody asked for')
  await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } })
  await waitUntil('an event after them', () => client.received().includes('stream.cancelled'))
  t.pass('bytes after the request are ignored')

  client.socket.end() // a half close: the client is gone
  await client.ended
  await waitUntil('the stream is let go', () => app.broker.stats().connections.total === 0 && app.streamIntake.direct === 0)
  t.pass('the connection closed and the stream is gone')
})

t.test('a stream request in any form opens, and its connection is the stream\'s; other requests are Node\'s, bytes intact', async t => {
  const { url, app } = await startApp(t)
  const cases: Array<[string, string[]]> = [
    ['HTTP/1.0', ['GET /events/subscribe?all=true HTTP/1.0\r\nHost: x\r\n\r\n']],
    ['a head in two pieces', ['GET /events/subscribe?all=true HTTP/1.1\r\nHo', 'st: x\r\n\r\n']],
    ['a repeated header', ['GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n']],
    ['a pipelined request behind it', [`${PLAIN}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`]]
  ]
  for (const [what, pieces] of cases) {
    const client = await connect(url)
    t.teardown(() => client.socket.destroy())
    for (const piece of pieces) {
      client.socket.write(piece)
      await sleep(30)
    }
    await waitUntil(`the stream opens (${what})`, () => client.received().includes('retry:'))
    t.match(client.received(), /^HTTP\/1\.[01] 200 OK\r\n/, what)
  }
  t.equal(app.broker.stats().connections.total, cases.length, 'every stream is open')
  t.equal(app.streamIntake.direct, 2, 'the two the intake read (a head in two pieces, a request behind it) are held by it')

  // A request sent later on a stream's connection gets no answer written into the stream.
  const held = await connect(url)
  t.teardown(() => held.socket.destroy())
  held.socket.write('GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n')
  await waitUntil('the held stream opens', () => held.received().includes('retry:'))
  held.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(50)
  await publish(url, { event: 'stream.cancelled', data: { streamId: '7' } })
  await waitUntil('the event', () => held.received().includes('stream.cancelled'))
  t.equal(held.received().split('HTTP/1.1 ').length, 2, 'one response head on the connection: the stream\'s')

  const keepAlive = await connect(url)
  t.teardown(() => keepAlive.socket.destroy())
  keepAlive.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitUntil('the first answer', () => keepAlive.received().includes('}'))
  keepAlive.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitUntil('the second answer on the same connection', () => keepAlive.received().split('HTTP/1.1 200 OK').length === 3)
  t.pass('a kept-alive connection is served by Node as before')
})

t.test('a refusal on a taken connection is a JSON 4xx, then the connection closes', async t => {
  const { url, app } = await startApp(t)
  const client = await connect(url)
  client.socket.write('GET /events/subscribe?all=maybe HTTP/1.1\r\nHost: x\r\n\r\n')
  await client.ended
  t.match(client.received(), /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(client.received(), /connection: close\r\n/i)
  t.match(client.received(), /\r\n\r\n\{"error":"invalid_all",/)
  await waitUntil('the intake lets it go', () => app.streamIntake.direct === 0)
  t.pass('nothing is held')
})

t.test('resets, before the request or during the stream, are no errors', async t => {
  const { url, app } = await startApp(t)
  const early = await connect(url)
  early.socket.resetAndDestroy()
  const late = await connect(url)
  late.socket.write(PLAIN)
  await waitUntil('the stream opens', () => app.broker.stats().connections.total === 1)
  late.socket.resetAndDestroy()
  await waitUntil('the stream is let go', () => app.broker.stats().connections.total === 0 && app.streamIntake.direct === 0)
  const response = await fetch(`${url}/healthz`)
  t.equal(response.status, 200, 'the server is still up')
})

/** The app with Node's `headersTimeout` set (before listening, when the intake reads it). */
async function appWithHeadersTimeout (t: { teardown (fn: () => unknown): void }, ms: number) {
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'silent' })
  const app = buildApp(config)
  app.server.headersTimeout = ms
  t.teardown(() => app.close())
  await app.listen({ host: config.host, port: 0 })
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

t.test('a connection that sends nothing is closed after the headers timeout, or when the app closes', async t => {
  const { app, url } = await appWithHeadersTimeout(t, 200)
  const silent = await connect(url)
  await silent.ended
  t.equal(silent.received(), '', 'closed without a word')

  const another = await connect(url)
  await app.close()
  await another.ended
  t.pass('closing the app closed it')
})

t.test('with no headers timeout (0), as in Node, a silent connection is left open until the app closes', async t => {
  const { app, url } = await appWithHeadersTimeout(t, 0)
  const silent = await connect(url)
  let closed = false
  void silent.ended.then(() => { closed = true })
  await sleep(1200) // past a sweep
  t.notOk(closed, 'still open')
  await app.close()
  await silent.ended
  t.pass('closed by closing the app')
})

t.test('a client that keeps its side open after its stream ended is not waited for', async t => {
  const { url, app } = await startApp(t)
  const { port } = new URL(url)
  const socket = net.connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true })
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', chunk => { received += String(chunk) })
  socket.write(PLAIN)
  await waitUntil('the stream opens', () => received.includes('retry:'))
  await app.broker.endAll(0, () => Buffer.from('retry: 1000\n\n'))
  await waitUntil('the server lets the connection go', () => app.streamIntake.direct === 0)
  t.match(received, /0\r\n\r\n$/, 'after the body\'s last chunk')
})
