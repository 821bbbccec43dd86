import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import { EventBroker } from '../services/event-broker.js'
import { SseConnection } from '../services/sse-connection.js'
import { Http1Sink, type ByteSocket } from '../services/transport/http1-sink.js'
import { waitUntil } from './helpers/app.js'

// The flush schedule depends on how long writing takes. A real socket makes that a matter of the
// machine's speed; this socket takes a fixed time per write, so the test sees the schedule itself.
class SlowSocket implements ByteSocket {
  writableLength = 0
  writableNeedDrain = false
  destroyed = false
  corked = 0
  /** Frames written, grouped by the cork that held them (an uncorked write is a group of one). */
  groups: number[] = []
  constructor (readonly msPerWrite: number) {}
  write (): boolean {
    const until = performance.now() + this.msPerWrite
    while (performance.now() < until) { /* a slow system call */ }
    if (this.corked > 0) this.groups[this.groups.length - 1]!++
    else this.groups.push(1)
    return true
  }

  cork (): void { if (this.corked++ === 0) this.groups.push(0) }
  uncork (): void { this.corked-- }
  destroySoon (): void {}
  destroy (): void {}
  once (): void {}
  off (): void {}
}

const limits = { maxEvents: 100, maxAgeMs: 60_000, maxBytes: 1 << 20 }
const cancelled = (streamId: string) => ({ event: 'stream.cancelled' as const, data: { streamId } })

t.test('events published while the server is busy writing are gathered into the next flush', async t => {
  // A long write and a long linger cap, so that no pause of a busy test machine changes the schedule.
  const broker = new EventBroker({ maxTrackedStreams: 10, history: limits, maxReplay: 10, maxBufferedBytes: 1 << 20, maxLingerMs: 2000 })
  const sink = new SlowSocket(200)
  await broker.open(new SseConnection(new Http1Sink(sink, false), { all: true, streams: [], users: [] }), undefined)

  broker.publish([cancelled('a')])
  await nextTurn()
  t.same(sink.groups, [1], 'an idle broker flushes in the next turn; the write took 200 ms')

  broker.publish([cancelled('b')])
  await nextTurn()
  t.same(sink.groups, [1], 'after a long flush, the next one waits')
  broker.publish([cancelled('c')])
  broker.publish([cancelled('d')])
  await waitUntil('the next flush', () => sink.groups.length === 2)
  t.same(sink.groups, [1, 3], 'the three events left as one corked write')
  t.equal(broker.stats().delivered.total, 4)
})

t.test('a batch is serialised whole before any of it is taken in: a failure publishes none of it', async t => {
  const broker = new EventBroker({ maxTrackedStreams: 10, history: limits, maxReplay: 10, maxBufferedBytes: 1 << 20 })
  // Validation keeps such data out; this stands for whatever else could make JSON.stringify throw.
  const circular: Record<string, unknown> = { streamId: 'b' }
  circular.self = circular
  t.throws(() => broker.publish([cancelled('a'), { event: 'stream.cancelled', data: circular as { streamId: string } }]), TypeError)
  t.equal(broker.stats().published.total, 0)
  t.equal(broker.stats().history.events, 0)
})
