import type net from 'node:net'
import t from 'tap'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { stalledClient } from './helpers/raw-socket.js'
import { subscribe } from './helpers/sse-client.js'

const CAP = 256 * 1024
const EVENT_PAD = 16 * 1024
const BATCHES = 120
const PER_BATCH = 10 // 1200 events of 16 KiB: 19 MiB to each client, far more than socket buffers hold

t.test('clients that stop reading are dropped; memory stays bounded; the others get everything', async t => {
  const { url, app } = await startApp(t, { MAX_BUFFERED_BYTES: String(CAP), HISTORY_SIZE: '50' })
  const unsent = unsentBytes(app.server)
  const stalled = await Promise.all(Array.from({ length: 5 }, () => stalledClient(url, 'all=true')))
  t.teardown(() => stalled.forEach(socket => socket.destroy()))
  const reader = await subscribe(t, url, 'all=true')
  await waitUntil('the streams are open', () => app.broker.stats().connections.total === 6)

  const pad = 'x'.repeat(EVENT_PAD)
  const rssBefore = process.memoryUsage().rss
  let inOrder = true
  let peakUnsent = 0
  for (let batch = 0; batch < BATCHES; batch++) {
    const { body } = await publish(url, Array.from({ length: PER_BATCH }, (_, i) =>
      ({ event: 'stream.cancelled', data: { streamId: `s${batch}-${i}`, pad } })))
    peakUnsent = Math.max(peakUnsent, unsent())
    await reader.eventCount(PER_BATCH)
    inOrder &&= reader.events.map(e => e.id).join() === body.ids.join()
    reader.events.length = 0 // the reader keeps nothing
    reader.raw = ''
  }
  const rssGrowth = (process.memoryUsage().rss - rssBefore) / 1048576

  t.ok(inOrder, `the reading client got all ${BATCHES * PER_BATCH} events, in order`)
  t.equal(app.broker.metrics.slowConsumerDisconnects, 5, 'each stalled client was dropped once')
  t.equal(app.broker.stats().connections.total, 1)
  // What the server holds for its clients is what their sockets have not taken: per connection at
  // most the cap plus the batch written on top of it before the next check, not the 19 MiB each was due.
  const bound = 6 * (CAP + PER_BATCH * (EVENT_PAD + 100))
  t.ok(peakUnsent <= bound, `unsent bytes peaked at ${peakUnsent}, within ${bound}`)
  t.ok(unsent() < CAP, 'the dropped connections hold nothing any more')
  t.comment(`peak unsent ${(peakUnsent / 1024).toFixed(0)} KiB for 6 clients; ` +
    `test process RSS grew ${rssGrowth.toFixed(1)} MiB (client and server together)`)
})

t.test('a single large event never drops a client that keeps up', async t => {
  const { url, app } = await startApp(t, { MAX_BUFFERED_BYTES: '65536' })
  const reader = await subscribe(t, url, 'all=true')
  const pad = 'y'.repeat(900 * 1024) // far over the cap, in one event
  for (let i = 1; i <= 5; i++) {
    await publish(url, { event: 'stream.cancelled', data: { streamId: 'big', pad } })
    await reader.eventCount(i)
  }
  t.equal(reader.events.length, 5)
  t.equal(app.broker.metrics.slowConsumerDisconnects, 0)
})

t.test('a dropped slow consumer resumes from its last complete event and misses nothing', async t => {
  const { url, app } = await startApp(t, { MAX_BUFFERED_BYTES: '65536' })
  const slow = await subscribe(t, url, 'all=true')
  const { body: first } = await publish(url, { event: 'stream.cancelled', data: { streamId: 'a' } })
  await slow.eventCount(1)
  slow.response.pause()
  const pad = 'z'.repeat(32 * 1024)
  const ids: string[] = [first.id]
  for (let i = 0; i < 50 && !slow.ended; i++) {
    const { body } = await publish(url, Array.from({ length: 10 }, () => ({ event: 'stream.cancelled', data: { streamId: 'a', pad } })))
    ids.push(...body.ids)
  }
  t.equal(app.broker.metrics.slowConsumerDisconnects, 1)
  slow.response.resume()
  await slow.until('the end of the dropped stream', () => slow.ended)
  const lastComplete = slow.events.at(-1)!.id!
  t.ok(slow.events.length < ids.length, `got ${slow.events.length} of ${ids.length} before the drop`)
  t.same(slow.events.map(e => e.id), ids.slice(0, slow.events.length), 'what arrived is a clean prefix')

  const resumed = await subscribe(t, url, 'all=true', { 'last-event-id': lastComplete })
  await resumed.eventCount(ids.length - slow.events.length)
  t.same([...slow.events, ...resumed.events].map(e => e.id), ids, 'together: every event once')
})

/** Sums the bytes waiting in the server's sockets. */
function unsentBytes (server: net.Server): () => number {
  const sockets = new Set<net.Socket>()
  server.on('connection', socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  return () => [...sockets].reduce((sum, socket) => sum + socket.writableLength, 0)
}
