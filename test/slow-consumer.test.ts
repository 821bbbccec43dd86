import net from 'node:net'
import t from 'tap'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'

/** A client that sends its request and then never reads a byte. */
async function stalledClient (url: string, query: string): Promise<net.Socket> {
  const { port } = new URL(url)
  const socket = net.connect({ port: Number(port), host: '127.0.0.1' })
  await new Promise(resolve => socket.once('connect', resolve))
  socket.write(`GET /events/subscribe?${query} HTTP/1.1\r\nHost: x\r\n\r\n`)
  socket.pause()
  return socket
}

t.test('clients that stop reading are dropped; memory stays bounded; the others get everything', async t => {
  const cap = 256 * 1024
  const { url, app } = await startApp(t, { MAX_BUFFERED_BYTES: String(cap), HISTORY_SIZE: '50' })
  const unsent = unsentBytes(app.server)
  const stalled = await Promise.all(Array.from({ length: 5 }, () => stalledClient(url, 'all=true')))
  t.teardown(() => stalled.forEach(socket => socket.destroy()))
  const reader = await subscribe(t, url, 'all=true')
  await waitUntil('six streams are open', () => app.broker.stats().connections.total === 6)

  const pad = 'x'.repeat(16 * 1024)
  const batches = 40
  const perBatch = 10 // 400 events of 16 KiB: 6.4 MiB to each client, far more than any buffer holds
  const memoryBefore = process.memoryUsage()
  const ids: string[] = []
  let peakBuffered = 0
  for (let batch = 0; batch < batches; batch++) {
    const { body } = await publish(url, Array.from({ length: perBatch }, (_, i) =>
      ({ event: 'stream.cancelled', data: { streamId: `s${batch}-${i}`, pad } })))
    ids.push(...body.ids)
    peakBuffered = Math.max(peakBuffered, unsent())
    await reader.eventCount(ids.length)
  }
  const memoryAfter = process.memoryUsage()

  t.same(reader.events.map(e => e.id), ids, 'the reading client got every event, in order')
  const stats = app.broker.stats()
  t.equal(stats.slowConsumerDisconnects, 5, 'each stalled client was dropped once')
  t.equal(stats.connections.total, 1)
  // Per connection: at most the cap, plus the batch written on top of it before the next check.
  const frame = 16 * 1024 + 100
  t.ok(peakBuffered <= 6 * (cap + perBatch * frame), `peak unsent bytes ${peakBuffered} stay within the caps`)
  const growth = (memoryAfter.rss - memoryBefore.rss) / 1024 / 1024
  t.ok(growth < 64, `RSS grew ${growth.toFixed(1)} MiB while 32 MiB were sent to clients that never read`)
  t.comment(`peak unsent ${(peakBuffered / 1024).toFixed(0)} KiB, RSS growth ${growth.toFixed(1)} MiB, ` +
    `external ${((memoryAfter.external - memoryBefore.external) / 1024 / 1024).toFixed(1)} MiB`)
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
  t.equal(app.broker.stats().slowConsumerDisconnects, 0)
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
  t.equal(app.broker.stats().slowConsumerDisconnects, 1)
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
