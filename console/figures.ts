// Live figures from /events/stats, read every two seconds: open streams, events in and out per
// second (from the counters' change between two reads) and the mean delivery latency over the
// interval, each drawn as a small SVG sparkline of the last five minutes.
import { STATS_PATH } from '../services/protocol.js'
import { element } from './dom.js'

const INTERVAL_MS = 2000
const WINDOW_MS = 5 * 60_000

/** What the figures read of /events/stats (routes/events/stats.ts StatsBody). */
interface Stats {
  connections: { active: number }
  events: { published: number, delivered: number, deliveryLatency: { count: number, sumSeconds: number } }
}
interface Reading { at: number, stats: Stats }
type Point = { at: number, value: number | undefined }

interface Figure {
  name: string
  unit: string
  /** This figure's value from two successive reads, or undefined when the interval has none. */
  value (now: Reading, before: Reading): number | undefined
}

/** A counter's change a second; none where it went down (another instance, or the same one restarted). */
function perSecond (now: Reading, before: Reading, count: (stats: Stats) => number): number | undefined {
  const change = count(now.stats) - count(before.stats)
  return change < 0 ? undefined : change / ((now.at - before.at) / 1000)
}

const FIGURES: Figure[] = [
  { name: 'Open streams', unit: '', value: now => now.stats.connections.active },
  { name: 'Events in', unit: '/s', value: (now, before) => perSecond(now, before, stats => stats.events.published) },
  { name: 'Events out', unit: '/s', value: (now, before) => perSecond(now, before, stats => stats.events.delivered) },
  {
    name: 'Delivery latency',
    unit: ' ms',
    value: (now, before) => {
      const count = now.stats.events.deliveryLatency.count - before.stats.events.deliveryLatency.count
      const seconds = now.stats.events.deliveryLatency.sumSeconds - before.stats.events.deliveryLatency.sumSeconds
      return count > 0 ? seconds / count * 1000 : undefined
    }
  }
]

const SVG = 'http://www.w3.org/2000/svg'
const WIDTH = 150
const HEIGHT = 32

const formatted = (value: number | undefined, unit: string): string =>
  value === undefined ? '–' : `${Number.isInteger(value) ? value : value.toFixed(value < 10 ? 2 : 1)}${unit}`

/** One figure: its name, its value now, and the line of its last five minutes. */
class Sparkline {
  readonly points: Point[] = []
  readonly #value: HTMLElement
  readonly #svg: SVGSVGElement
  readonly #line: SVGPolylineElement

  constructor (readonly figure: Figure, parent: HTMLElement) {
    const box = element('figure', 'sparkline')
    const caption = element('figcaption', 'caption', figure.name)
    this.#value = element('span', 'value', '–')
    caption.append(' ', this.#value)
    this.#svg = document.createElementNS(SVG, 'svg')
    this.#svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`)
    this.#svg.setAttribute('preserveAspectRatio', 'none')
    this.#svg.setAttribute('role', 'img')
    this.#line = document.createElementNS(SVG, 'polyline')
    this.#line.setAttribute('class', 'line')
    this.#svg.append(this.#line)
    box.append(caption, this.#svg)
    parent.append(box)
    this.#label(undefined)
  }

  add (point: Point): void {
    this.points.push(point)
    while (this.points[0]!.at < point.at - WINDOW_MS) this.points.shift()
    this.#value.textContent = formatted(point.value, this.figure.unit)
    this.#label(point.value)
    this.#draw(point.at)
  }

  #label (value: number | undefined): void {
    this.#svg.setAttribute('aria-label', `${this.figure.name} over the last 5 minutes: now ${formatted(value, this.figure.unit)}`)
  }

  /**
   * Time across, ending now and starting five minutes ago (or at the first read, until there are five
   * minutes of them); value up from 0 to the highest (at least 1).
   */
  #draw (now: number): void {
    const known = this.points.filter(point => point.value !== undefined) as Array<{ at: number, value: number }>
    const top = Math.max(1, ...known.map(point => point.value))
    const span = Math.max(1, now - this.points[0]!.at)
    this.#line.setAttribute('points', known.map(point => {
      const x = WIDTH - (now - point.at) / span * WIDTH
      const y = HEIGHT - 1 - point.value / top * (HEIGHT - 2)
      return `${x.toFixed(1)},${y.toFixed(1)}`
    }).join(' '))
  }
}

/** Reads the stats every two seconds into the figures; a failed read is shown, and the next one tried. */
export function startFigures (parent: HTMLElement, onProblem: (message: string | undefined) => void): void {
  const lines = FIGURES.map(figure => new Sparkline(figure, parent))
  let before: Reading | undefined

  async function read (): Promise<void> {
    try {
      const response = await fetch(STATS_PATH)
      if (!response.ok) throw new Error(`${STATS_PATH} answered ${response.status}`)
      const now: Reading = { at: Date.now(), stats: await response.json() as Stats }
      if (before !== undefined) for (const line of lines) line.add({ at: now.at, value: line.figure.value(now, before) })
      before = now
      onProblem(undefined)
    } catch (error) {
      // The interval across a failure would mix two servers' counters (a restart starts them at 0).
      before = undefined
      onProblem(`figures: ${(error as Error).message}`)
    }
    setTimeout(() => void read(), INTERVAL_MS)
  }
  void read()
}
