// The console page: asks the service what its token allows (/console/access), then subscribes with
// the project's own client and shows what arrives, publishes from a form, and draws live figures.
// With AUTH_MODE=jwt it opens nothing until a token with events:all is accepted; the token is kept
// in memory and sent in the Authorization header only, never in a URL.
import { createEventsClient, type ClientState, type EventsClient } from '../client/index.js'
import { CLOSING, RESYNC } from '../services/protocol.js'
import { authorization, byId } from './dom.js'
import { EventList } from './event-list.js'
import { startFigures } from './figures.js'
import { setUpPublishPanel } from './publish-panel.js'
import { describe, isEmpty, listOf, searchOf, subscriptionOf, type Subscription } from './subscription.js'

/** What routes/console/index.ts answers at /console/access. */
interface Access { tokenRequired: boolean, subscribe: boolean, publish: boolean }

const tokenForm = byId<HTMLFormElement>('token-form')
const tokenInput = byId<HTMLInputElement>('token')
const tokenHint = byId('token-hint')
const tokenProblem = byId('token-problem')
const subscribeForm = byId<HTMLFormElement>('subscribe-form')
const streamsInput = byId<HTMLInputElement>('streams')
const usersInput = byId<HTMLInputElement>('users')
const allInput = byId<HTMLInputElement>('all')
const subscribeButton = byId<HTMLButtonElement>('subscribe')
const stopButton = byId<HTMLButtonElement>('unsubscribe')
const subscribeProblem = byId('subscribe-problem')
const publishPanel = byId('publish-panel')
const publishNote = byId('publish-note')
const stateOutput = byId<HTMLOutputElement>('state')
const lastIdOutput = byId<HTMLOutputElement>('last-id')
const pauseButton = byId<HTMLButtonElement>('pause')
const list = new EventList(byId<HTMLOListElement>('events'), byId<HTMLOutputElement>('held'))

/** The token /console/access accepted last; undefined: none given (or none accepted). */
let token: string | undefined
let client: EventsClient | undefined
let figuresStarted = false
let publishSetUp = false

const showState = (state: ClientState): void => {
  stateOutput.textContent = state
  stateOutput.dataset.state = state
}

/** A client for `subscription`, in place of the one before; its callbacks go quiet once it is replaced. */
function subscribe (subscription: Subscription): void {
  client?.close()
  list.add({ kind: 'notice', type: `subscribed: ${describe(subscription)}`, at: new Date() })
  let wasOpen = false
  let previous: ClientState = 'connecting'
  const current: EventsClient = createEventsClient({
    url: location.origin,
    ...subscription,
    getToken: () => token,
    onStateChange: state => {
      if (client !== current) return
      if (state === 'open') {
        if (wasOpen) list.add({ kind: 'notice', type: `reconnected: resuming after ${current.lastEventId ?? 'nothing'}`, at: new Date() })
        wasOpen = true
        subscribeProblem.textContent = ''
      } else if (previous === 'open' && state !== 'closed') {
        list.add({ kind: 'notice', type: 'connection lost: reconnecting', at: new Date() })
      }
      previous = state
      showState(state)
    },
    onResync: data => {
      list.add({ kind: 'resync', type: RESYNC, id: data.lastEventId, payload: data, at: new Date() })
      lastIdOutput.textContent = data.lastEventId
    },
    onClosing: () => list.add({ kind: 'closing', type: `${CLOSING}: the token expires; reconnecting with the token again`, at: new Date() }),
    onAuthError: status => askForToken(`the stream was refused (${status}): enter a token with events:all`),
    onError: error => { subscribeProblem.textContent = `stream: ${(error as Error).message}` }
  })
  client = current
  current.on('*', (data, meta) => {
    list.add({ kind: 'event', type: meta.type, id: meta.id, payload: data, at: new Date() })
    lastIdOutput.textContent = meta.id
  })
  showState(current.state)
}

function askForToken (message: string): void {
  tokenProblem.textContent = message
  tokenInput.setAttribute('aria-invalid', 'true')
  tokenInput.focus()
}

/** What the service says `candidate` allows; undefined, with the reason shown, when it refuses it. */
async function accessOf (candidate: string | undefined): Promise<Access | undefined> {
  try {
    const response = await fetch('/console/access', { headers: authorization(candidate) })
    const body = await response.json() as Access & { message: string }
    if (response.ok) return body
    askForToken(`${response.status}: ${body.message}`)
  } catch (error) {
    askForToken(`the service did not answer: ${(error as Error).message}`)
  }
  return undefined
}

/** Opens what the access allows: the figures, the subscription of the URL, the publish panel. */
function apply (access: Access): void {
  tokenHint.textContent = access.tokenRequired ? '(required: a JWT with events:all)' : '(optional: PUBLISH_TOKEN, for publishing)'
  publishPanel.hidden = !access.publish
  publishNote.hidden = access.publish
  publishNote.textContent = 'Publishing is not open to this page: enter PUBLISH_TOKEN, or a token with events:publish.'
  if (access.publish && !publishSetUp) {
    setUpPublishPanel(() => token)
    publishSetUp = true
  }
  subscribeButton.disabled = !access.subscribe
  stopButton.disabled = !access.subscribe
  if (!access.subscribe) return askForToken('Enter a token with events:all: the console opens nothing without one.')
  tokenProblem.textContent = ''
  tokenInput.removeAttribute('aria-invalid')
  if (!figuresStarted) startFigures(byId('figures'), message => { subscribeProblem.textContent = message ?? '' })
  figuresStarted = true
  const subscription = subscriptionOf(location.search)
  if (!isEmpty(subscription)) subscribe(subscription)
}

tokenForm.addEventListener('submit', event => {
  event.preventDefault()
  const candidate = tokenInput.value.trim() || undefined
  void accessOf(candidate).then(access => {
    if (access === undefined) return
    token = candidate
    apply(access)
  })
})

subscribeForm.addEventListener('submit', event => {
  event.preventDefault()
  const subscription = { streams: listOf(streamsInput.value), users: listOf(usersInput.value), all: allInput.checked }
  if (isEmpty(subscription)) {
    subscribeProblem.textContent = 'Choose streams, users or all events.'
    return
  }
  subscribeProblem.textContent = ''
  history.replaceState(null, '', location.pathname + searchOf(subscription))
  subscribe(subscription)
})

stopButton.addEventListener('click', () => {
  history.replaceState(null, '', location.pathname)
  client?.close()
  client = undefined
  showState('closed')
})

pauseButton.addEventListener('click', () => {
  const paused = pauseButton.getAttribute('aria-pressed') !== 'true'
  pauseButton.setAttribute('aria-pressed', String(paused))
  pauseButton.textContent = paused ? 'Resume' : 'Pause'
  list.setPaused(paused)
})
byId<HTMLInputElement>('filter').addEventListener('input', event => list.setFilter((event.target as HTMLInputElement).value))

const fromUrl = subscriptionOf(location.search)
streamsInput.value = fromUrl.streams.join(', ')
usersInput.value = fromUrl.users.join(', ')
allInput.checked = fromUrl.all
void accessOf(undefined).then(access => { if (access !== undefined) apply(access) })
