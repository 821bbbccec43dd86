// The floor of Node's TLS+h2 write path: a bare node:http2 secure server (TLS_CERT, TLS_KEY) that
// writes each published event's frame, built once, to every open stream with `stream.write`. No
// filters, auth, limits, metrics or framework: what any Node server pays to put an event on N TLS+h2
// connections.
import { readFileSync } from 'node:fs'
import http2, { type ServerHttp2Stream } from 'node:http2'

const streams = new Set<ServerHttp2Stream>()
let nextId = 0

const server = http2.createSecureServer({ cert: readFileSync(process.env.TLS_CERT!), key: readFileSync(process.env.TLS_KEY!) })
server.on('stream', (stream, headers) => {
  stream.on('error', () => {}) // a write to a stream its client has just reset
  if (headers[':method'] === 'GET' && headers[':path']?.startsWith('/events/subscribe') === true) {
    stream.respond({ ':status': 200, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    stream.write('retry: 3000\n\n')
    streams.add(stream)
    stream.once('close', () => streams.delete(stream))
    return
  }
  if (headers[':method'] === 'POST' && headers[':path'] === '/publish') {
    let body = ''
    stream.on('data', chunk => { body += chunk })
    stream.on('end', () => {
      const { event, data } = JSON.parse(body) as { event: string, data: unknown }
      const id = nextId++
      const frame = Buffer.from(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
      for (const subscriber of streams) subscriber.write(frame)
      stream.respond({ ':status': 202, 'content-type': 'application/json' })
      stream.end(`{"id":"${id}"}`)
    })
    return
  }
  stream.respond({ ':status': 404 })
  stream.end()
})
server.listen(Number(process.env.PORT), '127.0.0.1')
