import type { Http2Session } from 'node:http2'
import fp from 'fastify-plugin'
import type { FastifyPluginCallback } from 'fastify'

/**
 * The HTTP/2 sessions of the main port (TLS or h2c). When the app closes, after the broker has ended
 * every stream, each session still open gets GOAWAY and closes once its streams are over: on Node 20
 * the server's close() waits for every session, those with no stream too. (Fastify does this only
 * with `forceCloseConnections: true`, which also destroys the TLS port's kept-alive HTTP/1.1
 * connections, streams whose last chunk is still on its way among them.)
 */
const http2Sessions: FastifyPluginCallback = (app, _options, done) => {
  const sessions = new Set<Http2Session>()
  app.server.on('session', (session: Http2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
  })
  // Registered after the broker, whose preClose has ended the streams by now.
  app.addHook('preClose', async () => {
    for (const session of sessions) session.close()
  })
  done()
}

export default fp(http2Sessions, { name: 'http2-sessions', fastify: '5.x', dependencies: ['sse-broker'] })
