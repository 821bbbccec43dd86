import { writeSync } from 'node:fs'

/** A write of at most PIPE_BUF bytes to a pipe is atomic: taken whole or not at all (POSIX; 4096 on Linux). */
const PIPE_BUF = 4096
/** How often lines kept back are offered again while the descriptor takes nothing. */
const RETRY_MS = 50
const NEWLINE = 0x0a

export interface LogDestinationOptions {
  /** Bytes of lines kept while the descriptor takes nothing; lines beyond them are dropped. */
  maxBufferedBytes: number
}

/**
 * Where the JSON log lines go, written so that logging never stops the service from serving or from
 * exiting. pino's default destination (sonic-boom) cannot promise that: at exit it flushes
 * synchronously and retries a failed write for ever (EPIPE from a reader gone, EAGAIN from a reader
 * that stopped reading), so `process.exit()` never returns; and on a blocking pipe its writes wait.
 *
 * Here every write is a non-blocking `writeSync`: what the descriptor does not take at once waits in
 * a bounded buffer, offered again every RETRY_MS; a line that does not fit in the buffer, or that the
 * descriptor refuses (EPIPE), is dropped and counted, never waited for. Lines go out in order and
 * whole: a batch of whole lines of at most PIPE_BUF bytes is one write, which a pipe takes entirely or
 * not at all; only a longer batch (one long line) can be taken in part, and its rest goes out before
 * anything else.
 */
export class LogDestination {
  /** Lines lost: refused by the descriptor, or arrived while the buffer was full. */
  droppedLines = 0
  readonly #fd: number
  readonly #options: LogDestinationOptions
  readonly #queue: Buffer[] = []
  #queuedBytes = 0
  /** The end of a batch that the descriptor took only part of. */
  #rest: Buffer | undefined
  #retry: NodeJS.Timeout | undefined

  constructor (fd: number, options: LogDestinationOptions) {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError('log destination: fd must be a file descriptor')
    if (!Number.isInteger(options.maxBufferedBytes) || options.maxBufferedBytes < 1) {
      throw new TypeError('log destination: maxBufferedBytes must be a positive integer')
    }
    this.#fd = fd
    this.#options = options
  }

  /** Takes one line (pino writes each line, newline included, in one call). */
  write (line: string): void {
    const bytes = Buffer.from(line)
    if (this.#queuedBytes + bytes.length > this.#options.maxBufferedBytes) {
      this.droppedLines++
      return
    }
    this.#queue.push(bytes)
    this.#queuedBytes += bytes.length
    // While a retry is due, the descriptor is full: the line waits its turn.
    if (this.#retry === undefined) this.flush()
  }

  /** Writes what the descriptor takes now, without waiting (at exit: what it does not take is lost). */
  flush (): void {
    clearTimeout(this.#retry)
    this.#retry = undefined
    while (this.#rest !== undefined || this.#queue.length > 0) {
      if (!this.#writeNext()) {
        this.#retry = setTimeout(() => this.flush(), RETRY_MS).unref()
        return
      }
    }
  }

  /** Writes the rest of a batch, or the next batch; false when the descriptor took nothing (full). */
  #writeNext (): boolean {
    const chunk = this.#rest ?? this.#takeBatch()
    let written: number
    try {
      written = writeSync(this.#fd, chunk)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
        written = 0
      } else {
        // EPIPE (the reader has gone) or any other failure: these lines are lost, the next may pass.
        this.droppedLines += countLines(chunk)
        written = chunk.length
      }
    }
    this.#rest = written < chunk.length ? chunk.subarray(written) : undefined
    return written > 0
  }

  /** Takes whole lines off the queue, up to PIPE_BUF bytes, or the first line alone if longer. */
  #takeBatch (): Buffer {
    let count = 1
    let bytes = this.#queue[0]!.length
    while (count < this.#queue.length && bytes + this.#queue[count]!.length <= PIPE_BUF) bytes += this.#queue[count++]!.length
    const lines = this.#queue.splice(0, count)
    this.#queuedBytes -= bytes
    return count === 1 ? lines[0]! : Buffer.concat(lines, bytes)
  }
}

function countLines (chunk: Buffer): number {
  let count = 0
  for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) count++
  return count
}

/**
 * Standard output as a LogDestination, with 1 MiB of buffer. Reading `process.stdout.fd` is what makes
 * its writes non-blocking: when fd 1 is a pipe or a socket, Node opens it as a libuv stream, and libuv
 * sets the descriptor non-blocking, so a write to a full pipe fails at once with EAGAIN. A file or a
 * terminal stays blocking: a file takes every byte; a terminal blocks only while its user holds it (^S).
 */
export function stdoutLogDestination (): LogDestination {
  return new LogDestination(process.stdout.fd, { maxBufferedBytes: 1024 * 1024 })
}
