import { Type, type TObject, type TString } from '@sinclair/typebox'
import type {
  ContextConfigDefault, FastifySchema, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault,
  RouteGenericInterface, RouteHandlerMethod
} from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'

/**
 * `{ error, message }`, the body of every refusal and failure (plugins/errors.ts and the routes);
 * `description` says which codes come when, and is the response's description in /openapi.json.
 */
export const errorBody = (description?: string): TObject<{ error: TString, message: TString }> => Type.Object({
  error: Type.String({ description: 'a machine-readable code' }),
  message: Type.String({ description: 'what is wrong, for the developer' })
}, description === undefined ? {} : { description })

/**
 * A handler typed by its route's schema (through the TypeBox type provider), for a handler written
 * apart from the route that it serves.
 */
export type TypedHandler<Schema extends FastifySchema> = RouteHandlerMethod<
  RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, RouteGenericInterface,
  ContextConfigDefault, Schema, TypeBoxTypeProvider
>
