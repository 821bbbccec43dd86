import { connect } from 'node:net'

/** What came back for one raw request: the status (0: none) and the body after the head. */
export interface RawAnswer { status: number, contentType: string, body: string, hung: boolean }

/**
 * Sends `request` byte for byte over a fresh TCP connection (fetch would refuse to send most of the
 * hostile corpus) and reads until the server closes, or `timeoutMs`. A stream (`200`
 * text/event-stream) is cut after its first bytes: it was accepted, not hung.
 */
export async function rawRequest (port: number, request: Buffer | string, timeoutMs = 10_000): Promise<RawAnswer> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let settled = false
    const finish = (hung: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const split = text.indexOf('\r\n\r\n')
      const head = split < 0 ? text : text.slice(0, split)
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0)
      const contentType = /\r\ncontent-type: *([^\r]*)/i.exec(head)?.[1] ?? ''
      resolve({ status, contentType, body: split < 0 ? '' : dechunk(head, text.slice(split + 4)), hung })
    }
    const timer = setTimeout(() => finish(true), timeoutMs)
    socket.on('data', chunk => {
      chunks.push(chunk)
      if (/^HTTP\/1\.1 200[^]*text\/event-stream/i.test(Buffer.concat(chunks).toString('latin1'))) finish(false)
    })
    socket.on('end', () => finish(false))
    socket.on('close', () => finish(false))
    socket.on('error', () => finish(false))
    socket.write(request)
  })
}

function dechunk (head: string, body: string): string {
  if (!/\r\ntransfer-encoding: *chunked/i.test(head)) return body
  let out = ''
  let rest = body
  for (;;) {
    const line = rest.indexOf('\r\n')
    const length = parseInt(rest.slice(0, line), 16)
    if (line < 0 || !(length > 0)) return out
    out += rest.slice(line + 2, line + 2 + length)
    rest = rest.slice(line + 4 + length)
  }
}
