import type { CloseReason } from './delivery-metrics.js'
import type { Filters, Subscriber } from './subscription-index.js'

/** The socket (or HTTP/2 stream) a stream's frames are written to, below the HTTP response layer. */
export interface EventSink {
  readonly writableLength: number
  readonly destroyed: boolean
  write (chunk: Buffer): boolean
  cork (): void
  uncork (): void
  /** Ends once what is buffered is written, and closes without waiting for the peer's own end. */
  destroySoon (): void
  destroy (): unknown
  once (event: 'drain' | 'close', listener: () => void): unknown
  off (event: 'drain' | 'close', listener: () => void): unknown
}

const CRLF = Buffer.from('\r\n')
/** The chunk that ends a chunked HTTP/1.1 body. */
const LAST_CHUNK = Buffer.from('0\r\n\r\n')

/** A frame as one HTTP/1.1 chunk: built once per event, then written as is to every connection. */
export function toChunk (frame: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, CRLF])
}

/**
 * One open event stream: its filters, where it writes, and what it has been sent. After the response
 * head, frames go straight to the socket; on HTTP/1.1 each is already framed as a chunk.
 */
export class SseConnection implements Subscriber {
  matchRound = 0
  /** The last flush that corked this connection (see EventBroker). */
  flushMark = 0
  eventsSent = 0
  /** In the subscription index, receiving live events (false while its replay is written). */
  live = false
  /** Why it ended, once the broker has let it go. */
  closeReason: CloseReason | undefined
  /** When the token it was opened with stops being accepted (ms since the epoch), if ever. */
  acceptedUntil: number | undefined
  readonly openedAt = Date.now()

  /** `chunked`: the response uses HTTP/1.1 chunked transfer coding, so frames are wrapped as chunks. */
  constructor (readonly sink: EventSink, readonly chunked: boolean, readonly filters: Filters) {}

  /** Bytes written but not yet taken by the client's socket. */
  get buffered (): number {
    return this.sink.writableLength
  }

  get closed (): boolean {
    return this.sink.destroyed
  }

  /** Writes one frame; pass its chunk when it is shared with other connections. */
  write (frame: Buffer, chunk?: Buffer): void {
    this.sink.write(this.chunked ? chunk ?? toChunk(frame) : frame)
  }

  /**
   * A clean end: what is buffered is still sent, then the body's last chunk, then the connection
   * closes, whether or not the client closes its side. A client that comes back opens a new
   * connection, which a load balancer may send to another instance (the point of a drain).
   */
  end (): void {
    if (this.chunked) this.sink.write(LAST_CHUNK)
    this.sink.destroySoon()
  }

  /** Drops the connection at once, buffered bytes and all (a slow consumer). */
  destroy (): void {
    this.sink.destroy()
  }

  /** Resolves once the buffered bytes are taken, or the connection closes. */
  async drained (): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        this.sink.off('drain', done)
        this.sink.off('close', done)
        resolve()
      }
      this.sink.once('drain', done)
      this.sink.once('close', done)
    })
  }
}
