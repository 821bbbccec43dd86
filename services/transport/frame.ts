/**
 * A frame on its way to the sinks: the event stream's bytes, and what a wire makes of them (an
 * HTTP/1.1 chunk), made at the first write that needs it and shared by every other. The broker makes
 * one per event per flush, and one per heartbeat: never one per connection.
 */
export class Frame {
  #encoding: ((bytes: Buffer) => Buffer) | undefined
  #encoded: Buffer | undefined

  /** `batch`: the flush it is written in, when that flush writes several events (see WriteBatch). */
  constructor (readonly bytes: Buffer, readonly batch?: WriteBatch) {}

  /**
   * The bytes as `encoding` makes them, made once. One slot is enough: the HTTP/1.1 chunk is the only
   * encoding there is (HTTP/1.0 and HTTP/2 write the bytes as they are).
   */
  encoded (encoding: (bytes: Buffer) => Buffer): Buffer {
    if (this.#encoding !== encoding) {
      this.#encoded = encoding(this.bytes)
      this.#encoding = encoding
    }
    return this.#encoded!
  }
}

/** A sink that gathers the writes of a batch until the batch lets it go. */
export interface Gathering {
  release (): void
}

/**
 * A sink that holds its writes of a batch (corks what it writes to) from its first write in the batch
 * until the batch ends, so that all it gets from one flush leaves as one write: one system call for
 * an HTTP/1.x socket, one DATA write for an HTTP/2 stream. The sink says what holding is; this keeps
 * where it joined last (a number, not a set: the check runs once per write).
 */
export abstract class GatheringSink implements Gathering {
  /** The last batch this sink joined. */
  #batch = 0

  /** Corks what the sink writes to. */
  protected abstract hold (): void
  /** Uncorks it: what was held goes out at once. */
  abstract release (): void

  /** Called before each write of `frame`: joins its batch, and holds, at the first write in it. */
  protected gather (frame: Frame): void {
    const batch = frame.batch
    if (batch !== undefined && batch.id !== this.#batch) {
      this.#batch = batch.id
      this.hold()
      batch.join(this)
    }
  }
}

/**
 * The writes of one flush of several events. A sink that gathers its writes (see GatheringSink)
 * joins the batch at its first write in it and is released when the flush is over.
 */
export class WriteBatch {
  static #last = 0
  /** Tells one batch from the next, for a sink that remembers where it joined last. */
  readonly id = ++WriteBatch.#last
  readonly #joined: Gathering[] = []

  join (sink: Gathering): void {
    this.#joined.push(sink)
  }

  end (): void {
    for (const sink of this.#joined) sink.release()
    this.#joined.length = 0
  }
}
