import t from 'tap'
import { EventSource } from 'eventsource'
import { publish, randomAccountId, startApp } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'

const alice = randomAccountId()
const bob = randomAccountId()
const carol = randomAccountId()

const created = (id: string, sender = alice, recipient = bob) =>
  ({ event: 'stream.created', data: { id, sender, recipient } })
const withdrawn = (streamId: string, amount = '1') => ({ event: 'stream.withdrawn', data: { streamId, amount } })

t.test('filters are a union and every event arrives at most once per connection', async t => {
  const { url } = await startApp(t)
  const everything = await subscribe(t, url, 'all=true')
  const overlapping = await subscribe(t, url, `all=true&streams=1&users=${alice}&users=${bob}`)
  const stream1 = await subscribe(t, url, 'streams=1')
  const stream2 = await subscribe(t, url, 'streams=2')
  const aliceOnly = await subscribe(t, url, `users=${alice}`)
  const carolOrStream2 = await subscribe(t, url, `users=${carol}&streams=2`)

  const { body } = await publish(url, [created('1'), created('2', carol, bob), withdrawn('1'), withdrawn('3')])
  const [c1, c2, w1, w3] = body.ids as string[]
  const ids = (events: Array<{ id?: string }>) => events.map(e => e.id)

  t.same(ids(await everything.eventCount(4)), [c1, c2, w1, w3])
  t.same(ids(await overlapping.eventCount(4)), [c1, c2, w1, w3], 'matched by all, stream and user: sent once')
  t.same(ids(await stream1.eventCount(2)), [c1, w1])
  t.same(ids(await stream2.eventCount(1)), [c2])
  t.same(ids(await aliceOnly.eventCount(2)), [c1, w1], 'the withdrawal carries only streamId')
  t.same(ids(await carolOrStream2.eventCount(1)), [c2], 'carol is the sender of stream 2, which stream 2 also matches')

  // An event for carol's stream 9 reaches those who asked for it, and in time nobody else.
  const { body: last } = await publish(url, created('9', carol, carol))
  t.equal((await everything.eventCount(5))[4]!.id, last.id)
  t.equal((await carolOrStream2.eventCount(2))[1]!.id, last.id)
  for (const client of [stream1, stream2, aliceOnly]) {
    const before = client.events.length
    await t.rejects(client.until('one more event', () => client.events.length > before, 300),
      { message: /^timed out after 300 ms waiting for one more event; received: / }, 'nothing more arrives')
  }
})

t.test('the SSE data is exactly the publisher\'s data as JSON', async t => {
  const { url } = await startApp(t)
  const client = await subscribe(t, url, 'streams=s-1')
  const data = {
    id: 's-1',
    sender: alice,
    recipient: bob,
    memo: 'line one\nline two\r\n\r\nid: forged\n\nevent: evil',
    unicode: 'Überweisung 💸 \u2028',
    amount: '340282366920938463463374607431768211455.0000001',
    nested: { rate: 17, tags: ['a', 'b'] }
  }
  const { status, body } = await publish(url, { event: 'stream.created', data })
  t.equal(status, 202)
  const [event] = await client.eventCount(1)
  t.same(event, { id: body.id, event: 'stream.created', data: JSON.stringify(data) })
  t.same(JSON.parse(event!.data), data, 'JSON.parse gives the Stream object back, digits and all')
  t.notMatch(client.raw, /\nid: forged/, 'nothing in the payload became a field')
})

t.test('users routing: explicit users in the envelope and participants learned from stream.created', async t => {
  const { url } = await startApp(t)
  const carolClient = await subscribe(t, url, `users=${carol}`)
  const bobClient = await subscribe(t, url, `users=${bob}`)
  await publish(url, { event: 'stream.topped_up', data: { streamId: 'x', amount: 5 }, users: [carol] })
  await publish(url, { event: 'stream.cancelled', data: { streamId: 'x' } })
  const [toppedUp, cancelled] = await carolClient.eventCount(2)
  t.equal(toppedUp!.event, 'stream.topped_up', 'named in the envelope')
  t.equal(cancelled!.event, 'stream.cancelled', 'remembered from the earlier envelope')

  await publish(url, created('y', alice, bob))
  await publish(url, { event: 'stream.completed', data: { streamId: 'y' } })
  t.same((await bobClient.eventCount(2)).map(e => e.event), ['stream.created', 'stream.completed'])
  t.equal(carolClient.events.length, 2, 'carol is not part of stream y')
})

t.test('participants are bounded: the least recently used stream is forgotten', async t => {
  const { url, app } = await startApp(t, { MAX_TRACKED_STREAMS: '2' })
  const aliceClient = await subscribe(t, url, `users=${alice}`)
  await publish(url, [created('a'), created('b', carol, carol), created('c', carol, carol)])
  t.equal(app.broker.stats().trackedStreams, 2)
  await publish(url, [withdrawn('a'), created('d')])
  const events = await aliceClient.eventCount(2)
  t.same(events.map(e => e.event), ['stream.created', 'stream.created'], 'the withdrawal of forgotten stream a is not routed')
})

t.test('a real EventSource client receives typed events', async t => {
  const { url } = await startApp(t)
  const source = new EventSource(`${url}/events/subscribe?streams=1&streams=2`)
  t.teardown(() => source.close())
  await new Promise<void>((resolve, reject) => {
    source.onopen = () => resolve()
    source.onerror = event => reject(new Error(`EventSource error: ${event.message ?? 'unknown'}`))
  })
  const received: Array<{ type: string, data: unknown, lastEventId: string }> = []
  const done = new Promise<void>(resolve => {
    for (const type of ['stream.created', 'stream.withdrawn', 'stream.completed']) {
      source.addEventListener(type, event => {
        received.push({ type: event.type, data: JSON.parse(event.data), lastEventId: event.lastEventId })
        if (received.length === 3) resolve()
      })
    }
  })
  const { body } = await publish(url, [
    created('1'),
    withdrawn('1', '2.5'),
    { event: 'stream.completed', data: { streamId: '2' } }
  ])
  await done
  t.same(received, [
    { type: 'stream.created', data: { id: '1', sender: alice, recipient: bob }, lastEventId: body.ids[0] },
    { type: 'stream.withdrawn', data: { streamId: '1', amount: '2.5' }, lastEventId: body.ids[1] },
    { type: 'stream.completed', data: { streamId: '2' }, lastEventId: body.ids[2] }
  ])
})
