import { generateKeyPairSync } from 'node:crypto'
import { nowS, signJwt } from '../../helpers/jwt.js'

/** One malformed request, raw, and the family it belongs to (for the figures). */
export interface HostileRequest { family: string, raw: Buffer | string }

const ODD_TEXT = ['\u0000', '\u0007', '\u001b[31m', '\u202e', '\ud800', '\uffff', '😀'.repeat(50), 'é', '../../etc/passwd',
  '<script>', '"', '\\', '%', '%zz', '%00', '%ff%fe', '__proto__', 'constructor', ' ', '\t', 'a'.repeat(5000), '-1', '1e999', 'NaN', '[]', '{}']

// The head byte for byte (latin1, as a broken proxy might send it), the body as UTF-8.
const head = (method: string, target: string, headers: string[], body = ''): Buffer => Buffer.concat([
  Buffer.from(`${method} ${target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n${headers.map(line => `${line}\r\n`).join('')}` +
    `${body === '' ? '' : `content-length: ${Buffer.byteLength(body)}\r\n`}\r\n`, 'latin1'),
  Buffer.from(body)])

const publish = (body: string, headers: string[]): Buffer =>
  head('POST', '/events/publish', ['content-type: application/json', ...headers], body)

/**
 * The generated corpus: every request is one a well-behaved client would never send, each of which
 * must get a 4xx with a JSON body (or, for a resume from an unknown id, a stream that says so).
 */
