import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildApp } from '../app.js'
import { loadConfig } from '../services/config.js'
import { publish, randomAccountId, startApp, waitUntil } from './helpers/app.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { openStream } from './helpers/sse-client.js'

type Tap = { teardown (fn: () => unknown): void }

/**
 * A raw client that never closes its own side (allowHalfOpen), as a careless or hostile one would,
 * with everything it received. `closed` resolves when the socket is gone for good.
 */
async function rawClient (t: Tap, url: string) {
  const socket = net.connect({ port: Number(new URL(url).port), host: '127.0.0.1', allowHalfOpen: true })
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  let received = ''
  let ended = false
  socket.on('data', chunk => { received += chunk.toString('latin1') })
  socket.on('end', () => { ended = true })
  socket.on('error', () => {})
  const closed = new Promise(resolve => socket.once('close', resolve))
  return { socket, received: () => received, ended: () => ended, closed }
}

/**
 * Waits until the server has let go of a connection: it ended its side, and bytes sent now are
 * answered with a reset (seen at the next write), not taken by a socket still held open.
 */
async function serverLetGo (client: Awaited<ReturnType<typeof rawClient>>): Promise<void> {
  await waitUntil('the server ends the connection', () => client.ended())
  await waitUntil('a reset', () => {
    if (!client.socket.destroyed) client.socket.write('anyone there?')
    return client.socket.destroyed
  })
}

const SECRET = 'an-hs256-secret-that-is-long-enough-for-tests'
const alice = randomAccountId()
const bob = randomAccountId()

