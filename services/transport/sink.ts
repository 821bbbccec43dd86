import type { Frame } from './frame.js'

/** The wires a stream comes over, as the metrics label them: HTTP/1.x, or HTTP/2 (TLS or h2c). */
export const PROTOCOLS = ['http1', 'h2'] as const
export type Protocol = typeof PROTOCOLS[number]

/**
 * Where one event stream's frames go, whatever the wire. The broker writes frames, reads the bytes
 * still buffered (how a slow consumer is judged), ends a stream cleanly or drops it; it never sees a
 * socket, a chunk or a cork. One implementation per wire: Http1Sink (a socket, chunked) and Http2Sink
 * (an HTTP/2 stream).
 */
export interface Sink {
  readonly protocol: Protocol
  /** Bytes written and not yet taken by the client. */
  readonly buffered: number
  /** Closed by the client, dropped, or ended. */
  readonly closed: boolean
  write (frame: Frame): void
  /** A clean end: what is buffered is still sent, then the end of the body. */
  end (): void
  /** Drops the stream at once, buffered bytes and all. */
  abort (): void
  /**
   * No new stream is to come over this stream's connection, so that the client's next one opens a
   * new connection (which a load balancer may send to another instance). The streams open on it go
   * on until they end.
   */
  retireConnection (): void
  /** Resolves once the buffered bytes are taken, or the sink closes. */
  drained (): Promise<void>
  /** Calls `listener` once the stream has closed, whoever closed it. */
  onClose (listener: () => void): void
}

/** What a sink writes to, as far as waiting goes: a socket, an HTTP/2 stream. */
export interface Draining {
  /** A write found the buffer over its high-water mark: 'drain' comes once it is taken. */
  readonly writableNeedDrain: boolean
  once (event: 'drain' | 'close', listener: () => void): unknown
  off (event: 'drain' | 'close', listener: () => void): unknown
}

/**
 * Resolves at the first 'drain' or 'close' of `target`; at once when no 'drain' is due, which is
 * when fewer bytes wait than the stream's own high-water mark (16 KiB on Node 20, 64 KiB from Node
 * 22), however many more than the broker's cap: the next write is what makes it due.
 */
export async function drainedOrClosed (target: Draining): Promise<void> {
  if (!target.writableNeedDrain) return
  await new Promise<void>(resolve => {
    const done = (): void => {
      target.off('drain', done)
      target.off('close', done)
      resolve()
    }
    target.once('drain', done)
    target.once('close', done)
  })
}
