import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import t from 'tap'
import { EventSource } from 'eventsource'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { openStream, subscribe, type StreamClient } from './helpers/sse-client.js'

const cancelled = (streamId: string, extra: Record<string, unknown> = {}) =>
  ({ event: 'stream.cancelled', data: { streamId, ...extra } })

async function publishIds (url: string, events: unknown[]): Promise<string[]> {
  const { status, body } = await publish(url, events)
  if (status !== 202) throw new Error(`publish failed: ${status} ${JSON.stringify(body)}`)
  return body.ids
}

const idsOf = (client: StreamClient) => client.events.map(e => e.id)

t.test('Last-Event-ID replays the missed events that match, in order, then continues live', async t => {
  const { url } = await startApp(t)
  const [first, ...missed] = await publishIds(url, [cancelled('a'), cancelled('a'), cancelled('b'), cancelled('a')])
  const client = await subscribe(t, url, 'streams=a', { 'last-event-id': first! })
  await client.eventCount(2)
  t.same(idsOf(client), [missed[0], missed[2]], 'stream b\'s event is not for this subscriber')
  const [live] = await publishIds(url, [cancelled('a')])
  await client.eventCount(3)
  t.equal(client.events[2]!.id, live)
  t.notOk(client.events.some(e => e.event === 'events.resync'))
})

t.test('the lastEventId parameter resumes too; the header wins over it', async t => {
  const { url } = await startApp(t)
  const ids = await publishIds(url, [cancelled('a'), cancelled('a'), cancelled('a')])
  const byQuery = await subscribe(t, url, `streams=a&lastEventId=${ids[0]}`)
  t.same((await byQuery.eventCount(2)).map(e => e.id), [ids[1], ids[2]])

  const both = await subscribe(t, url, `streams=a&lastEventId=${ids[0]}`, { 'last-event-id': ids[1]! })
  t.same((await both.eventCount(1)).map(e => e.id), [ids[2]])
  await publishIds(url, [cancelled('a')])
  await both.eventCount(2)
  t.equal(both.events.length, 2, 'only what followed the header\'s id, then live')
})

t.test('resuming from the newest id replays nothing and needs no resync', async t => {
  const { url, app } = await startApp(t)
  const ids = await publishIds(url, [cancelled('a'), cancelled('a')])
  const client = await subscribe(t, url, 'all=true', { 'last-event-id': ids[1]! })
  const [live] = await publishIds(url, [cancelled('a')])
  t.same((await client.eventCount(1)).map(e => e.id), [live])
  t.same(app.broker.metrics.resyncs, { malformed_id: 0, unknown_id: 0, expired: 0, replay_limit: 0, gap: 0 })
})

t.test('events.resync for malformed, unknown and expired ids, then live', async t => {
  const { url, app } = await startApp(t, { HISTORY_SIZE: '3' })
  const ids = await publishIds(url, [1, 2, 3, 4, 5].map(n => cancelled(`s${n}`)))
  const newest = ids[4]!
  const [ms, seq] = newest.split('-').map(Number) as [number, number]
  const cases: Array<[string, string]> = [
    ['not-an-id', 'malformed_id'],
    ['1-2-3', 'malformed_id'],
    [`${ms + 1000}-0`, 'unknown_id'], // from the future
    [`${ms}-${seq + 1}`, 'unknown_id'],
    ['1000-0', 'expired'], // long before anything retained: events after it have gone
    [ids[0]!, 'expired'] // ids[1] has left the history
  ]
  for (const [lastEventId, reason] of cases) {
    const client = await subscribe(t, url, 'all=true', { 'last-event-id': lastEventId })
    const [resync] = await client.eventCount(1)
    t.same(resync, { id: newest, event: 'events.resync', data: JSON.stringify({ reason, lastEventId }) }, lastEventId)
    client.close()
  }
  // ids[1] is the newest id that left: everything after it is still there, so it replays.
  const replayed = await subscribe(t, url, 'all=true', { 'last-event-id': ids[1]! })
  t.same((await replayed.eventCount(3)).map(e => e.id), ids.slice(2))
  t.match(app.broker.metrics.resyncs, { malformed_id: 2, unknown_id: 2, expired: 2 })
})

t.test('a resync carries an empty id when nothing was ever published, and long ids are cut', async t => {
  const { url } = await startApp(t)
  const client = await subscribe(t, url, 'all=true', { 'last-event-id': 'x'.repeat(500) })
  await client.eventCount(1)
  t.match(client.raw, /\nid: \nevent: events.resync\ndata: \{"reason":"malformed_id","lastEventId":"x{64}"\}\n\n$/)
  const twice = await subscribe(t, url, 'all=true&lastEventId=1-0&lastEventId=2-0')
  t.same(JSON.parse((await twice.eventCount(1))[0]!.data), { reason: 'malformed_id', lastEventId: '1-0,2-0' })
})

