import t from 'tap'
import { InvalidReport, MAX_LISTED_BYTES } from '../services/invalid-report.js'

const problem = (path: string) => ({ path, message: 'is wrong' })
const bytesOf = (value: unknown): number => Buffer.byteLength(JSON.stringify(value))

t.test('lists events while they fit, counts them all', async t => {
  t.equal(new InvalidReport().maxBytes, MAX_LISTED_BYTES)
  const report = new InvalidReport(200)
  report.add(0, [problem('/a'), problem('/b')], false)
  t.notOk(report.full)
  report.add(3, [problem('/c'), problem('/d'), problem('/e')], true)
  t.ok(report.full, 'the budget is spent')
  report.add(4, [], true) // not looked for: the report is full
  t.same(report.invalid, [
    { index: 0, problems: [problem('/a'), problem('/b')], moreProblems: false },
    { index: 3, problems: [problem('/c')], moreProblems: true }
  ])
  t.ok(bytesOf(report.invalid) <= 200, `${bytesOf(report.invalid)} bytes`)
  t.equal(report.invalidEvents, 3)
  t.equal(report.unlistedEvents, 1)
})

t.test('an event none of whose problems fit is counted, not listed', async t => {
  const report = new InvalidReport(120)
  report.add(0, [problem('/a')], false)
  report.add(1, [problem('/' + 'x'.repeat(100))], false)
  t.same(report.invalid.map(({ index }) => index), [0])
  t.ok(report.full)
  t.equal(report.unlistedEvents, 1)
})

t.test('the first problem of the first event is listed whatever its size', async t => {
  const report = new InvalidReport(10)
  report.add(7, [problem('/long-enough'), problem('/b')], false)
  t.same(report.invalid, [{ index: 7, problems: [problem('/long-enough')], moreProblems: true }])
  t.ok(report.full)
})