t.test('a refused subscribe closes its connection once answered, whatever the client does', async t => {
  const token = signJwt({ sub: alice, exp: nowS() + 60 }, { alg: 'HS256', secret: SECRET })
  const cases: Array<{ what: string, env?: Record<string, string>, before?: (url: string) => Promise<unknown>, request: string, status: RegExp }> = [
    { what: '400', request: 'GET /events/subscribe?all=maybe HTTP/1.1\r\nHost: x\r\n\r\n', status: / 400 / },
    { what: '400, read by Node (a repeated header)', request: 'GET /events/subscribe?all=maybe HTTP/1.1\r\nHost: x\r\nA: 1\r\nA: 2\r\n\r\n', status: / 400 / },
    { what: '401', env: { AUTH_MODE: 'jwt', JWT_SECRET: SECRET }, request: `GET /events/subscribe?users=${alice} HTTP/1.1\r\nHost: x\r\n\r\n`, status: / 401 / },
    {
      what: '403',
      env: { AUTH_MODE: 'jwt', JWT_SECRET: SECRET },
      request: `GET /events/subscribe?users=${bob} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`,
      status: / 403 /
    },
    {
      what: '429 (per-address cap)',
      env: { MAX_CONNECTIONS_PER_IP: '1' },
      before: async url => await openStream(`${url}/events/subscribe?all=true`),
      request: 'GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n',
      status: / 429 /
    },
    {
      what: '429 (rate limit)',
      env: { SUBSCRIBE_RATE_PER_MINUTE: '1' },
      before: async url => await fetch(`${url}/events/subscribe?all=maybe`),
      request: 'GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n',
      status: / 429 /
    },
    {
      what: '503 (instance full)',
      env: { MAX_CONNECTIONS: '1' },
      before: async url => await openStream(`${url}/events/subscribe?all=true`),
      request: 'GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n',
      status: / 503 /
    }
  ]
  for (const { what, env, before, request, status } of cases) {
    const { url } = await startApp(t, { LOG_LEVEL: 'silent', ...env })
    await before?.(url)
    const client = await rawClient(t, url)
    client.socket.write(request)
    await serverLetGo(client)
    t.match(client.received().split('\r\n')[0], status, what)
    t.match(client.received(), /\r\n\r\n\{"error":"/, `${what}: with its JSON body`)
  }

  const { url, app } = await startApp(t, { LOG_LEVEL: 'silent' })
  app.broker.beginDrain()
  const draining: Array<[string, string[]]> = [
    ['read by the intake', ['GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n']],
    ['read by Node (a repeated header)', ['GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\nA: 1\r\nA: 2\r\n\r\n']],
    ['on a kept-alive connection', ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n']]
  ]
  for (const [what, requests] of draining) {
    const client = await rawClient(t, url)
    for (const request of requests) {
      client.socket.write(request)
      await waitUntil('an answer', () => client.received().endsWith('}') || client.received().includes('retry:'))
    }
    await serverLetGo(client)
    t.match(client.received(), /HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n[^]*retry: \d+\n\n\r\n0\r\n\r\n$/i,
      `draining, ${what}: told to retry, then let go`)
  }
})

const EVENT = { event: 'stream.cancelled', data: { streamId: '7' } }

t.test('a stream that Node\'s parser read owns its connection: nothing the client sends after its request is read as a request', async t => {
  const forms: Array<[string, string[]]> = [
    ['a head split over packets', ['GET /events/subscribe?all=true HTTP/1.1\r\nHo', 'st: x\r\n\r\n']],
    ['HTTP/1.0', ['GET /events/subscribe?all=true HTTP/1.0\r\n\r\n']],
    ['a repeated header', ['GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n']],
    ['the absolute form', ['GET http://x/events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n']]
  ]
  // Sent in the same packet as the end of the head, then in packets of their own.
  const after = 'GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
  for (const [what, pieces] of forms) {
    const { url, app, logs } = await startApp(t)
    const client = await rawClient(t, url)
    for (const [i, piece] of pieces.entries()) {
      client.socket.write(i === pieces.length - 1 && what !== 'the absolute form' ? piece + after : piece)
      await waitUntil('the server reads it', () => app.broker.stats().connections.total > 0 || i < pieces.length - 1)
    }
    await waitUntil(`the stream opens (${what})`, () => client.received().includes('retry:'))
    client.socket.write(after)
    client.socket.write('\x00 garbage that no parser takes\r\n\r\n')
    client.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    await new Promise(resolve => setImmediate(resolve))
    const { body } = await publish(url, EVENT)
    await waitUntil(`the event (${what})`, () => client.received().includes(`id: ${body.id as string}`))
    const received = client.received()
    t.equal(received.split('HTTP/1.').length, 2, `${what}: one response head on the connection, the stream's`)
    t.equal(received.split(`id: ${body.id as string}`).length, 2, `${what}: the event once (no second stream inside the first)`)
    t.equal(app.broker.stats().connections.total, 1, `${what}: one stream`)
    t.notOk(logs.some(line => (line.req as { url?: string } | undefined)?.url === '/healthz'), `${what}: no request behind it was handled`)
    if (what !== 'HTTP/1.0') t.match(received, /transfer-encoding: chunked\r\n[^]*?\r\n[0-9a-f]+\r\nretry: /i, `${what}: chunked`)

    // The client's FIN is seen at once, not at the next heartbeat.
    client.socket.end()
    await waitUntil(`the stream is let go (${what})`, () => app.broker.stats().connections.total === 0)
  }
})

t.test('an HTTP/1.0 stream is never chunked, even when its TE header asks for it', async t => {
  const { url } = await startApp(t)
  const client = await rawClient(t, url)
  client.socket.write('GET /events/subscribe?all=true HTTP/1.0\r\nTE: chunked\r\n\r\n')
  await waitUntil('the stream opens', () => client.received().includes('retry:'))
  const { body } = await publish(url, EVENT)
  await waitUntil('the event', () => client.received().includes(`id: ${body.id as string}`))
  const [head, ...rest] = client.received().split('\r\n\r\n')
  t.notMatch(head, /transfer-encoding/i, 'no Transfer-Encoding')
  t.match(rest.join('\r\n\r\n'), /^retry: \d+\n\nid: [^\n]+\nevent: stream\.cancelled\ndata: \{"streamId":"7"\}\n\n$/, 'plain frames')
})

t.test('a stream pipelined behind another request starts once that one is answered', async t => {
  // An app with one more route, whose answer waits until the test lets it go.
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'silent' })
  const app = buildApp(config)
  let answer: (() => void) | undefined
  app.get('/held', async () => {
    await new Promise<void>(resolve => { answer = resolve })
    return { held: true }
  })
  t.teardown(() => app.close())
  await app.listen({ host: config.host, port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const client = await rawClient(t, url)
  client.socket.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\nGET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitUntil('the stream has its place and waits its turn', () => answer !== undefined && app.connectionLimits.openFrom('127.0.0.1') === 1)
  t.equal(client.received(), '', 'nothing is written before the answer ahead of it')
  answer!()
  await waitUntil('the stream opens', () => client.received().includes('retry:'))
  const { body } = await publish(url, EVENT)
  await waitUntil('the event', () => client.received().includes(`id: ${body.id as string}`))
  t.match(client.received(), /^HTTP\/1\.1 200 OK\r\n[^]*\{"held":true\}HTTP\/1\.1 200 OK\r\n[^]*text\/event-stream[^]*retry: /, 'the answer, then the stream')
  t.equal(app.broker.stats().connections.total, 1)

  // A request in the same packet behind a stream read by Node's parser: the connection is closed.
  const greedy = await rawClient(t, url)
  greedy.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitUntil('the first answer', () => greedy.received().includes('"status"'))
  greedy.socket.write('GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  await serverLetGo(greedy)
  t.equal(greedy.received().split('HTTP/1.1').length, 2, 'nothing more was answered')
  await waitUntil('only the first stream is left', () => app.broker.stats().connections.total === 1)
})

t.test('memory stays bounded whatever a stream\'s client sends: megabytes of pipelined requests are read and dropped', async t => {
  const { url, app, logs } = await startApp(t)
  for (const opening of ['GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /events/subscribe?all=true HTTP/1.0\r\n\r\n']) {
    const client = await rawClient(t, url)
    client.socket.write(opening)
    await waitUntil('the stream opens', () => client.received().includes('retry:'))
    const flood = Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(30_000)) // ~1 MB
    for (let i = 0; i < 8; i++) {
      // Each write completes only as the server reads: a server that stopped reading would stall it.
      await new Promise<void>((resolve, reject) => client.socket.write(flood, error => error ? reject(error) : resolve()))
    }
    await waitUntil('the server has read it all', () => client.socket.writableLength === 0)
    const { body } = await publish(url, EVENT)
    await waitUntil('the event after the flood', () => client.received().includes(`id: ${body.id as string}`))
    t.equal(client.received().split('HTTP/1.').length, 2, 'nothing was answered')
    client.socket.destroy()
  }
  t.notOk(logs.some(line => (line.req as { url?: string } | undefined)?.url === '/healthz'), 'no request of the flood was handled')
  await waitUntil('the streams are let go', () => app.broker.stats().connections.total === 0)
})

/**
 * What plain Node (this version, its defaults) makes of these bytes: the status it answers, and for a
 * request it took, whether the request still had its Authorization header.
 */
async function nodeAnswers (bytes: Buffer | string): Promise<{ status: string, authorization: boolean }> {
  const server = http.createServer((request, response) => response.end(String(request.headers.authorization !== undefined)))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const client = await rawClient({ teardown () {} }, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    client.socket.write(bytes)
    // A refusal closes the connection; a request taken is answered "true" or "false".
    await waitUntil('an answer', () => client.ended() || /\r\n\r\n(true|false)$/.test(client.received()))
    client.socket.destroy()
    return { status: client.received().slice(9, 12), authorization: client.received().endsWith('true') }
  } finally {
    server.close()
  }
}

t.test('the intake takes only heads Node would take', async t => {
  const secret = 'an-hs256-secret-that-is-long-enough-for-tests'
  const token = signJwt({ scope: 'events:all', exp: nowS() + 60 }, { alg: 'HS256', secret })
  const { url } = await startApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: secret, LOG_LEVEL: 'silent' })

  for (const byte of [0x80, 0xe9, 0xff]) {
    const bytes = Buffer.concat([Buffer.from('GET /events/subscribe?all=true&x='), Buffer.from([byte]), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')])
    t.equal((await nodeAnswers(bytes)).status, '400', `Node refuses 0x${byte.toString(16)} in the target`)
    const client = await rawClient(t, url)
    client.socket.write(bytes)
    await waitUntil('an answer', () => /^HTTP\/1\.1 \d{3}/.test(client.received()))
    t.match(client.received(), /^HTTP\/1\.1 400 /, `so does the service (0x${byte.toString(16)})`)
  }

  // Past maxHeadersCount (2000) Node 20 drops the headers (here, the token); Node 24 refuses the head.
  const many = Array.from({ length: 2000 }, (_, i) => `${i.toString(36)}:\r\n`).join('')
  const bytes = `GET /events/subscribe?all=true HTTP/1.1\r\nHost: x\r\n${many}Authorization: Bearer ${token}\r\n\r\n`
  const node = await nodeAnswers(bytes)
  const client = await rawClient(t, url)
  client.socket.write(bytes)
  await waitUntil('an answer', () => /^HTTP\/1\.1 \d{3}/.test(client.received()))
  const expected = node.status !== '200' ? node.status : node.authorization ? '200' : '401'
  t.equal(client.received().slice(9, 12), expected, `more headers than Node keeps: read as Node reads them (Node: ${node.status})`)
})
