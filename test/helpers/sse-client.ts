import http, { type IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { createParser, type EventSourceMessage } from 'eventsource-parser'

/**
 * A raw event-stream reader for tests: it keeps the exact bytes received and what a WHATWG-conformant
 * parser makes of them, and waits for conditions with a deadline. Its response is an HTTP/1.1 one, or
 * an HTTP/2 stream (test/helpers/h2.ts).
 */
export class StreamClient<Response extends Readable = http.IncomingMessage> {
  raw = ''
  readonly events: EventSourceMessage[] = []
  readonly comments: string[] = []
  retry: number | undefined
  ended = false
  #waiters = new Set<() => void>()

  constructor (readonly status: number, readonly headers: IncomingHttpHeaders, readonly response: Response) {
    const parser = createParser({
      onEvent: event => this.events.push(event),
      onComment: comment => this.comments.push(comment),
      onRetry: retry => { this.retry = retry }
    })
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => {
      this.raw += chunk
      parser.feed(chunk)
      this.#wake()
    })
    response.on('close', () => {
      this.ended = true
      this.#wake()
    })
  }

  #wake (): void {
    for (const waiter of this.#waiters) waiter()
  }

  /** Resolves when `condition` holds; rejects after `timeoutMs` naming `what`. */
  async until (what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
    if (condition()) return
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return
        finish()
        resolve()
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received: ${JSON.stringify(this.raw.slice(-500))}`))
      }, timeoutMs)
      const finish = (): void => {
        clearTimeout(timer)
        this.#waiters.delete(check)
      }
      this.#waiters.add(check)
    })
  }

  async eventCount (count: number, timeoutMs?: number): Promise<EventSourceMessage[]> {
    await this.until(`${count} events`, () => this.events.length >= count, timeoutMs)
    return this.events.slice(0, count)
  }

  close (): void {
    this.response.destroy()
  }
}

/** Opens `GET path` (from `localAddress`, say 127.0.0.2) and resolves once the response head has arrived. */
export async function openStream (url: string, headers: Record<string, string> = {}, localAddress?: string): Promise<StreamClient> {
  return await new Promise((resolve, reject) => {
    const request = http.get(url, { headers, agent: false, localAddress }, response => {
      resolve(new StreamClient(response.statusCode!, response.headers, response))
    })
    request.on('error', reject)
  })
}

/** Opens a stream, waits until the server has registered it, and closes it when the test ends. */
export async function subscribe (t: { teardown (fn: () => unknown): void }, url: string, query: string,
  headers: Record<string, string> = {}): Promise<StreamClient> {
  const client = await openStream(`${url}/events/subscribe?${query}`, headers)
  t.teardown(() => client.close())
  // The retry hint is the first thing written: once it is here the server has registered the stream.
  // (An error response never sends one; the timeout message then shows its body.)
  await client.until(`the retry hint of ${query}`, () => client.retry !== undefined)
  return client
}
