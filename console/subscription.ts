// The subscription as the page's URL carries it (`/console?streams=42&all=false`), so that a link
// opens the page subscribed and a reload keeps it. A parameter left out is off.
import { QUERY } from '../services/protocol.js'
import type { Filters } from '../client/index.js'

/** What the page subscribes to: the client's filters, every one given. */
export interface Subscription extends Required<Filters> { streams: string[], users: string[], all: boolean }

/** Comma- or space-separated values of an input, without blanks or repeats. */
export const listOf = (text: string): string[] => [...new Set(text.split(/[\s,]+/).filter(value => value !== ''))]

/** Reads `?streams=…&users=…&all=…` (each repeatable, or comma-separated). */
export function subscriptionOf (search: string): Subscription {
  const params = new URLSearchParams(search)
  return {
    streams: listOf(params.getAll(QUERY.streams).join(',')),
    users: listOf(params.getAll(QUERY.users).join(',')),
    all: params.get(QUERY.all) === 'true'
  }
}

/** The query that says this subscription, one parameter per value as the API takes them. */
export function searchOf (subscription: Subscription): string {
  const params = new URLSearchParams()
  for (const id of subscription.streams) params.append(QUERY.streams, id)
  for (const user of subscription.users) params.append(QUERY.users, user)
  params.set(QUERY.all, String(subscription.all))
  return `?${params}`
}

export const isEmpty = (subscription: Subscription): boolean =>
  subscription.streams.length === 0 && subscription.users.length === 0 && !subscription.all

/** How the list names a subscription: "streams=42 all". */
export const describe = (subscription: Subscription): string => [
  ...subscription.streams.map(id => `${QUERY.streams}=${id}`),
  ...subscription.users.map(user => `${QUERY.users}=${user}`),
  ...subscription.all ? [`${QUERY.all}=true`] : []
].join(' ')
