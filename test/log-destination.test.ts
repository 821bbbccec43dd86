import { execFileSync } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { waitUntil } from './helpers/app.js'
import { LogDestination } from '../services/log-destination.js'

/** A real pipe (a FIFO), both ends non-blocking, as fd 1 is once Node has opened it as process.stdout. */
function pipe (t: { teardown (fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'log-destination-'))
  const path = join(dir, 'pipe')
  execFileSync('mkfifo', [path])
  let reader: number | undefined = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK)
  let received = ''
  const closeReader = () => {
    if (reader !== undefined) closeSync(reader)
    reader = undefined
  }
  t.teardown(() => {
    closeReader()
    closeSync(writer)
    rmSync(dir, { recursive: true })
  })
  /** Reads what the pipe holds now; returns everything read so far. */
  const read = (): string => {
    const buffer = Buffer.alloc(65536)
    for (;;) {
      try {
        const n = readSync(reader!, buffer)
        if (n === 0) return received
        received += buffer.toString('utf8', 0, n)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return received
        throw error
      }
    }
  }
  return { writer, read, closeReader }
}

/** Writes whole lines to the pipe until it is full; returns them. */
function fill (writer: number): string {
  let filled = ''
  for (;;) {
    try {
      writeSync(writer, line(-1))
    } catch {
      return filled
    }
    filled += line(-1)
  }
}

const line = (n: number, bytes = 100): string => `${JSON.stringify({ n, pad: 'x'.repeat(bytes) })}\n`
// Longer than any pipe's buffer (64 KiB by default on Linux): the pipe can only take it in parts.
const LONG = line(-1, 256 * 1024)

t.test('lines go out whole and in order; a line longer than the pipe goes in parts, its rest before the next line', async t => {
  const { writer, read } = pipe(t)
  const destination = new LogDestination(writer, { maxBufferedBytes: 1024 * 1024 })
  const expected = [line(0), LONG, ...Array.from({ length: 100 }, (_, i) => line(i + 1))].join('')
  destination.write(line(0))
  t.equal(read(), line(0), 'a line the pipe has room for is written at once')
  destination.write(LONG)
  for (let i = 1; i <= 100; i++) destination.write(line(i))
  await waitUntil('every line has arrived', () => read().length === expected.length)
  t.equal(read(), expected, 'byte for byte, in order')
  t.equal(destination.droppedLines, 0)
})

t.test('while the reader takes nothing, lines wait up to maxBufferedBytes, then are dropped and counted', async t => {
  const { writer, read } = pipe(t)
  const filled = fill(writer)
  const destination = new LogDestination(writer, { maxBufferedBytes: 10 * line(0).length })
  for (let i = 0; i < 15; i++) destination.write(line(i))
  t.equal(destination.droppedLines, 5, 'the five lines past the buffer')
  destination.flush() // as at exit: the pipe is still full, and nothing waits for it
  const expected = filled + Array.from({ length: 10 }, (_, i) => line(i)).join('')
  await waitUntil('the kept lines follow once the reader reads', () => read().length === expected.length)
  t.equal(read(), expected, 'whole lines, in order: the ten kept')
  destination.write(line(99))
  t.equal(read(), expected + line(99), 'and new lines are written at once again')
})

t.test('once the reader has gone, each line is dropped and counted, and none throws', async t => {
  const { writer, read, closeReader } = pipe(t)
  const destination = new LogDestination(writer, { maxBufferedBytes: 1024 * 1024 })
  destination.write(LONG)
  destination.write(line(0)) // waits behind the rest of the long line
  t.ok(read().length < LONG.length, 'the long line is partly written')
  closeReader()
  destination.flush()
  t.equal(destination.droppedLines, 2, 'the rest of the long line and the line behind it, refused (EPIPE)')
  destination.write(line(1))
  t.equal(destination.droppedLines, 3)
})

t.test('options are checked up front', async t => {
  t.throws(() => new LogDestination(-1, { maxBufferedBytes: 1 }), { message: 'log destination: fd must be a file descriptor' })
  t.throws(() => new LogDestination(1, { maxBufferedBytes: 0 }), { message: 'log destination: maxBufferedBytes must be a positive integer' })
})