t.test('a replay overtaken by the history\'s bound ends in events.resync, then live', async t => {
  const { url, app } = await startApp(t, { HISTORY_SIZE: '200', MAX_BUFFERED_BYTES: '1024' })
  const pad = 'q'.repeat(64 * 1024) // 13 MB in all: more than the socket buffers hold
  const ids: string[] = []
  for (let batch = 0; batch < 20; batch++) {
    ids.push(...await publishIds(url, Array.from({ length: 10 }, () => cancelled('a', { pad }))))
  }
  const client = await openStream(`${url}/events/subscribe?all=true`, { 'last-event-id': ids[0]! })
  t.teardown(() => client.close())
  client.response.pause()
  await waitUntil('the replay waits', () => app.broker.stats().connections.replaying === 1)
  // While the client does not read, 200 more events push everything it has not seen out of the history.
  const newer = await publishIds(url, Array.from({ length: 200 }, () => cancelled('b')))
  client.response.resume()
  await client.until('a resync', () => client.events.some(e => e.event === 'events.resync'), 10_000)
  const resync = client.events.find(e => e.event === 'events.resync')!
  t.same(JSON.parse(resync.data), { reason: 'expired', lastEventId: ids[0] })
  t.equal(resync.id, newer.at(-1), 'the client resumes from the newest event next time')
  const before = client.events.indexOf(resync)
  t.same(client.events.slice(0, before).map(e => e.id), ids.slice(1, before + 1), 'a clean prefix before it')
  const [live] = await publishIds(url, [cancelled('c')])
  await client.until('the live event', () => client.events.at(-1)?.id === live)
  t.pass('live after the resync')
})

t.test('a replay over MAX_REPLAY matching events is a resync; filtered-out events do not count', async t => {
  const { url } = await startApp(t, { MAX_REPLAY: '2' })
  const ids = await publishIds(url, [cancelled('a'), cancelled('a'), cancelled('b'), cancelled('a'), cancelled('b')])
  const narrow = await subscribe(t, url, 'streams=a', { 'last-event-id': ids[0]! })
  t.same((await narrow.eventCount(2)).map(e => e.id), [ids[1], ids[3]], 'two matching: replayed')
  const wide = await subscribe(t, url, 'all=true', { 'last-event-id': ids[0]! })
  const [resync] = await wide.eventCount(1)
  t.equal(resync!.event, 'events.resync')
  t.equal(JSON.parse(resync!.data).reason, 'replay_limit')
})

t.test('history is bounded by age', async t => {
  const { url, app } = await startApp(t, { HISTORY_MAX_AGE_MS: '100' })
  const [old] = await publishIds(url, [cancelled('a')])
  await new Promise(resolve => setTimeout(resolve, 150))
  const [fresh] = await publishIds(url, [cancelled('a')])
  t.match(app.broker.stats().history, { events: 1, oldestId: fresh, newestId: fresh })
  const client = await subscribe(t, url, 'all=true', { 'last-event-id': old! })
  t.same((await client.eventCount(1)).map(e => e.id), [fresh], 'old is the newest that left: no loss, replay')
})

t.test('no gap and no duplicate when events are published while a long replay is written', async t => {
  // Large events and a client that does not read at first: the replay fills the socket and waits for
  // it to drain several times, while a publisher keeps adding events.
  const { url, app } = await startApp(t, { MAX_BUFFERED_BYTES: '65536', HISTORY_MAX_BYTES: String(256 * 1024 * 1024) })
  const pad = 'x'.repeat(64 * 1024) // 13 MB in all: more than the socket buffers hold
  const [start] = await publishIds(url, [cancelled('0')])
  const before: string[] = []
  for (let batch = 0; batch < 20; batch++) {
    before.push(...await publishIds(url, Array.from({ length: 10 }, (_, i) => cancelled(`${batch}-${i}`, { pad }))))
  }

  const client = await openStream(`${url}/events/subscribe?all=true`, { 'last-event-id': start! })
  t.teardown(() => client.close())
  client.response.pause()
  const during: string[] = []
  const publisher = (async () => {
    for (let i = 0; i < 60; i++) {
      during.push(...await publishIds(url, [cancelled(`live-${i}`, { pad: pad.slice(0, 1024) })]))
      await new Promise(resolve => setImmediate(resolve))
    }
  })()
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(app.broker.stats().connections.replaying, 1, 'the replay is waiting for the client to read')
  client.response.resume()
  await publisher
  const expected = [...before, ...during]
  await client.eventCount(expected.length, 20_000)
  t.same(idsOf(client), expected, `all ${expected.length} events, each once, in order`)
  t.equal(app.broker.stats().connections.replaying, 0)
  t.equal(app.broker.metrics.slowConsumerDisconnects, 0)
})

t.test('an EventSource that loses its connection resumes by itself with Last-Event-ID', async t => {
  const { url, app } = await startApp(t, { RETRY_MS: '200' })
  const sockets = new Set<Socket>()
  app.server.on('request', (request: IncomingMessage) => {
    if (request.url?.startsWith('/events/subscribe') === true) sockets.add(request.socket)
  })

  const source = new EventSource(`${url}/events/subscribe?streams=a&lastEventId=`)
  t.teardown(() => source.close())
  const received: string[] = []
  let opened = 0
  let onOpen = (): void => {}
  source.onopen = () => { opened++; onOpen() }
  const waitForOpen = (count: number) => new Promise<void>(resolve => {
    onOpen = () => { if (opened >= count) resolve() }
    onOpen()
  })
  source.addEventListener('stream.cancelled', event => received.push(event.lastEventId))
  await waitForOpen(1)

  const firstIds = await publishIds(url, [cancelled('a'), cancelled('a')])
  await waitUntil('two events', () => received.length >= 2)
  for (const socket of sockets) socket.destroy() // the network drops under the event stream
  const missed = await publishIds(url, [cancelled('a'), cancelled('b'), cancelled('a')])
  await waitForOpen(2)
  const live = await publishIds(url, [cancelled('a')])
  await waitUntil('five events', () => received.length >= 5)
  t.same(received, [...firstIds, missed[0], missed[2], ...live], 'every event once, in order, across the reconnection')
  t.equal(app.broker.metrics.replayed, 2)
})
