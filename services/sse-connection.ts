import type { Filters, Subscriber } from './subscription-index.js'

/** The part of a Node HTTP/1.1 or HTTP/2 response that a stream writes to. */
export interface EventStreamResponse {
  readonly writableLength: number
  readonly destroyed: boolean
  write (chunk: Buffer): boolean
  end (): unknown
  destroy (): unknown
  once (event: 'drain' | 'close', listener: () => void): unknown
  off (event: 'drain' | 'close', listener: () => void): unknown
}

/** One open event stream: its filters, the response it writes to, and what it has been sent. */
export class SseConnection implements Subscriber {
  matchRound = 0
  eventsSent = 0
  /** In the subscription index, receiving live events (false while its replay is written). */
  live = false
  readonly openedAt = Date.now()

  constructor (readonly response: EventStreamResponse, readonly filters: Filters) {}

  /** Bytes written but not yet taken by the client's socket. */
  get buffered (): number {
    return this.response.writableLength
  }

  get closed (): boolean {
    return this.response.destroyed
  }

  write (frame: Buffer): void {
    this.response.write(frame)
  }

  /** A clean end: what is buffered is still sent, then the response ends. */
  end (): void {
    this.response.end()
  }

  /** Drops the connection at once, buffered bytes and all (a slow consumer). */
  destroy (): void {
    this.response.destroy()
  }

  /** Resolves once the buffered bytes are taken, or the connection closes. */
  async drained (): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        this.response.off('drain', done)
        this.response.off('close', done)
        resolve()
      }
      this.response.once('drain', done)
      this.response.once('close', done)
    })
  }
}
