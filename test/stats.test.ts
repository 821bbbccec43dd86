import t from 'tap'
import { publish, randomAccountId, startApp } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'
import { RateWindow } from '../services/rate-window.js'

t.test('stats count connections by filter kind, events published and delivered', async t => {
  const { url } = await startApp(t, { INSTANCE_ID: 'stats-test' })
  const user = randomAccountId()
  const all = await subscribe(t, url, 'all=true')
  const streams = await subscribe(t, url, 'streams=1&streams=2')
  await subscribe(t, url, `users=${user}&streams=1`)

  await publish(url, [
    { event: 'stream.cancelled', data: { streamId: '1' } }, // all, streams, users+streams: 3 deliveries
    { event: 'stream.cancelled', data: { streamId: '2' } }, // all, streams: 2
    { event: 'stream.cancelled', data: { streamId: '3' } } // all: 1
  ])
  await all.eventCount(3)
  await streams.eventCount(2)

  const response = await fetch(`${url}/events/stats`)
  t.equal(response.status, 200)
  const stats: any = await response.json()
  t.match(stats, {
    instanceId: 'stats-test',
    version: '0.1.0',
    uptimeSeconds: Number,
    draining: false,
    connections: {
      active: 3,
      replaying: 0,
      byFilter: { all: 1, streams: 2, users: 1 },
      opened: 3,
      rejected: { bad_request: 0, draining: 0 },
      reconnections: 0,
      closed: { client_closed: 0, slow_consumer: 0, drain: 0, token_expired: 0, reader_behind: 0, max_age: 0 }
    },
    events: {
      published: 3,
      delivered: 6,
      publishedPerSecond: 3 / 60,
      deliveredPerSecond: 6 / 60,
      publishedByType: { 'stream.cancelled': 3, 'stream.created': 0 },
      rejected: { invalid_event: 0, invalid_batch: 0, unauthorized: 0 },
      replayed: 0,
      deliveryLatency: { count: 6, sumSeconds: Number }
    },
    resyncs: { malformed_id: 0, unknown_id: 0, expired: 0, replay_limit: 0, gap: 0 },
    slowConsumerDisconnects: 0,
    bufferedBytes: 0,
    history: { events: 3, bytes: Number },
    trackedStreams: 0,
    fanout: { mode: 'memory' }
  })

  t.ok(stats.events.deliveryLatency.sumSeconds > 0, 'the latencies of the six deliveries add up to some time')

  all.close()
  await new Promise(resolve => setTimeout(resolve, 50))
  const after = await (await fetch(`${url}/events/stats`)).json() as { connections: unknown }
  t.match(after.connections, { active: 2, byFilter: { all: 0, streams: 2, users: 1 }, closed: { client_closed: 1 } })
})

t.test('the per-second rates cover the last minute', async t => {
  const window = new RateWindow()
  const start = 1_000_000_000
  window.add(60, start)
  window.add(60, start + 30_000)
  t.equal(window.perSecond(start + 30_000), 2)
  t.equal(window.perSecond(start + 61_000), 1, 'the first minute\'s count has left the window')
  t.equal(window.perSecond(start + 3_600_000), 0, 'a long pause empties it')
  window.add(6, start)
  t.equal(window.perSecond(start + 3_600_000), 0.1, 'a late clock still counts, in the current second')
})

t.test('health probes', async t => {
  const { url } = await startApp(t)
  const healthz = await fetch(`${url}/healthz`)
  t.equal(healthz.status, 200)
  t.same(await healthz.json(), { status: 'ok' })
  const readyz = await fetch(`${url}/readyz`)
  t.equal(readyz.status, 200)
  t.same(await readyz.json(), { status: 'ready' })
})
