// The list of what the stream brought, newest first and bounded; paused, it holds new rows back
// (still bounded) and shows them on resume; the filter hides the rows that do not contain its text.
import { element } from './dom.js'

/** The most rows kept: older ones are dropped. */
const MAX_ROWS = 500

/** An event, a control event (`events.resync`, `events.closing`), or a note of the page's own (reconnected). */
export type RowKind = 'event' | 'resync' | 'closing' | 'notice'
export interface Row { kind: RowKind, type: string, id?: string, payload?: unknown, at: Date }

/** An event id is `<ms>-<seq>`: the time it was published. A resync may carry none (''). */
const timeOfId = (id: string): Date | undefined => {
  const ms = /^(\d{1,15})-\d+$/.exec(id)?.[1]
  return ms === undefined ? undefined : new Date(Number(ms))
}

export class EventList {
  #held: HTMLLIElement[] = []
  #paused = false
  #filter = ''

  constructor (private readonly list: HTMLOListElement, private readonly heldCount: HTMLOutputElement) {}

  add (row: Row): void {
    const item = this.#render(row)
    if (this.#paused) {
      this.#held.unshift(item)
      this.#held.length = Math.min(this.#held.length, MAX_ROWS)
      this.heldCount.textContent = `${this.#held.length} held`
      return
    }
    this.list.prepend(item)
    this.#trim()
  }

  /** Paused: new rows wait. Resumed: they go on top, newest first. */
  setPaused (paused: boolean): void {
    this.#paused = paused
    if (paused) return
    this.list.prepend(...this.#held)
    this.#held = []
    this.heldCount.textContent = ''
    this.#trim()
  }

  setFilter (text: string): void {
    this.#filter = text.trim().toLowerCase()
    for (const item of this.list.children) this.#applyFilter(item as HTMLLIElement)
  }

  #trim (): void {
    while (this.list.children.length > MAX_ROWS) this.list.lastElementChild!.remove()
  }

  #applyFilter (item: HTMLLIElement): void {
    item.hidden = this.#filter !== '' && !item.textContent!.toLowerCase().includes(this.#filter)
  }

  #render (row: Row): HTMLLIElement {
    const item = element('li', `entry ${row.kind}`)
    if (row.id !== undefined) item.dataset.id = row.id
    item.dataset.kind = row.kind
    const at = timeOfId(row.id ?? '') ?? row.at
    const time = element('time', 'time', at.toISOString().slice(11, 23))
    time.dateTime = at.toISOString()
    const head = element('p', 'head')
    head.append(time, element('span', 'type', row.type), element('code', 'id', row.id ?? ''))
    item.append(head)
    if (row.payload !== undefined) item.append(element('pre', 'payload', JSON.stringify(row.payload, null, 2)))
    this.#applyFilter(item)
    return item
  }
}
