import type { Filters, Subscriber } from './subscription-index.js'

/** The part of a Node HTTP/1.1 or HTTP/2 response that a stream writes to. */
export interface EventStreamResponse {
  write (chunk: Buffer): boolean
  end (): unknown
}

/** One open event stream: its filters, the response it writes to, and what it has been sent. */
export class SseConnection implements Subscriber {
  matchRound = 0
  eventsSent = 0
  readonly openedAt = Date.now()

  constructor (readonly response: EventStreamResponse, readonly filters: Filters) {}

  send (frame: Buffer): void {
    this.response.write(frame)
  }

  end (): void {
    this.response.end()
  }
}
