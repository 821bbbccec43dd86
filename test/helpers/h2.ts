import { once } from 'node:events'
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2'
import { StreamClient } from './sse-client.js'

type Tap = { teardown (fn: () => unknown): void }

/**
 * An HTTP/2 session to `url`, as a browser keeps one per origin: `https:` by ALPN (trusting `ca`),
 * `http:` as h2c with prior knowledge. Destroyed when the test ends.
 */
export async function connectH2 (t: Tap, url: string, options: http2.SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  const session = http2.connect(url, options)
  t.teardown(() => session.destroy())
  await once(session, 'connect')
  return session
}

/**
 * Requests `path` on the session; resolves once the response head has arrived. A stream the server
 * resets is no error to the test, which reads `rstCode` and `ended`.
 */
export async function requestH2 (session: ClientHttp2Session, path: string, headers: Record<string, string> = {}):
  Promise<StreamClient<ClientHttp2Stream>> {
  const stream = session.request({ ':path': path, ...headers })
  stream.on('error', () => {})
  const [head] = await once(stream, 'response') as [IncomingHttpHeaders]
  return new StreamClient(Number(head[':status']), head, stream)
}

/** Opens an event stream on the session and waits for its retry hint (the server has registered it). */
export async function subscribeH2 (t: Tap, session: ClientHttp2Session, query: string, headers: Record<string, string> = {}):
  Promise<StreamClient<ClientHttp2Stream>> {
  const client = await requestH2(session, `/events/subscribe?${query}`, headers)
  t.teardown(() => client.close())
  await client.until(`the retry hint of ${query}`, () => client.retry !== undefined)
  return client
}

/** A whole answer over HTTP/2: status, head and body (parsed when it is JSON). */
export async function getH2 (session: ClientHttp2Session, path: string, headers: Record<string, string> = {}):
  Promise<{ status: number, headers: IncomingHttpHeaders, body: any }> {
  const client = await requestH2(session, path, headers)
  await client.until(`the end of ${path}`, () => client.ended)
  const json = String(client.headers['content-type']).startsWith('application/json')
  return { status: client.status, headers: client.headers, body: json ? JSON.parse(client.raw) : client.raw }
}