export function hostileCorpus (secret: string, goodToken: string, publishToken: string): HostileRequest[] {
  const corpus: HostileRequest[] = []
  const add = (family: string, raw: Buffer | string): void => { corpus.push({ family, raw }) }
  const auth = `authorization: Bearer ${goodToken}`
  const pub = `authorization: Bearer ${publishToken}`
  const encoded = ODD_TEXT.map(text => encodeURIComponent(text.replace(/[\ud800-\udfff]/g, '\ufffd'))).concat(['%', '%zz', '%00', '%ff'])

  // Query strings: every filter with every odd value, raw and encoded.
  for (const name of ['streams', 'users', 'all', 'types', 'access_token', 'token', 'streams[]', 'users[0]']) {
    for (const value of encoded) add('query', head('GET', `/events/subscribe?${name}=${value}`, [auth]))
  }
  for (let count = 2; count <= 2048; count *= 2) add('query', head('GET', `/events/subscribe?${'streams=a&'.repeat(count)}`, [auth]))
  add('query', head('GET', `/events/subscribe?streams=${'a,'.repeat(6000)}`, [auth]))

  // Last-Event-ID: odd values, each in its own request (a raw byte head, as a broken proxy would send).
  for (const value of [...ODD_TEXT, '99999999999999999999-0', '0-99999999999999999999', '1-1-1', '-', ':', '0x10', '1'.repeat(400)]) {
    add('last-event-id', head('GET', '/events/subscribe?all=true', [auth, `last-event-id: ${Buffer.from(value).toString('latin1').replace(/[\r\n]/g, '')}`]))
  }

  // Tokens: real ones that must be refused, and garbage, in every place a token is read.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const claims = { sub: 'faults', scope: 'events:all events:publish', exp: nowS() + 600 }
  const badTokens = [
    signJwt({ ...claims, exp: nowS() - 3600 }, { alg: 'HS256', secret }),
    signJwt(claims, { alg: 'RS256', privateKey }),
    signJwt(claims, { alg: 'HS256', secret: `${secret}-not-it` }),
    signJwt(claims, { alg: 'none' }),
    signJwt({ sub: 'faults', scope: 'events:all' }, { alg: 'HS256', secret }),
    signJwt({ ...claims, nbf: nowS() + 3600 }, { alg: 'HS256', secret }),
    signJwt({ ...claims, exp: 'soon' }, { alg: 'HS256', secret }),
    signJwt({ ...claims, scope: 42 }, { alg: 'HS256', secret }),
    'x', '..', 'a.b.c', 'a.b', `${'a'.repeat(8000)}.b.c`, 'eyJhbGciOiJIUzI1NiJ9.e30', '%', '%zz', '\u00ff\u00fe',
    ...ODD_TEXT.slice(0, 12).map(text => Buffer.from(text).toString('latin1').replace(/[\r\n]/g, ''))
  ]
  for (const token of badTokens) {
    const inQuery = encodeURIComponent(token)
    add('token', head('GET', '/events/subscribe?all=true', [`authorization: Bearer ${token}`]))
    add('token', head('GET', '/events/subscribe?all=true', [`authorization: ${token}`]))
    add('token', head('GET', '/events/subscribe?all=true', [`cookie: flowfi_token=${token.replace(/[;\s]/g, '')}`]))
    add('token', head('GET', `/events/subscribe?all=true&access_token=${inQuery}`, []))
    add('token', head('GET', `/events/subscribe?all=true&token=${inQuery}`, []))
    add('token', publish('{"event":"stream.cancelled","data":{"streamId":"1"}}', [`authorization: Bearer ${token}`]))
  }
  add('token', head('GET', '/events/subscribe?all=true', []))

  // Bodies: bad JSON, wrong types, unicode and control characters, huge, deep, oversized batches.
  const badJson = ['', '{', '}', '[', 'null', 'true', '1', '"x"', '{"event":', '{"event":"stream.cancelled",}', "{'a':1}", '\u0000', '\ufeff{}',
    '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', 'NaN', '[[[[', '{"a":1e99999}', '{"event":"stream.cancelled","data":{"streamId":"1"}}x']
  for (const body of badJson) add('body', publish(body, [pub]))
  const events = ['stream.cancelled', 'stream.created', 'nope', '', 42, null, [], {}, '__proto__', 'x'.repeat(10_000)]
    // (`data.users`, `data.to` and other fields of `data` are the event's own: not refused.)
  const datas: unknown[] = [null, 1, 'x', [], true, { streamId: true }, { streamId: '' }, { streamId: 'a'.repeat(200) },
    { streamId: '\u0000' }, { streamId: '../x' }, { streamId: ['1'] }, { streamId: { a: 1 } }]
  const envelopes: unknown[] = [{ users: 'x' }, { users: [1] }, { to: 7 }, { to: [{}] }, { users: ['\u0000'] }]
  for (const event of events) {
    for (const data of datas) add('types', publish(JSON.stringify({ event, data }), [pub]))
    for (const envelope of envelopes) add('types', publish(JSON.stringify({ event, data: { streamId: '1' }, ...envelope as object }), [pub]))
  }
  for (const text of ODD_TEXT) add('unicode', publish(JSON.stringify({ event: text, data: { streamId: text } }), [pub]))
  add('huge', publish(JSON.stringify({ event: 'stream.cancelled', data: { streamId: '1', pad: 'x'.repeat(2 * 1048576) } }), [pub]))
  add('huge', head('POST', '/events/publish', ['content-type: application/json', pub, 'content-length: 99999999999'], ''))
  for (const depth of [33, 100, 1000, 10_000, 100_000]) {
    add('deep', publish(`{"event":"stream.cancelled","data":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`, [pub]))
    add('deep', publish(`${'['.repeat(depth)}${']'.repeat(depth)}`, [pub]))
  }
  for (const size of [501, 1000, 5000]) {
    add('batch', publish(JSON.stringify(Array.from({ length: size }, (_, seq) => ({ event: 'stream.cancelled', data: { streamId: String(seq) } }))), [pub]))
  }
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-7', '']) {
    add('body', head('POST', '/events/publish', [`content-type: ${type}`, pub], 'event=stream.cancelled'))
  }

  // Heads: too big, bad methods and targets, bad framing.
  add('head', head('GET', '/events/subscribe?all=true', [auth, `x-pad: ${'a'.repeat(20_000)}`]))
  add('head', head('GET', `/events/subscribe?${'a'.repeat(20_000)}`, [auth]))
  for (const method of ['PUT', 'DELETE', 'PATCH', 'TRACE', 'FOO']) {
    for (const path of ['/events/subscribe', '/events/publish', '/events/stats', '/nope', '/events/subscribe/../publish']) add('head', head(method, path, [auth]))
  }
  add('head', 'GET /events/subscribe HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n')
  add('head', 'GET /events/subscribe HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n')
  add('head', 'POST /events/publish HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n')
  add('head', 'GARBAGE\r\n\r\n')
  add('head', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00, 0x00]))
  add('head', 'GET /\u0000 HTTP/1.1\r\n\r\n')
  return corpus
}

/** Channel messages the bridge must drop and count as `malformed`. */
export function malformedChannelMessages (): string[] {
  const messages = ['', '{', 'null', '[]', '42', '"x"', '{"event":"nope","data":{}}', '{"event":"stream.cancelled"}',
    '{"event":"stream.cancelled","data":null}', '{"__proto__":{"event":"stream.cancelled"}}',
    '{"event":"stream.cancelled","data":{"streamId":"1","constructor":{"prototype":{}}}}', 'x'.repeat(1048577),
    `{"event":"stream.cancelled","data":${'['.repeat(100)}${']'.repeat(100)}}`]
  for (const text of ODD_TEXT) messages.push(JSON.stringify({ event: text, data: { streamId: 42 } }))
  return messages
}

/** Fields of `XADD <prefix>events *` that this service never writes: foreign entries to skip and count. */
export function foreignLogEntries (): string[][] {
  return [['hello', 'world'], ['event', 'nope'], ['event', 'stream.cancelled'], ['data', '{'], ['prev', 'x', 'event', 'stream.cancelled'],
    ['event', 'stream.cancelled', 'data', 'not json'], ['x', '\u0000'], ['event', '\u202e', 'data', '{}']]
}
