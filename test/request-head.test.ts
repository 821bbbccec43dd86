import t from 'tap'
import { plainGetHead } from '../services/request-head.js'

const PATH = '/events/subscribe'
const MAX = 16 * 1024
const head = (text: string): Buffer => Buffer.from(text, 'latin1')
const plain = (requestLine: string, ...lines: string[]): Buffer =>
  head(`${requestLine}\r\n${['Host: example.org', ...lines].join('\r\n')}\r\n\r\n`)

t.test('takes a plain GET of the path, with or without a query', async t => {
  t.same(plainGetHead(plain('GET /events/subscribe?streams=1&all=true HTTP/1.1', 'Accept:  text/event-stream ', 'Last-Event-ID:\t5-0'), PATH, MAX), {
    url: '/events/subscribe?streams=1&all=true',
    headers: { host: 'example.org', accept: 'text/event-stream', 'last-event-id': '5-0' },
    rawHeaders: ['Host', 'example.org', 'Accept', 'text/event-stream', 'Last-Event-ID', '5-0']
  })
  t.equal(plainGetHead(plain('GET /events/subscribe HTTP/1.1'), PATH, MAX)?.url, '/events/subscribe')
  t.same(plainGetHead(plain('GET /events/subscribe HTTP/1.1', 'X-Empty:'), PATH, MAX)?.headers['x-empty'], '', 'an empty value')
})

t.test('trims spaces and tabs around a value, and only those', async t => {
  // Latin-1 0xA0 is a no-break space, which String.prototype.trim would take.
  const parsed = plainGetHead(plain('GET /events/subscribe HTTP/1.1', 'X-Name: \t\xa0caf\xe9\xa0 \t'), PATH, MAX)
  t.equal(parsed?.headers['x-name'], '\xa0caf\xe9\xa0')
})

t.test('leaves everything else to Node', async t => {
  const cases: Array<[string, Buffer]> = [
    ['another method', plain('HEAD /events/subscribe HTTP/1.1')],
    ['another path', plain('GET /events/stats HTTP/1.1')],
    ['a longer path', plain('GET /events/subscribers HTTP/1.1')],
    ['a path prefix', plain('GET /events HTTP/1.1')],
    ['absolute form', plain('GET http://example.org/events/subscribe HTTP/1.1')],
    ['HTTP/1.0', plain('GET /events/subscribe HTTP/1.0')],
    ['two spaces', plain('GET  /events/subscribe HTTP/1.1')],
    ['no Host', head('GET /events/subscribe HTTP/1.1\r\nAccept: */*\r\n\r\n')],
    ['an unfinished head', head('GET /events/subscribe HTTP/1.1\r\nHost: example.org\r\n')],
    ['bytes after the head', Buffer.concat([plain('GET /events/subscribe HTTP/1.1'), head('GET / HTTP/1.1\r\n')])],
    ['a head over 16 KiB', plain('GET /events/subscribe HTTP/1.1', `X-Big: ${'x'.repeat(16 * 1024)}`)],
    ['a repeated header', plain('GET /events/subscribe HTTP/1.1', 'Accept: a', 'accept: b')],
    ['a folded line', plain('GET /events/subscribe HTTP/1.1', 'X-A: a', ' continued')],
    ['a line without a colon', plain('GET /events/subscribe HTTP/1.1', 'X-A')],
    ['an empty name', plain('GET /events/subscribe HTTP/1.1', ': value')],
    ['a space before the colon', plain('GET /events/subscribe HTTP/1.1', 'X-A : value')],
    ['a control byte in a value', plain('GET /events/subscribe HTTP/1.1', 'X-A: a\x00b')],
    ['a bare CR in a value', plain('GET /events/subscribe HTTP/1.1', 'X-A: a\rb')],
    ['DEL in a value', plain('GET /events/subscribe HTTP/1.1', 'X-A: a\x7fb')],
    ['a bare LF between lines', plain('GET /events/subscribe HTTP/1.1', 'X-A: a\nX-B: b')],
    ['a control byte in the target', plain('GET /events/subscribe?all=true\x01 HTTP/1.1')],
    ['Content-Length', plain('GET /events/subscribe HTTP/1.1', 'Content-Length: 0')],
    ['Transfer-Encoding', plain('GET /events/subscribe HTTP/1.1', 'Transfer-Encoding: chunked')],
    ['Upgrade', plain('GET /events/subscribe HTTP/1.1', 'Connection: upgrade', 'Upgrade: websocket')],
    ['Expect', plain('GET /events/subscribe HTTP/1.1', 'Expect: 100-continue')],
    ['__proto__ as a name', plain('GET /events/subscribe HTTP/1.1', '__proto__: x')]
  ]
  for (const [what, bytes] of cases) t.equal(plainGetHead(bytes, PATH, MAX), undefined, what)
})
