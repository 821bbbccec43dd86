import http from 'node:http'
import t from 'tap'
import { EventSource } from 'eventsource'
import { startApp, waitUntil } from './helpers/app.js'
import { openStream, subscribe } from './helpers/sse-client.js'
import { encodeRetry } from '../services/sse-frame.js'

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })

/**
 * Publishes on a connection of its own. fetch would share its pool with the EventSource's: a stream
 * that ended cleanly leaves a connection that looks reusable, and that the server is closing.
 */
async function publishIds (url: string, events: unknown[]): Promise<string[]> {
  return await new Promise((resolve, reject) => {
    const request = http.request(`${url}/events/publish`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, response => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', chunk => { body += chunk })
      response.on('end', () => response.statusCode === 202 ? resolve(JSON.parse(body).ids) : reject(new Error(`publish: ${response.statusCode} ${body}`)))
    })
    request.on('error', reject)
    request.end(JSON.stringify(events))
  })
}

t.test('MAX_STREAM_AGE_MS ends streams cleanly with a retry hint; an EventSource resumes and misses nothing', async t => {
  const { url, app, logs } = await startApp(t, { MAX_STREAM_AGE_MS: '1000', RETRY_MS: '100' })

  const raw = await openStream(`${url}/events/subscribe?streams=a`)
  const source = new EventSource(`${url}/events/subscribe?streams=a`)
  t.teardown(() => source.close())
  const received: string[] = []
  let opened = 0
  source.onopen = () => { opened++ }
  source.addEventListener('stream.cancelled', event => received.push(event.lastEventId))
  await waitUntil('the EventSource is open', () => opened === 1)

  // Events keep coming while the stream is ended twice by its age and resumed each time.
  const published: string[] = []
  while (opened < 3) {
    published.push((await publishIds(url, [cancelled('a'), cancelled('b')]))[0]!)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  await waitUntil('every event has arrived', () => received.length >= published.length)
  t.same(received, published, `all ${published.length} events of stream a, each once, in order, across two ends`)
  t.ok(app.broker.metrics.reconnections >= 2, 'the EventSource came back with its last event id')
  t.ok(app.broker.metrics.replayed > 0, 'what was published while it was away was replayed')
  t.same(app.broker.metrics.resyncs, { malformed_id: 0, unknown_id: 0, expired: 0, replay_limit: 0, gap: 0 }, 'no resync: nothing was lost')

  await raw.until('the end of the raw stream', () => raw.ended)
  t.ok(raw.response.complete, 'a clean end of the response, not an abort')
  const last = /retry: (\d+)\n\n$/.exec(raw.raw)
  t.ok(last !== null, 'the last frame is a retry hint')
  t.ok(Number(last![1]) >= 50 && Number(last![1]) < 150, 'RETRY_MS with jitter, as a drain sends')
  t.ok(logs.some(line => line.msg === 'stream closed' && line.reason === 'max_age'), 'the close is logged with its reason')

  const stats: any = await (await fetch(`${url}/events/stats`)).json()
  t.ok(stats.connections.closed.max_age >= 3, 'counted as a close reason in /events/stats')
  const metrics = await (await fetch(`${url}/metrics`)).text()
  t.match(metrics, /^sse_connections_closed_total\{reason="max_age"\} [1-9]\d*$/m, 'and in /metrics')
  t.equal(app.broker.metrics.closes.drain, 0)
})

t.test('each stream\'s age is MAX_STREAM_AGE_MS with its own jitter of up to 20%', async t => {
  const age = 600_000
  const { url, app } = await startApp(t, { MAX_STREAM_AGE_MS: String(age) })
  const before = Date.now()
  const clients = await Promise.all(Array.from({ length: 20 }, () => subscribe(t, url, 'all=true')))
  const after = Date.now()
  const farewell = (): Buffer => encodeRetry(1000)

  app.broker.endAged(farewell, before + 0.8 * age - 1000)
  t.equal(app.broker.size, 20, 'none ends before 80% of the age')
  app.broker.endAged(farewell, before + age)
  t.ok(app.broker.size > 0 && app.broker.size < 20, `at the age itself some have ended and some not (${app.broker.size} open)`)
  app.broker.endAged(farewell, after + 1.2 * age + 1000)
  t.equal(app.broker.size, 0, 'all have ended by 120% of it')
  t.equal(app.broker.metrics.closes.max_age, 20)
  await Promise.all(clients.map(client => client.until('the end', () => client.ended)))
  t.ok(clients.every(client => client.raw.endsWith('retry: 1000\n\n')), 'each got the farewell')
})

t.test('with MAX_STREAM_AGE_MS=0 streams have no age', async t => {
  const { url, app } = await startApp(t, { MAX_STREAM_AGE_MS: '0' })
  await subscribe(t, url, 'all=true')
  app.broker.endAged(() => encodeRetry(1000), Date.now() + 365 * 86_400_000)
  t.equal(app.broker.size, 1)
  t.equal(app.broker.metrics.closes.max_age, 0)
})
