// The publish panel: an event type, its data as JSON (pre-filled with the type's example from the
// protocol module), and what POST /events/publish answered: the 202's id, or the 400's problems
// next to the field each is about.
import { EVENT_TYPES, EXAMPLE_DATA, PUBLISH_PATH, type EventType } from '../services/protocol.js'
import { authorization, byId, element, showProblems } from './dom.js'

interface Problem { path: string, message: string }
interface Answer { id?: string, error?: string, message?: string, invalid?: Array<{ problems: Problem[] }> }

const example = (type: EventType): string => JSON.stringify(EXAMPLE_DATA[type], null, 2)

export function setUpPublishPanel (token: () => string | undefined): void {
  const form = byId<HTMLFormElement>('publish-form')
  const type = byId<HTMLSelectElement>('event-type')
  const data = byId<HTMLTextAreaElement>('event-data')
  const typeProblems = byId('event-type-problems')
  const dataProblems = byId('event-data-problems')
  const result = byId<HTMLOutputElement>('publish-result')

  type.append(...EVENT_TYPES.map(name => {
    const option = element('option', '', name)
    option.value = name
    return option
  }))
  data.value = example(type.value as EventType)
  type.addEventListener('change', () => {
    data.value = example(type.value as EventType)
    show([], '')
  })

  /** Problems at /event go next to the type, the rest (/data/…) next to the data. */
  function show (problems: Problem[], message: string): void {
    const line = (problem: Problem) => `${problem.path} ${problem.message}`
    showProblems(typeProblems, type, problems.filter(problem => problem.path === '/event').map(line))
    showProblems(dataProblems, data, problems.filter(problem => problem.path !== '/event').map(line))
    result.textContent = message
  }

  form.addEventListener('submit', event => {
    event.preventDefault()
    let parsed: unknown
    try {
      parsed = JSON.parse(data.value)
    } catch (error) {
      return show([{ path: '/data', message: `is not JSON: ${(error as Error).message}` }], '')
    }
    void publish({ event: type.value, data: parsed })
  })

  async function publish (envelope: unknown): Promise<void> {
    result.textContent = 'publishing…'
    try {
      const response = await fetch(PUBLISH_PATH, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...authorization(token()) },
        body: JSON.stringify(envelope)
      })
      const answer = await response.json() as Answer
      if (response.status === 202) return show([], `202: published ${answer.id}`)
      show(answer.invalid?.[0]?.problems ?? [], `${response.status}: ${answer.message}`)
    } catch (error) {
      show([], `not published: ${(error as Error).message}`)
    }
  }
}
