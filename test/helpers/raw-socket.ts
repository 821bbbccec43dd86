import { once } from 'node:events'
import net from 'node:net'

/** A raw connection to the app at `url`, with everything it has received so far. */
export async function connect (url: string): Promise<{ socket: net.Socket, received: () => string, ended: Promise<unknown> }> {
  const { port } = new URL(url)
  const socket = net.connect(Number(port), '127.0.0.1')
  await once(socket, 'connect')
  let received = ''
  socket.on('data', chunk => { received += String(chunk) })
  const ended = once(socket, 'close')
  return { socket, received: () => received, ended }
}

/** A client that sends its stream request and then never reads a byte. */
export async function stalledClient (url: string, query: string): Promise<net.Socket> {
  const { port } = new URL(url)
  const socket = net.connect({ port: Number(port), host: '127.0.0.1' })
  await once(socket, 'connect')
  socket.write(`GET /events/subscribe?${query} HTTP/1.1\r\nHost: x\r\n\r\n`)
  socket.pause()
  return socket
}
