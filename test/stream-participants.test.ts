import t from 'tap'
import { StreamParticipants } from '../services/stream-participants.js'

t.test('remembers, merges and forgets the least recently used stream', async t => {
  const participants = new StreamParticipants(2)
  const first = participants.remember('a', ['A1', 'A2'])
  t.same(first, ['A1', 'A2'])
  t.equal(participants.remember('a', ['A2']), first, 'nothing new: the same list, no copy')
  t.same(participants.remember('a', ['A3', 'A1']), ['A1', 'A2', 'A3'])
  participants.remember('b', ['B1'])
  participants.get('a') // a is now the most recently used
  participants.remember('c', ['C1'])
  t.equal(participants.size, 2)
  t.same(participants.get('b'), [], 'b was forgotten')
  t.same(participants.get('a'), ['A1', 'A2', 'A3'])
})

t.test('capacity must be a positive integer', async t => {
  t.throws(() => new StreamParticipants(0), RangeError)
  t.throws(() => new StreamParticipants(1.5), RangeError)
})
