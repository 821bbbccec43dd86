import t from 'tap'
import { compareEventIds, EventIdGenerator, formatEventId, parseEventId, type EventId } from '../services/event-id.js'
import { EventLog, type LoggedEvent } from '../services/event-log.js'

t.test('ids increase strictly and compare as numbers', async t => {
  const ids = new EventIdGenerator()
  t.same(ids.next(1000), { ms: 1000, seq: 0 })
  t.same(ids.next(1000), { ms: 1000, seq: 1 })
  t.same(ids.next(999), { ms: 1000, seq: 2 }, 'a clock that steps back does not go back')
  t.same(ids.next(1001), { ms: 1001, seq: 0 })
  t.ok(compareEventIds({ ms: 9, seq: 0 }, { ms: 10, seq: 0 }) < 0, '"9-0" before "10-0"')
  t.ok(compareEventIds({ ms: 10, seq: 9 }, { ms: 10, seq: 10 }) < 0, '"10-9" before "10-10"')
  t.equal(compareEventIds({ ms: 10, seq: 1 }, { ms: 10, seq: 1 }), 0)
  t.equal(formatEventId({ ms: 1795733292556, seq: 3 }), '1795733292556-3')
})

t.test('parsing accepts only our form', async t => {
  t.same(parseEventId('1795733292556-0'), { ms: 1795733292556, seq: 0 })
  for (const bad of ['', 'abc', '1-', '-1', '1-2-3', '1.5-0', ' 1-0', '1-0\n', '0x1-0', '99999999999999999-0', '9007199254740993-0']) {
    t.equal(parseEventId(bad), undefined, JSON.stringify(bad))
  }
})

function event (ms: number, seq = 0, bytes = 10, at = ms): LoggedEvent {
  return { id: { ms, seq }, at, streamId: 's', users: [], frame: Buffer.alloc(bytes) }
}

const limits = { maxEvents: 1000, maxAgeMs: 1_000_000, maxBytes: 1_000_000 }
const ids = (log: EventLog, from: number) => {
  const out: string[] = []
  for (let i = from, e = log.at(i); e !== undefined; e = log.at(++i)) out.push(formatEventId(e.id))
  return out
}

t.test('resume points', async t => {
  const log = new EventLog(limits)
  t.same(log.resumeAfter({ ms: 1, seq: 0 }, 0), { ok: false, reason: 'unknown_id' }, 'nothing ever logged')
  for (const ms of [10, 20, 30]) log.append(event(ms))
  const after = (id: EventId) => log.resumeAfter(id, 30)
  t.same(after({ ms: 10, seq: 0 }), { ok: true, index: 1 })
  t.same(ids(log, 1), ['20-0', '30-0'])
  t.same(after({ ms: 30, seq: 0 }), { ok: true, index: 3 }, 'up to date: nothing to replay')
  t.same(after({ ms: 20, seq: 1 }), { ok: false, reason: 'unknown_id' }, 'between two events: never issued')
  t.same(after({ ms: 5, seq: 0 }), { ok: false, reason: 'unknown_id' }, 'before the first event: not ours')
  t.same(after({ ms: 31, seq: 0 }), { ok: false, reason: 'unknown_id' }, 'after the newest: never issued')
})

t.test('bounded by count; the newest evicted id still resumes without loss', async t => {
  const log = new EventLog({ ...limits, maxEvents: 3 })
  for (let ms = 1; ms <= 5; ms++) log.append(event(ms))
  t.equal(log.size, 3)
  t.same(ids(log, 0), ['3-0', '4-0', '5-0'])
  t.same(log.resumeAfter({ ms: 2, seq: 0 }, 5), { ok: true, index: 0 }, 'every successor of 2-0 is retained')
  t.same(log.resumeAfter({ ms: 1, seq: 0 }, 5), { ok: false, reason: 'expired' }, '2-0 is gone')
  t.same(log.resumeAfter({ ms: 1, seq: 5 }, 5), { ok: false, reason: 'expired' })
})

t.test('bounded by age and by bytes', async t => {
  const aged = new EventLog({ ...limits, maxAgeMs: 100 })
  aged.append(event(1000))
  aged.append(event(1050))
  t.equal(aged.size, 2)
  aged.prune(1120)
  t.same(ids(aged, 0), ['1050-0'], 'older than 100 ms is gone')
  t.same(aged.resumeAfter({ ms: 1050, seq: 0 }, 1200), { ok: true, index: 0 }, 'all gone, but 1050-0 was the newest')
  t.equal(aged.size, 0)
  t.same(aged.newestId, { ms: 1050, seq: 0 })

  const sized = new EventLog({ ...limits, maxBytes: 250 })
  for (let ms = 1; ms <= 5; ms++) sized.append(event(ms, 0, 100))
  t.equal(sized.size, 2)
  t.equal(sized.bytes, 200)
  t.same(sized.oldest?.id, { ms: 4, seq: 0 })
})

t.test('a long run keeps only the newest, in order, and finds its place in them', async t => {
  const log = new EventLog({ ...limits, maxEvents: 100 })
  for (let i = 0; i < 100_000; i++) log.append(event(i))
  t.equal(log.size, 100)
  t.same(ids(log, 98), ['99998-0', '99999-0'])
  t.same(log.resumeAfter({ ms: 99_950, seq: 0 }, 99_999), { ok: true, index: 51 })
})

t.test('forgetUpTo drops the events up to an id and remembers it, as history loaded from Redis needs', async t => {
  const log = new EventLog(limits)
  log.forgetUpTo({ ms: 5, seq: 0 })
  t.same(log.resumeAfter({ ms: 5, seq: 0 }, 10), { ok: true, index: 0 }, 'resuming from exactly that id misses nothing')
  for (const ms of [6, 7, 8]) log.append(event(ms))
  log.forgetUpTo({ ms: 7, seq: 0 })
  t.equal(log.size, 1)
  t.equal(log.bytes, 10)
  t.same(log.resumeAfter({ ms: 6, seq: 0 }, 10), { ok: false, reason: 'expired' }, 'from before it, events are missed')
  t.same(log.resumeAfter({ ms: 7, seq: 0 }, 10), { ok: true, index: 0 })
  log.forgetUpTo({ ms: 1, seq: 0 })
  t.same(log.resumeAfter({ ms: 6, seq: 0 }, 10), { ok: false, reason: 'expired' }, 'an older id changes nothing')
})
