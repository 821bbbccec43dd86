import t from 'tap'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { encodeComment, encodeEvent, encodeRetry } from '../services/sse-frame.js'

function parse (bytes: Buffer): { events: EventSourceMessage[], comments: string[], retries: number[] } {
  const events: EventSourceMessage[] = []
  const comments: string[] = []
  const retries: number[] = []
  const parser = createParser({
    onEvent: e => events.push(e),
    onComment: c => comments.push(c),
    onRetry: r => retries.push(r)
  })
  parser.feed(bytes.toString('utf8'))
  return { events, comments, retries }
}

t.test('an event is id, event and data lines ended by a blank line', async t => {
  t.equal(encodeEvent('1-0', 'stream.created', '{"id":"1"}').toString(),
    'id: 1-0\nevent: stream.created\ndata: {"id":"1"}\n\n')
})

t.test('each line of the payload gets its own data: line, whatever ends it', async t => {
  const frame = encodeEvent('1-0', 'x', 'one\ntwo\r\nthree\rfour')
  t.equal(frame.toString(), 'id: 1-0\nevent: x\ndata: one\ndata: two\ndata: three\ndata: four\n\n')
  t.same(parse(frame).events, [{ id: '1-0', event: 'x', data: 'one\ntwo\nthree\nfour' }])
})

t.test('empty lines in the payload do not end the frame early', async t => {
  const frame = encodeEvent('2-0', 'x', 'a\n\n\nb\r\n\r\n')
  t.same(parse(frame).events, [{ id: '2-0', event: 'x', data: 'a\n\n\nb\n\n' }])
})

t.test('line breaks and NUL cannot escape the id: or event: field', async t => {
  const frame = encodeEvent('1-0\r\ndata: forged\n\n', 'stream.created\r\nid: 666\n\nevent: evil\0', 'ok')
  const { events } = parse(frame)
  t.equal(events.length, 1, 'still one frame')
  t.same(events[0], { id: '1-0data: forged', event: 'stream.createdid: 666event: evil', data: 'ok' })
  t.notMatch(frame.toString().split('\n\n')[0], /\r/, 'no CR anywhere in the frame')
})

t.test('unicode passes through as UTF-8, including U+2028 and astral characters', async t => {
  const data = JSON.stringify({ memo: 'Zahlung für Miete 💸 \u2028 ok', sender: 'ü' })
  const frame = encodeEvent('3-0', 'stream.created', data)
  t.equal(frame.toString('utf8'), `id: 3-0\nevent: stream.created\ndata: ${data}\n\n`)
  t.same(JSON.parse(parse(frame).events[0]!.data), JSON.parse(data))
})

t.test('a leading space in the payload survives the one space the parser strips', async t => {
  t.equal(parse(encodeEvent('4-0', 'x', ' indented')).events[0]!.data, ' indented')
})

t.test('comments and retry hints', async t => {
  t.equal(encodeComment('ping').toString(), ': ping\n\n')
  t.same(parse(encodeComment('a\nb')).comments, ['a', 'b'])
  t.equal(encodeRetry(2500).toString(), 'retry: 2500\n\n')
  t.same(parse(encodeRetry(2500.7)).retries, [2500])
  t.same(parse(encodeRetry(-5)).retries, [0])
  t.same(parse(Buffer.concat([encodeRetry(10), encodeComment('c')])).events, [], 'neither dispatches an event')
})
