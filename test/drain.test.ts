import t from 'tap'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { openStream, subscribe, type StreamClient } from './helpers/sse-client.js'

t.test('drain: readiness fails first, then every stream ends cleanly with a jittered retry, spread out', async t => {
  // A delay long enough for the checks below to run inside it, even on a loaded machine.
  const delayMs = 2000
  const { url, app } = await startApp(t, { DRAIN_DELAY_MS: String(delayMs), DRAIN_WINDOW_MS: '300', RETRY_MS: '1000' })
  const streams = await Promise.all(Array.from({ length: 10 }, () => subscribe(t, url, 'all=true')))
  // Opened last, so ended last: a client that goes away by itself before its turn in the drain.
  const leaving = await subscribe(t, url, 'all=true')
  const endedAt = new Map<StreamClient, number>()
  for (const stream of streams) {
    stream.response.once('end', () => {
      endedAt.set(stream, Date.now())
      leaving.close()
    })
  }

  const began = Date.now()
  const drained = app.drain()
  const readyz = await fetch(`${url}/readyz`)
  t.equal(readyz.status, 503)
  t.same(await readyz.json(), { status: 'draining' })
  t.match(await (await fetch(`${url}/metrics`)).text(), /^sse_ready 0$/m, '/metrics says so too')
  t.equal(endedAt.size, 0, 'no stream has ended while the load balancer catches up')
  t.match(await (await fetch(`${url}/events/stats`)).json(), { draining: true, connections: { active: 11 } })

  const late = await openStream(`${url}/events/subscribe?all=true`)
  t.equal(late.status, 200, 'a stream opened while draining is not refused with an error status...')
  await late.until('its end', () => late.ended)
  t.equal(late.raw, 'retry: 1000\n\n', '...it is told to retry, and ended')

  await drained
  await Promise.all(streams.map(stream => stream.until('the end of the stream', () => stream.ended)))
  const retries = new Set<number>()
  for (const stream of streams) {
    t.ok(stream.response.complete, 'a clean end of the response, not an abort')
    const last = /retry: (\d+)\n\n$/.exec(stream.raw)
    t.ok(last !== null, 'the last frame is a retry hint')
    const retry = Number(last![1])
    t.ok(retry >= 500 && retry < 1500, `retry ${retry} is RETRY_MS with jitter`)
    retries.add(retry)
  }
  t.ok(retries.size > 1, 'the retry hints differ')
  const times = [...endedAt.values()]
  t.ok(Math.min(...times) - began >= delayMs - 10, 'no stream ended before DRAIN_DELAY_MS')
  t.ok(Math.max(...times) - Math.min(...times) >= 150, 'the ends are spread over the drain window')
  t.notMatch(leaving.raw, /retry: \d+\n\n.*retry:/s, 'the client that left got no farewell')
  t.equal(app.broker.stats().connections.total, 0)
})

t.test('close() ends a stream that is still replaying', async t => {
  const { url, app } = await startApp(t, { MAX_BUFFERED_BYTES: '1024' })
  const pad = 'p'.repeat(64 * 1024)
  const ids: string[] = []
  for (let batch = 0; batch < 20; batch++) {
    const { body } = await publish(url, Array.from({ length: 10 }, () => ({ event: 'stream.cancelled', data: { streamId: 'a', pad } })))
    ids.push(...body.ids)
  }
  const client = await openStream(`${url}/events/subscribe?all=true`, { 'last-event-id': ids[0]! })
  client.response.pause() // 13 MB to replay, and a client that does not read
  await waitUntil('the replay waits', () => app.broker.stats().connections.replaying === 1)
  await app.close()
  client.response.resume()
  await client.until('the end of the stream', () => client.ended)
  t.ok(client.events.length < ids.length - 1, 'ended mid-replay')
  t.equal(app.broker.stats().connections.replaying, 0)
})
