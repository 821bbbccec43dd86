import { once } from 'node:events'
import net from 'node:net'
import { pipeline, Transform } from 'node:stream'

/** A DATA frame the server sent: the stream it belongs to, and its payload. */
export interface DataFrame {
  streamId: number
  payload: Buffer
}

/** HTTP/2's frame header: 24-bit length, type, flags, 31-bit stream id (RFC 9113, section 4.1). */
const HEADER = 9
const DATA = 0x0

/**
 * A TCP relay in front of an h2c server at `url` that reads, on the wire, the frames the server sends
 * and keeps the DATA frames, in order. Its `url` is for the client; closed when the test ends.
 */
export async function dataFrameRelay (t: { teardown (fn: () => unknown): void }, url: string): Promise<{ url: string, frames: DataFrame[] }> {
  const frames: DataFrame[] = []
  const relay = net.createServer(client => {
    const server = net.connect(Number(new URL(url).port), '127.0.0.1')
    let pending = Buffer.alloc(0)
    const reader = new Transform({
      transform (chunk: Buffer, _encoding, done) {
        pending = Buffer.concat([pending, chunk])
        while (pending.length >= HEADER && pending.length >= HEADER + pending.readUIntBE(0, 3)) {
          const end = HEADER + pending.readUIntBE(0, 3)
          if (pending[3] === DATA) frames.push({ streamId: pending.readUInt32BE(5) & 0x7fffffff, payload: pending.subarray(HEADER, end) })
          pending = pending.subarray(end)
        }
        done(null, chunk)
      }
    })
    // Either side's end or reset ends the other: a pipeline destroys its streams on error.
    const closed = (): void => { client.destroy(); server.destroy() }
    pipeline(client, server, closed)
    pipeline(server, reader, client, closed)
  })
  relay.listen(0, '127.0.0.1')
  await once(relay, 'listening')
  t.teardown(() => relay.close())
  return { url: `http://127.0.0.1:${(relay.address() as net.AddressInfo).port}`, frames }
}
