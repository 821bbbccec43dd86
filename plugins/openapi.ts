import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import type { FastifyPluginAsync } from 'fastify'
import { version } from '../services/version.js'

/** The path of the document: served in every mode (see README, "OpenAPI"). */
export const OPENAPI_PATH = '/openapi.json'

/**
 * The routes' schemas, collected as they are added (so register this before them), make the OpenAPI
 * document served at `/openapi.json`. A response schema describes an answer and types its handler; it
 * does not shape it: bodies are serialised as with no schema at all (JSON.stringify), so that no
 * field is dropped or reordered by a schema that lags behind its route.
 */
const openapi: FastifyPluginAsync = async app => {
  app.setSerializerCompiler(() => data => JSON.stringify(data))
  await app.register(swagger, {
    mode: 'dynamic',
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'flowfi-events',
        version,
        description: 'Live updates for FlowFi payment streams over Server-Sent Events. ' +
          'The events API is served at the root and under /v1; both are one API, with the same limits.'
      }
    },
    // A schema with an $id (Envelope) is one component of that name, referenced where it is used;
    // only such schemas are made references.
    refResolver: { buildLocalReference: json => String(json.$id) }
  })
  // A description only, of what every client may call anyway: nothing to protect, but rate-limited
  // as every route is.
  app.get(OPENAPI_PATH, { schema: { hide: true } }, () => app.swagger())
}

export default fp(openapi, { name: 'openapi', fastify: '5.x' })
