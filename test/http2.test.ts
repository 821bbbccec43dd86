import { once } from 'node:events'
import https from 'node:https'
import type { ClientHttp2Session } from 'node:http2'
import type { Socket } from 'node:net'
import t from 'tap'
import { randomAccountId, startApp, waitUntil } from './helpers/app.js'
import { connectH2, getH2, requestH2, subscribeH2 } from './helpers/h2.js'
import { dataFrameRelay } from './helpers/h2-frames.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { StreamClient } from './helpers/sse-client.js'
import { makeCertificate } from './helpers/tls.js'

// Nothing this file does may make Node warn (a connection header on HTTP/2 would, once per process).
const warnings: Error[] = []
process.on('warning', warning => warnings.push(warning))

const certificate = makeCertificate(t)
const tls = (env: Record<string, string> = {}) => ({ ...certificate.env, ...env })
const trusted = { ca: certificate.cert }
const TOKEN = 'http2-test-publish-token-0123'

/** POSTs JSON to /events/publish over the session; the parsed answer. */
async function publishH2 (session: ClientHttp2Session, body: unknown): Promise<{ status: number, body: any }> {
  const stream = session.request({ ':method': 'POST', ':path': '/events/publish', 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` })
  stream.end(JSON.stringify(body))
  const [head] = await once(stream, 'response')
  let text = ''
  for await (const chunk of stream) text += chunk
  return { status: Number(head[':status']), body: JSON.parse(text) }
}

const cancelled = (streamId: string, data: Record<string, unknown> = {}) => ({ event: 'stream.cancelled', data: { streamId, ...data } })

/** An HTTP/1.1 request to the TLS port: https.request offers no ALPN protocol, so the server falls back. */
async function http1 (url: string, path: string, headers: Record<string, string> = {}): Promise<StreamClient> {
  return await new Promise((resolve, reject) => {
    const request = https.get(`${url}${path}`, { ...trusted, headers, agent: false }, response => {
      resolve(new StreamClient(response.statusCode!, response.headers, response))
    })
    request.on('error', reject)
  })
}

t.test('TLS: h2 by ALPN; the stream\'s head as on HTTP/1.1, without connection headers; events and heartbeats', async t => {
  const { url } = await startApp(t, tls({ PUBLISH_TOKEN: TOKEN, HEARTBEAT_MS: '50', RETRY_MS: '2500' }))
  const session = await connectH2(t, url, trusted)
  t.equal(session.alpnProtocol, 'h2')
  const client = await subscribeH2(t, session, 'streams=1')
  t.equal(client.status, 200)
  t.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(client.headers['cache-control'], 'no-cache, no-transform')
  t.equal(client.headers['x-accel-buffering'], 'no')
  t.equal(client.headers['x-content-type-options'], 'nosniff')
  for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'content-length']) {
    t.equal(client.headers[name], undefined, `no ${name} header`)
  }
  t.ok(client.raw.startsWith('retry: 2500\n\n'), 'the retry hint comes first')

  const { status, body } = await publishH2(session, [cancelled('1'), cancelled('2'), cancelled('1')])
  t.equal(status, 202, 'publishing over HTTP/2 too')
  const events = await client.eventCount(2)
  t.same(events.map(event => event.id), [body.ids[0], body.ids[2]], 'the stream\'s events, in order')
  await client.until('a heartbeat', () => client.comments.includes('ping'))
  t.pass('heartbeats are written to HTTP/2 streams as to the others')
})

t.test('100 concurrent streams over one session, each receiving its own events', async t => {
  const { url, app } = await startApp(t, tls({ PUBLISH_TOKEN: TOKEN, MAX_CONNECTIONS_PER_IP: '200', SUBSCRIBE_RATE_PER_MINUTE: '1000' }))
  const session = await connectH2(t, url, trusted)
  const streams = await Promise.all(Array.from({ length: 100 }, (_, i) => subscribeH2(t, session, `streams=s${i}`)))
  await waitUntil('every stream is open', () => app.broker.size === 100)
  // The session is full (HTTP2_MAX_STREAMS, 100 by default): the publisher has one of its own.
  const publisher = await connectH2(t, url, trusted)
  const stats = await getH2(publisher, '/events/stats')
  t.match(stats.body.connections, { active: 100, direct: 0, byProtocol: { http1: 0, h2: 100 } }, 'stats count them by protocol')

  // Two rounds: every stream gets its own event twice, and none of the others'.
  const first = await publishH2(publisher, streams.map((_, i) => cancelled(`s${i}`)))
  const second = await publishH2(publisher, streams.map((_, i) => cancelled(`s${i}`)))
  await Promise.all(streams.map(stream => stream.eventCount(2)))
  t.ok(streams.every((stream, i) => stream.events.map(event => event.id).join() === `${first.body.ids[i]},${second.body.ids[i]}`),
    'each of the 100 streams got exactly its two events, in order')
  t.equal(app.broker.metrics.delivered, 200)
})

t.test('a stream that stops reading is reset (RST_STREAM CANCEL); the session\'s other streams go on', async t => {
  const { url, app } = await startApp(t, tls({ PUBLISH_TOKEN: TOKEN, MAX_BUFFERED_BYTES: '4096' }))
  const session = await connectH2(t, url, trusted)
  const stalled = await subscribeH2(t, session, 'all=true')
  const reader = await subscribeH2(t, session, 'all=true')
  // It takes no more bytes: its flow-control window fills, then the server's stream queues them.
  stalled.response.pause()
  const pad = 'x'.repeat(8 * 1024)
  const ids: string[] = []
  for (let batch = 0; batch < 50 && !stalled.ended; batch++) {
    const { body } = await publishH2(session, Array.from({ length: 4 }, () => cancelled('a', { pad })))
    ids.push(...body.ids)
    await reader.eventCount(ids.length)
  }
  await stalled.until('the reset', () => stalled.ended)
  t.equal(stalled.response.rstCode, 8, 'reset with NGHTTP2_CANCEL, not ended as if complete')
  t.equal(app.broker.metrics.slowConsumerDisconnects, 1)
  t.equal(app.broker.metrics.closes.slow_consumer, 1)

  const { body } = await publishH2(session, cancelled('a'))
  await reader.eventCount(ids.length + 1)
  t.same(reader.events.map(event => event.id), [...ids, body.id], 'the other stream got every event, in order, and still does')
  t.equal(session.closed, false, 'the session goes on')
})

t.test('resume on HTTP/2: Last-Event-ID, replayed in rounds that wait for the client', async t => {
  const { url } = await startApp(t, tls({ PUBLISH_TOKEN: TOKEN, MAX_BUFFERED_BYTES: '1024' }))
  const session = await connectH2(t, url, trusted)
  // Each event is over the cap, which ends a round of the replay. Most are under the stream's own
  // high-water mark (no 'drain' is then due, and the next round starts at once); one is far over it
  // (the next round waits for 'drain').
  const { body } = await publishH2(session, Array.from({ length: 12 }, (_, i) =>
    cancelled('r', { pad: 'r'.repeat(i === 6 ? 200 * 1024 : 2 * 1024) })))
  const resumed = await subscribeH2(t, session, 'streams=r', { 'last-event-id': body.ids[2] })
  await resumed.eventCount(9)
  const live = await publishH2(session, cancelled('r'))
  await resumed.eventCount(10)
  t.same(resumed.events.map(event => event.id), [...body.ids.slice(3), live.body.id], 'what it missed, then live: no gap, no duplicate')
  const fromQuery = await subscribeH2(t, session, `streams=r&lastEventId=${body.ids[10]}`)
  t.same((await fromQuery.eventCount(2)).map(event => event.id), [body.ids[11], live.body.id], 'the lastEventId parameter too')
})

t.test('limits count streams, not connections: a session\'s third stream is refused, and closing one frees its place', async t => {
  const { url, app } = await startApp(t, tls({ MAX_CONNECTIONS_PER_IP: '2' }))
  const session = await connectH2(t, url, trusted)
  const first = await subscribeH2(t, session, 'all=true')
  await subscribeH2(t, session, 'all=true')
  const third = await getH2(session, '/events/subscribe?all=true')
  t.equal(third.status, 429)
  t.equal(third.headers['retry-after'], '10')
  t.equal(third.body.error, 'too_many_per_ip')
  first.close()
  await waitUntil('the stream\'s place is free', () => app.broker.size === 1)
  const again = await subscribeH2(t, session, 'all=true')
  t.equal(again.status, 200, 'a new stream on the same session takes the place')
  t.equal(app.broker.metrics.closes.client_closed, 1, 'the closed stream was let go as closed by its client')
})

t.test('refusals are the same JSON answers over HTTP/2 as over HTTP/1.1', async t => {
  const secret = 'an-hs256-secret-that-is-long-enough-for-tests'
  const { url } = await startApp(t, tls({ AUTH_MODE: 'jwt', JWT_SECRET: secret, MAX_CONNECTIONS: '1', SUBSCRIBE_RATE_PER_MINUTE: '40' }))
  const alice = randomAccountId()
  const token = signJwt({ sub: alice, exp: nowS() + 60 }, { alg: 'HS256', secret })
  const session = await connectH2(t, url, trusted)
  await subscribeH2(t, session, `users=${alice}`, { authorization: `Bearer ${token}` }) // the one place
  const cases: Array<[number, string, Record<string, string>]> = [
    [400, 'users=GABC', {}],
    [401, `users=${alice}`, {}],
    [403, `users=${randomAccountId()}`, { authorization: `Bearer ${token}` }],
    [503, `users=${alice}`, { authorization: `Bearer ${token}` }]
  ]
  for (const [status, query, headers] of cases) {
    const over2 = await getH2(session, `/events/subscribe?${query}`, headers)
    const over1 = await http1(url, `/events/subscribe?${query}`, headers)
    await over1.until('the end of the answer', () => over1.ended)
    t.equal(over2.status, status, `${status} over HTTP/2`)
    t.equal(over1.status, status, `${status} over HTTP/1.1`)
    t.same(over2.body, JSON.parse(over1.raw), `${status}: the same body`)
    t.equal(over2.headers['retry-after'], over1.headers['retry-after'])
    t.equal(over2.headers['www-authenticate'], over1.headers['www-authenticate'])
  }
  let limited
  for (let i = 0; i < 50 && limited === undefined; i++) {
    const answer = await getH2(session, '/events/subscribe?users=GABC')
    if (answer.status === 429) limited = answer
  }
  t.match(limited, { body: { error: 'too_many_requests' }, headers: { 'retry-after': /^\d+$/ } }, 'the subscribe rate limit, per address')
})

t.test('auth over HTTP/2: the header, a cookie among the several a browser sends, access_token and token', async t => {
  const secret = 'an-hs256-secret-that-is-long-enough-for-tests'
  const { url } = await startApp(t, tls({ AUTH_MODE: 'jwt', JWT_SECRET: secret, CORS_ORIGINS: 'https://app.flowfi.xyz' }))
  const alice = randomAccountId()
  const token = signJwt({ sub: alice, exp: nowS() + 60 }, { alg: 'HS256', secret })
  const session = await connectH2(t, url, trusted)
  const ways: Array<[string, string, Record<string, string | string[]>]> = [
    ['the header', '', { authorization: `Bearer ${token}` }],
    // Over HTTP/2 browsers send each cookie in a header field of its own.
    ['a cookie', '', { cookie: ['theme=dark', `flowfi_token=${token}`] as unknown as string }],
    ['access_token', `&access_token=${token}`, {}],
    ['token', `&token=${token}`, {}]
  ]
  for (const [way, query, headers] of ways) {
    const stream = await subscribeH2(t, session, `users=${alice}${query}`, { origin: 'https://app.flowfi.xyz', ...headers as Record<string, string> })
    t.equal(stream.status, 200, way)
    t.equal(stream.headers['access-control-allow-origin'], 'https://app.flowfi.xyz', `${way}: with the CORS grant`)
  }
  const head = await requestH2(session, `/events/subscribe?users=${alice}`, { ':method': 'HEAD', authorization: `Bearer ${token}` })
  await head.until('the end of the HEAD answer', () => head.ended)
  t.equal(head.status, 200)
  t.equal(head.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(head.raw, '', 'HEAD: the head alone')
})

t.test('HTTP2_MAX_STREAMS is the session\'s SETTINGS_MAX_CONCURRENT_STREAMS', async t => {
  const { url } = await startApp(t, tls({ HTTP2_MAX_STREAMS: '7' }))
  const session = await connectH2(t, url, trusted)
  if (session.remoteSettings.maxConcurrentStreams !== 7) await once(session, 'remoteSettings')
  t.equal(session.remoteSettings.maxConcurrentStreams, 7)
})

t.test('HTTP/1.1 on the TLS port for a client that does not offer h2; probes over HTTPS', async t => {
  const { url, app } = await startApp(t, tls({ PUBLISH_TOKEN: TOKEN }))
  for (const path of ['/healthz', '/readyz']) {
    const probe = await http1(url, path)
    await probe.until(`the end of ${path}`, () => probe.ended)
    t.equal(probe.status, 200, `${path} over HTTPS`)
    t.equal(probe.response.httpVersion, '1.1')
  }
  const client = await http1(url, '/events/subscribe?streams=1', { connection: 'keep-alive' })
  t.teardown(() => client.close())
  t.equal(client.status, 200)
  t.equal(client.headers.connection, 'close')
  t.equal(client.headers['transfer-encoding'], 'chunked')
  await client.until('the retry hint', () => client.retry !== undefined)
  const session = await connectH2(t, url, trusted)
  const { body } = await publishH2(session, [cancelled('1'), cancelled('2'), cancelled('1')])
  t.same((await client.eventCount(2)).map(event => event.id), [body.ids[0], body.ids[2]], 'events published over h2 reach it')
  const stats = await getH2(session, '/events/stats')
  t.same(stats.body.connections.byProtocol, { http1: 1, h2: 0 })
  await app.close()
  await client.until('the end of the stream', () => client.ended)
  t.ok(client.response.complete, 'closing ends it cleanly: the last chunk, not a cut')
})

t.test('an idle HTTP/1.1 connection on the TLS port is closed after the keep-alive timeout', async t => {
  const { url, app } = await startApp(t, tls())
  t.equal(app.server.keepAliveTimeout, 72_000, 'Fastify\'s, as on its plain HTTP/1.1 servers')
  app.server.keepAliveTimeout = 100 // rather than wait 72 s
  const agent = new https.Agent({ keepAlive: true, ...trusted })
  t.teardown(() => agent.destroy())
  const socket = await new Promise<Socket>((resolve, reject) => {
    https.get(`${url}/healthz`, { agent }, response => {
      const socket = response.socket
      response.resume()
      response.on('end', () => resolve(socket))
    }).on('error', reject)
  })
  await once(socket, 'close')
  t.pass('the server closed the idle connection')
})

t.test('drain: readiness fails, each session gets GOAWAY before its first stream ends, and a reconnection opens a new session', async t => {
  const { url, app } = await startApp(t, tls({ DRAIN_DELAY_MS: '100', DRAIN_WINDOW_MS: '200', RETRY_MS: '1000' }))
  const sessions = [await connectH2(t, url, trusted), await connectH2(t, url, trusted)]
  const streams = await Promise.all(sessions.flatMap(session => [subscribeH2(t, session, 'all=true'), subscribeH2(t, session, 'all=true')]))
  const order: string[] = []
  sessions.forEach((session, i) => session.once('goaway', () => order.push(`goaway ${i}`)))
  streams.forEach((stream, i) => stream.response.once('end', () => order.push(`end ${Math.floor(i / 2)}`)))

  const drained = app.drain()
  const readyz = await getH2(sessions[0]!, '/readyz')
  t.equal(readyz.status, 503)
  t.same(readyz.body, { status: 'draining' })
  await drained
  await Promise.all(streams.map(stream => stream.until('the end of the stream', () => stream.ended)))
  for (const i of [0, 1]) {
    t.ok(order.indexOf(`goaway ${i}`) >= 0 && order.indexOf(`goaway ${i}`) < order.indexOf(`end ${i}`), `session ${i}: GOAWAY before its first stream ended`)
  }
  for (const stream of streams) {
    t.match(stream.raw, /retry: \d+\n\n$/, 'the last frame is a retry hint')
    t.equal(stream.response.rstCode, 0, 'a clean end (END_STREAM), not a reset')
  }
  await waitUntil('the sessions close', () => sessions.every(session => session.destroyed))
  t.pass('with their last stream, the sessions closed: a reconnection needs a new connection')

  // What EventSource does next: a new connection, to whichever instance the load balancer picks.
  const fresh = await connectH2(t, url, trusted)
  const sentAway = once(fresh, 'goaway')
  const late = await requestH2(fresh, '/events/subscribe?all=true')
  await late.until('its end', () => late.ended)
  t.equal(late.raw, 'retry: 1000\n\n', 'here, still draining: told to retry elsewhere')
  await sentAway
  t.pass('and that session is sent away too')
})

t.test('heartbeats keep a session with a stream alive past the idle timeout; an idle session is closed', async t => {
  const { url } = await startApp(t, tls({ HEARTBEAT_MS: '25', HTTP2_SESSION_IDLE_TIMEOUT_MS: '300' }))
  const busy = await connectH2(t, url, trusted)
  const idle = await connectH2(t, url, trusted)
  const stream = await subscribeH2(t, busy, 'all=true')
  let goaway = false
  busy.once('goaway', () => { goaway = true })
  t.equal((await getH2(idle, '/healthz')).status, 200)
  await once(idle, 'close')
  t.pass('a session with no stream is closed after the idle timeout')
  const beats = stream.comments.length
  await stream.until('more heartbeats than the idle timeout lasts', () => stream.comments.length >= beats + 16)
  t.notOk(goaway, 'the session with a stream got no GOAWAY')
  t.notOk(stream.ended, 'and its stream is open')
})

t.test('HTTP2_CLEARTEXT=true: h2c with prior knowledge', async t => {
  const { url, app } = await startApp(t, { HTTP2_CLEARTEXT: 'true', PUBLISH_TOKEN: TOKEN })
  t.match(url, /^http:/)
  const session = await connectH2(t, url)
  t.equal((await getH2(session, '/healthz')).status, 200)
  const client = await subscribeH2(t, session, 'streams=1')
  t.equal(client.headers.connection, undefined)
  const { body } = await publishH2(session, cancelled('1'))
  t.same((await client.eventCount(1)).map(event => event.id), [body.id])
  t.match(app.broker.metrics.activeByProtocol, { h2: 1, http1: 0 })
  const metrics = await getH2(session, '/metrics')
  t.match(metrics.body, /^sse_streams_active\{protocol="h2"\} 1$/m)
  t.match(metrics.body, /^sse_streams_opened_total\{protocol="h2"\} 1$/m)
  t.match(metrics.body, /^sse_connections_active 1$/m, 'the unlabelled gauge as before')
})

t.test('the events of one flush reach each h2 stream as one DATA frame, read on the wire', async t => {
  const { url } = await startApp(t, { HTTP2_CLEARTEXT: 'true', PUBLISH_TOKEN: TOKEN })
  const relay = await dataFrameRelay(t, url)
  const session = await connectH2(t, relay.url)
  const streams = [await subscribeH2(t, session, 'all=true'), await subscribeH2(t, session, 'streams=g')]
  // One publish is one flush: ten events to both streams.
  const { body } = await publishH2(session, Array.from({ length: 10 }, () => cancelled('g')))
  await Promise.all(streams.map(stream => stream.eventCount(10)))
  for (const stream of streams) {
    const frames = relay.frames.filter(frame => frame.streamId === stream.response.id && frame.payload.includes('event: '))
    t.equal(frames.length, 1, `stream ${stream.response.id!}: one DATA frame carries the flush`)
    t.same(stream.events.map(event => event.id), body.ids, 'with its ten events, in order')
    t.equal(frames[0]!.payload.toString().match(/^id: /gm)?.length, 10)
  }
})

t.test('no warning was printed along the way', async t => {
  t.same(warnings.map(warning => warning.message), [])
})
