import type { IncomingMessage } from 'node:http'
import { constants, type Http2ServerRequest, type ServerHttp2Stream } from 'node:http2'
import { GatheringSink, type Frame } from './frame.js'
import { drainedOrClosed, type Sink } from './sink.js'

/**
 * The HTTP/2 stream a request came over; undefined on HTTP/1.x. (Fastify types requests as Node's
 * HTTP/1 ones; on an HTTP/2 server they are its compatibility layer's, around the stream.)
 */
export function http2StreamOf (request: IncomingMessage | Http2ServerRequest): ServerHttp2Stream | undefined {
  return request.httpVersionMajor === 2 ? (request as Http2ServerRequest).stream : undefined
}

/**
 * An HTTP/2 event stream: plain frames in DATA frames on its stream, many streams to a session.
 * Node queues a stream's writes in the stream itself once the client's flow-control window is full,
 * while the session's socket, shared by every stream, shows nothing waiting: the stream's own
 * `writableLength` is what its client has not taken. A write the stream can no longer take (the client
 * reset it, and the broker has not heard yet) fails into the 'error' listener that Node's
 * compatibility layer (Fastify's request) puts on every stream. In a flush of several events the
 * stream is corked at its first write and uncorked when the flush is over: its frames go to the
 * session as one write (Node's `_writev`: one write request to nghttp2 instead of one per event), in
 * one DATA frame as far as the frame size and the client's window allow.
 */
export class Http2Sink extends GatheringSink implements Sink {
  constructor (readonly stream: ServerHttp2Stream) {
    super()
  }

  get protocol (): 'h2' {
    return 'h2'
  }

  get buffered (): number {
    return this.stream.writableLength
  }

  /** Reset (by either side), destroyed with its session, or over at both ends; not merely ended by us. */
  get closed (): boolean {
    return this.stream.closed
  }

  write (frame: Frame): void {
    this.gather(frame)
    this.stream.write(frame.bytes)
  }

  protected hold (): void {
    this.stream.cork()
  }

  release (): void {
    this.stream.uncork()
  }

  /** The last DATA frame carries END_STREAM, after what is buffered. */
  end (): void {
    this.stream.end()
  }

  /** RST_STREAM with CANCEL, which a client tells from a clean end (`destroy()` would send NO_ERROR). */
  abort (): void {
    this.stream.close(constants.NGHTTP2_CANCEL)
  }

  /** GOAWAY: the session takes no new stream, and closes once its last one ends. Once per session. */
  retireConnection (): void {
    this.stream.session?.close()
  }

  async drained (): Promise<void> {
    await drainedOrClosed(this.stream)
  }

  onClose (listener: () => void): void {
    this.stream.once('close', listener)
  }
}
