import { spawnSync } from 'node:child_process'
import net from 'node:net'
import t from 'tap'
import { publish, randomAccountId, startApp, waitUntil } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'

const TOKEN = 'metrics-test-token-0123456789'

/** Scrapes and parses the text format: `name{labels}` → value. */
async function scrape (url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/metrics`)
  if (response.status !== 200) throw new Error(`scrape: ${response.status}`)
  const samples = new Map<string, number>()
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    samples.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return samples
}

t.test('every metric moves as it should through connect, publish, resume, evict and disconnect', async t => {
  const { url, app } = await startApp(t, { PUBLISH_TOKEN: TOKEN, MAX_BUFFERED_BYTES: '4096' })
  const auth = { authorization: `Bearer ${TOKEN}` }
  let m = await scrape(url)
  t.equal(m.get('sse_connections_active'), 0)
  t.equal(m.get('sse_ready'), 1)
  t.ok(m.has('process_cpu_user_seconds_total'), 'default process metrics')
  t.ok(m.has('nodejs_heap_size_total_bytes'))
  t.notOk([...m.keys()].some(key => key.startsWith('nodejs_active_handles_total')), 'gauges named like counters are dropped')

  const reader = await subscribe(t, url, 'all=true')
  await fetch(`${url}/events/subscribe?users=nope`)
  m = await scrape(url)
  t.equal(m.get('sse_connections_active'), 1)
  t.equal(m.get('sse_connections_total{result="opened"}'), 1)
  t.equal(m.get('sse_connections_total{result="bad_request"}'), 1)

  const sender = randomAccountId()
  const { body } = await publish(url, [
    { event: 'stream.created', data: { id: '1', sender, recipient: sender } },
    { event: 'stream.cancelled', data: { streamId: '1' } }
  ], auth)
  await reader.eventCount(2)
  await publish(url, [{ event: 'stream.cancelled', data: { streamId: 'bad id' } }, { event: 'nope', data: {} }], auth)
  await publish(url, [], auth)
  await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } })
  m = await scrape(url)
  t.equal(m.get('sse_events_published_total{event="stream.created"}'), 1)
  t.equal(m.get('sse_events_published_total{event="stream.cancelled"}'), 1)
  t.equal(m.get('sse_events_published_total{event="stream.withdrawn"}'), 0, 'every type is there from the start')
  t.equal(m.get('sse_events_delivered_total'), 2)
  t.equal(m.get('sse_events_rejected_total{reason="invalid_event"}'), 2)
  t.equal(m.get('sse_events_rejected_total{reason="invalid_batch"}'), 1)
  t.equal(m.get('sse_events_rejected_total{reason="unauthorized"}'), 1)
  t.equal(m.get('sse_delivery_latency_seconds_count'), 2)
  t.equal(m.get('sse_delivery_latency_seconds_bucket{le="+Inf"}'), 2)
  t.ok(m.get('sse_delivery_latency_seconds_bucket{le="1"}')! >= m.get('sse_delivery_latency_seconds_bucket{le="0.001"}')!, 'buckets are cumulative')
  t.equal(m.get('sse_history_events'), 2)

  const resumed = await subscribe(t, url, 'all=true', { 'last-event-id': body.ids[0] })
  await resumed.eventCount(1)
  const resynced = await subscribe(t, url, 'all=true', { 'last-event-id': 'garbage' })
  await resynced.eventCount(1)
  m = await scrape(url)
  t.equal(m.get('sse_reconnections_total'), 2)
  t.equal(m.get('sse_replayed_events_total'), 1)
  t.equal(m.get('sse_resyncs_total{reason="malformed_id"}'), 1)
  t.equal(m.get('sse_resyncs_total{reason="expired"}'), 0)

  // A client that never reads: its socket fills, the gauge shows it, the next event drops it.
  const { port } = new URL(url)
  const stalled = net.connect(Number(port), '127.0.0.1')
  t.teardown(() => stalled.destroy())
  stalled.write('GET /events/subscribe?streams=big HTTP/1.1\r\nHost: x\r\n\r\n')
  stalled.pause()
  await waitUntil('the stalled stream is open', () => app.broker.size === 4)
  const pad = 'p'.repeat(64 * 1024)
  let peakBuffered = 0
  for (let i = 0; i < 200 && app.broker.metrics.slowConsumerDisconnects === 0; i++) {
    await publish(url, Array.from({ length: 10 }, () => ({ event: 'stream.cancelled', data: { streamId: 'big', pad } })), auth)
    peakBuffered = Math.max(peakBuffered, (await scrape(url)).get('sse_buffered_bytes')!)
  }
  t.ok(peakBuffered > 4096, `unsent bytes showed (${peakBuffered}) before the client was dropped`)
  m = await scrape(url)
  t.equal(m.get('sse_slow_consumer_disconnects_total'), 1)
  t.equal(m.get('sse_connections_closed_total{reason="slow_consumer"}'), 1)

  reader.close()
  await waitUntil('the reader is gone', () => app.broker.size === 2)
  m = await scrape(url)
  t.equal(m.get('sse_connections_active'), 2)
  t.equal(m.get('sse_connections_closed_total{reason="client_closed"}'), 1)
  t.equal(m.get('sse_connection_duration_seconds_count'), 2)
  t.equal(m.get('sse_connection_duration_seconds_bucket{le="86400"}'), 2)
})

t.test('two apps in one process keep their own registries', async t => {
  const a = await startApp(t)
  const b = await startApp(t)
  await publish(a.url, { event: 'stream.cancelled', data: { streamId: '1' } })
  t.equal((await scrape(a.url)).get('sse_events_published_total{event="stream.cancelled"}'), 1)
  t.equal((await scrape(b.url)).get('sse_events_published_total{event="stream.cancelled"}'), 0)
})

t.test('METRICS_PORT serves /metrics on a listener of its own, and not on the main port', async t => {
  const port = await freePort()
  const { url } = await startApp(t, { METRICS_PORT: String(port) })
  t.equal((await fetch(`${url}/metrics`)).status, 404, 'not on the main port')
  const own = `http://127.0.0.1:${port}`
  t.match(await scrape(own), new Map([['sse_connections_active', 0]]))
  const other = await fetch(`${own}/events/stats`)
  t.equal(other.status, 404, 'nothing else there')
})

t.test('a metrics port in use stops the app from starting', async t => {
  const blocker = net.createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const { port } = blocker.address() as net.AddressInfo
  await t.rejects(startApp(t, { METRICS_PORT: String(port) }), { code: 'EADDRINUSE' })
})

t.test('the output passes promtool check metrics', async t => {
  const promtool = spawnSync('promtool', ['--version'])
  if (promtool.error !== undefined) {
    t.comment('SKIP: promtool is not installed (Debian package prometheus); .ci/run installs it')
    t.pass('nothing to check with')
    return
  }
  const { url } = await startApp(t)
  await subscribe(t, url, 'all=true')
  await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } })
  const text = await (await fetch(`${url}/metrics`)).text()
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  t.equal(check.status, 0, check.stdout + check.stderr)
  t.equal((check.stdout + check.stderr).trim(), '', 'no lint findings')
})

async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}
