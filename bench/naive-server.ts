// The baseline: what an SSE endpoint usually looks like in plain Node. Every client is checked
// against every event, and every matching client gets its own JSON.stringify and res.write.
import http from 'node:http'

interface Client { res: http.ServerResponse, all: boolean, streams: Set<string> }

const clients = new Set<Client>()
let nextId = 0

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://bench')
  if (req.method === 'GET' && url.pathname === '/events/subscribe') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    res.write('retry: 3000\n\n')
    const client = { res, all: url.searchParams.get('all') === 'true', streams: new Set(url.searchParams.getAll('streams')) }
    clients.add(client)
    req.on('close', () => clients.delete(client))
    return
  }
  if (req.method === 'POST' && url.pathname === '/publish') {
    let body = ''
    req.on('data', chunk => { body += chunk })
    req.on('end', () => {
      const { event, data } = JSON.parse(body) as { event: string, data: { streamId: string } }
      const id = nextId++
      for (const client of clients) {
        if (client.all || client.streams.has(data.streamId)) {
          client.res.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
        }
      }
      res.writeHead(202, { 'content-type': 'application/json' }).end(`{"id":"${id}"}`)
    })
    return
  }
  res.writeHead(404).end()
})
server.listen(Number(process.env.PORT), '127.0.0.1')
