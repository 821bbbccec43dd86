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
