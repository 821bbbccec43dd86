import t from 'tap'
import { readHead, type RequestHead } from '../services/request-head.js'

const PATH = '/events/subscribe'
const LIMITS = { maxBytes: 16 * 1024, maxHeaders: 2000 }
/** The head the intake takes itself, or undefined when Node's parser is to read it. */
const plainGetHead = (bytes: Buffer, path: string, limits = LIMITS): RequestHead | undefined => {
  const reading = readHead(bytes, path, limits)
  return reading.kind === 'plain' ? reading.head : undefined
}
const head = (text: string): Buffer => Buffer.from(text, 'latin1')
const plain = (requestLine: string, ...lines: string[]): Buffer =>
  head(`${requestLine}\r\n${['Host: example.org', ...lines].join('\r\n')}\r\n\r\n`)

t.test('takes a plain GET of the path, with or without a query', async t => {
  t.same(plainGetHead(plain('GET /events/subscribe?streams=1&all=true HTTP/1.1', 'Accept:  text/event-stream ', 'Last-Event-ID:\t5-0'), PATH), {
    url: '/events/subscribe?streams=1&all=true',
    headers: { host: 'example.org', accept: 'text/event-stream', 'last-event-id': '5-0' },
    rawHeaders: ['Host', 'example.org', 'Accept', 'text/event-stream', 'Last-Event-ID', '5-0']
  })
  t.equal(plainGetHead(plain('GET /events/subscribe HTTP/1.1'), PATH)?.url, '/events/subscribe')
  t.same(plainGetHead(plain('GET /events/subscribe HTTP/1.1', 'X-Empty:'), PATH)?.headers['x-empty'], '', 'an empty value')
})

t.test('trims spaces and tabs around a value, and only those', async t => {
  // Latin-1 0xA0 is a no-break space, which String.prototype.trim would take.
  const parsed = plainGetHead(plain('GET /events/subscribe HTTP/1.1', 'X-Name: \t\xa0caf\xe9\xa0 \t'), PATH)
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
    ['a byte over 0x7e in the target (Node answers 400)', plain('GET /events/subscribe?streams=\xe9 HTTP/1.1')],
    ['more headers than Node keeps', plain('GET /events/subscribe HTTP/1.1', ...Array.from({ length: 2000 }, (_, i) => `${i.toString(36)}:`))],
    ['Content-Length', plain('GET /events/subscribe HTTP/1.1', 'Content-Length: 0')],
    ['Transfer-Encoding', plain('GET /events/subscribe HTTP/1.1', 'Transfer-Encoding: chunked')],
    ['Upgrade', plain('GET /events/subscribe HTTP/1.1', 'Connection: upgrade', 'Upgrade: websocket')],
    ['Expect', plain('GET /events/subscribe HTTP/1.1', 'Expect: 100-continue')],
    ['__proto__ as a name', plain('GET /events/subscribe HTTP/1.1', '__proto__: x')]
  ]
  for (const [what, bytes] of cases) t.equal(plainGetHead(bytes, PATH), undefined, what)
})

t.test('tells a stream request from anything else by its first bytes, and waits for the rest of its head', async t => {
  const request = plain('GET /events/subscribe?all=true HTTP/1.1')
  for (const length of [1, 4, 18, 22, request.length - 1]) {
    t.same(readHead(request.subarray(0, length), PATH, LIMITS), { kind: 'incomplete' }, `${length} bytes of it`)
  }
  t.match(readHead(request, PATH, LIMITS), { kind: 'plain', length: request.length }, 'the whole head')
  const pipelined = Buffer.concat([request, head('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')])
  t.match(readHead(pipelined, PATH, LIMITS), { kind: 'plain', length: request.length }, 'what follows the head is not part of it')
  const http10 = head('GET /events/subscribe HTTP/1.0\r\n\r\nrest')
  t.same(readHead(http10, PATH, LIMITS), { kind: 'stream', length: http10.length - 4 }, 'Node reads the head of another form, alone')
  t.same(readHead(head('GET /events/subscribe HTTP/1.1\r\nX: a\r\n'), PATH, { maxBytes: 20, maxHeaders: 0 }), { kind: 'other' },
    'a head longer than Node takes is Node\'s to refuse')
  t.same(readHead(plain('GET /events/subscribe HTTP/1.1', 'X-Big: 12345678'), PATH, { maxBytes: 40, maxHeaders: 0 }), { kind: 'other' },
    'and so is a whole one')
  t.match(readHead(plain('GET /events/subscribe HTTP/1.1', 'A: 1', 'B: 2'), PATH, { maxBytes: 100, maxHeaders: 0 }), { kind: 'plain' },
    'maxHeadersCount 0: no limit, as for Node')
  for (const other of ['POST /events/subscribe', 'GET /events/subscriber', 'GET /events/subscribe#x', 'GET /healthz', 'x']) {
    t.same(readHead(head(other), PATH, LIMITS), { kind: 'other' }, other)
  }
})
