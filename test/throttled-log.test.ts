import t from 'tap'
import { ThrottledLog } from '../services/throttled-log.js'

function recorder () {
  const lines: Array<{ level: string, fields: object, message: string }> = []
  const sink = {
    warn: (fields: object, message: string) => { lines.push({ level: 'warn', fields, message }) },
    error: (fields: object, message: string) => { lines.push({ level: 'error', fields, message }) }
  }
  return { lines, sink }
}

t.test('the first line of a kind is written, the rest at most once an interval, with how many were held back', async t => {
  const { lines, sink } = recorder()
  let now = 1_000_000
  const log = new ThrottledLog(sink, () => now, 60_000)
  for (let i = 0; i < 1000; i++) log.warn({ id: i }, 'skipped a thing')
  log.error({ id: 'x' }, 'another kind')
  t.same(lines, [
    { level: 'warn', fields: { id: 0 }, message: 'skipped a thing' },
    { level: 'error', fields: { id: 'x' }, message: 'another kind' }
  ], 'a flood is one line; another kind has its own')

  now += 59_999
  log.warn({ id: 1000 }, 'skipped a thing')
  t.equal(lines.length, 2, 'still within the interval')
  now += 1
  log.warn({ id: 1001 }, 'skipped a thing')
  t.same(lines[2], { level: 'warn', fields: { id: 1001, suppressed: 1000 }, message: 'skipped a thing' }, 'the next line says how many were not written')

  now += 60_000
  log.warn({ id: 1002 }, 'skipped a thing')
  t.same(lines[3], { level: 'warn', fields: { id: 1002 }, message: 'skipped a thing' }, 'none held back: nothing to say about it')
})
