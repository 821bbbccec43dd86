import { GatheringSink, type Frame } from './frame.js'
import { drainedOrClosed, type Draining, type Sink } from './sink.js'

/** What an HTTP/1.x stream writes to once its response head is out: its connection's socket (TCP or TLS). */
export interface ByteSocket extends Draining {
  readonly writableLength: number
  readonly destroyed: boolean
  write (bytes: Buffer): boolean
  cork (): void
  uncork (): void
  /** Ends once what is buffered is written, and closes without waiting for the peer's own end. */
  destroySoon (): void
  destroy (): unknown
}

const CRLF = Buffer.from('\r\n')
/** The chunk that ends a chunked HTTP/1.1 body. */
const LAST_CHUNK = Buffer.from('0\r\n\r\n')

/** A frame as one HTTP/1.1 chunk. */
export function toChunk (frame: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, CRLF])
}

/**
 * An HTTP/1.x event stream, written straight to its socket below Node's HTTP layer. On HTTP/1.1 each
 * frame goes as a chunk, the one its Frame made for every connection; on HTTP/1.0 as it is. In a
 * flush of several events the socket is corked at its first write and uncorked when the flush is
 * over, so that all it gets from one flush leaves in one system call.
 */
export class Http1Sink extends GatheringSink implements Sink {
  /** `chunked`: the response uses chunked transfer coding (HTTP/1.1; never HTTP/1.0). */
  constructor (readonly socket: ByteSocket, readonly chunked: boolean) {
    super()
  }

  get protocol (): 'http1' {
    return 'http1'
  }

  get buffered (): number {
    return this.socket.writableLength
  }

  get closed (): boolean {
    return this.socket.destroyed
  }

  write (frame: Frame): void {
    this.gather(frame)
    this.socket.write(this.chunked ? frame.encoded(toChunk) : frame.bytes)
  }

  protected hold (): void {
    this.socket.cork()
  }

  release (): void {
    this.socket.uncork()
  }

  /**
   * The body's last chunk after what is buffered, then the connection closes, whether or not the
   * client closes its side: a client that comes back opens a new connection.
   */
  end (): void {
    if (this.chunked) this.socket.write(LAST_CHUNK)
    this.socket.destroySoon()
  }

  abort (): void {
    this.socket.destroy()
  }

  /** Nothing to do: the connection ends with the stream. */
  retireConnection (): void {}

  async drained (): Promise<void> {
    await drainedOrClosed(this.socket)
  }

  onClose (listener: () => void): void {
    this.socket.once('close', listener)
  }
}
