import { Type } from '@sinclair/typebox'
import type { FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { ConsoleBundle, isConsoleFile, type ConsoleFile } from '../../services/console-bundle.js'
import { BEARER_CHALLENGE, bearerToken, SCOPE_ALL } from '../../services/principal.js'
import { publisherIdentifier } from '../events/publishers.js'
import { errorBody } from '../schemas.js'

export interface ConsoleOptions {
  /** Where the built page is (services/console-bundle.ts CONSOLE_DIR unless a test built its own). */
  dir: string
  /** PUBLISH_TOKEN: whether the page's token may publish is what the publish route would say. */
  publishToken: string | undefined
}

export const CONSOLE_PATH = '/console'

/**
 * The page's own files and the service's API, nothing else: no inline script or style, no other
 * origin, no frames, no form posts (the page's forms are handled by its script).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self' data:",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"
].join('; ')

const Access = Type.Object({
  tokenRequired: Type.Boolean({ description: 'AUTH_MODE=jwt: the page needs a token with events:all' }),
  subscribe: Type.Boolean({ description: 'the page may open streams' }),
  publish: Type.Boolean({ description: 'POST /events/publish would take this request\'s token (or none)' })
})

// The page is no part of the API: hidden from /openapi.json.
const ACCESS_SCHEMA = {
  hide: true,
  response: { 200: Access, 401: errorBody(), 403: errorBody() }
}
const FILE_SCHEMA = { hide: true, params: Type.Object({ file: Type.String() }) }

/**
 * `GET /console`: the live console page (console/, bundled by `npm run build`), its files under
 * `/console/<name>` (a fixed list), and `GET /console/access`, which tells the page what its token
 * (in `Authorization`, or none) allows. With AUTH_MODE=jwt the page opens nothing until a token
 * with `events:all` is accepted here.
 */
const consoleRoutes: FastifyPluginCallbackTypebox<ConsoleOptions> = (app, options, done) => {
  const bundle = new ConsoleBundle(options.dir)
  const identify = publisherIdentifier(app, options)

  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    reply.header('referrer-policy', 'no-referrer')
  })

  async function send (reply: FastifyReply, name: ConsoleFile) {
    const asset = await bundle.file(name)
    if (asset === undefined) {
      return reply.code(503).send({ error: 'console_not_built', message: `the console page is not built (or not readable) in ${options.dir}: run npm run build` })
    }
    // Names without a hash: the browser asks again each time, so that a new build shows at the next load.
    return reply.header('cache-control', 'no-cache').type(asset.contentType).send(asset.body)
  }

  app.get(CONSOLE_PATH, { schema: { hide: true } }, (_request, reply) => send(reply, 'index.html'))

  app.get(`${CONSOLE_PATH}/access`, { schema: ACCESS_SCHEMA }, async (request, reply) => {
    const tokenRequired = app.auth.mode === 'jwt'
    if (app.auth.mode === 'jwt') {
      if (bearerToken(request.headers.authorization) === undefined) return { tokenRequired, subscribe: false, publish: false }
      const verdict = app.auth.authenticate(request)
      if (!verdict.ok) return reply.code(401).headers(BEARER_CHALLENGE).send({ error: verdict.error, message: verdict.message })
      if (!verdict.principal.scopes.has(SCOPE_ALL)) {
        return reply.code(403).send({ error: 'forbidden', message: `the console needs a token with the ${SCOPE_ALL} scope` })
      }
    }
    return { tokenRequired, subscribe: true, publish: identify(request).ok }
  })

  app.get(`${CONSOLE_PATH}/:file`, { schema: FILE_SCHEMA }, async (request, reply) => {
    const { file } = request.params
    // A name of the list, never a path: nothing a request says reaches the file system.
    if (file === 'index.html' || !isConsoleFile(file)) {
      return reply.code(404).send({ error: 'not_found', message: `no console file ${JSON.stringify(file)}` })
    }
    return await send(reply, file)
  })
  done()
}

export default consoleRoutes
