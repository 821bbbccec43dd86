/** A version 3 source map, as esbuild writes it. */
export interface SourceMap {
  version: 3
  sources: string[]
  names: string[]
  mappings: string
  [key: string]: unknown
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** The numbers of one segment: base64 VLQ, 5 bits a digit, the sign in the lowest bit. */
function decodeSegment (segment: string): number[] {
  const numbers: number[] = []
  let value = 0
  let shift = 0
  for (const char of segment) {
    const digit = BASE64.indexOf(char)
    value += (digit & 31) << shift
    shift += 5
    if ((digit & 32) === 0) {
      numbers.push(value & 1 ? -(value >>> 1) : value >>> 1)
      value = 0
      shift = 0
    }
  }
  return numbers
}

function encodeNumber (number: number): string {
  let value = number < 0 ? (-number << 1) | 1 : number << 1
  let text = ''
  do {
    const digit = value & 31
    value >>>= 5
    text += BASE64[value > 0 ? digit | 32 : digit]
  } while (value > 0)
  return text
}

/**
 * `map` with only the sources that `keep` accepts: the code of the others is left unmapped, so that a
 * coverage report (v8-to-istanbul's) shows nothing of them rather than of a bundle's dependencies.
 */
export function keepSources (map: SourceMap, keep: (source: string) => boolean): SourceMap {
  const kept = map.sources.flatMap((source, index) => keep(source) ? [index] : [])
  // The fields are relative to the previous segment's: the source index, line and column across lines.
  const from = { source: 0, line: 0, column: 0 }
  const to = { source: 0, line: 0, column: 0 }
  const mappings = map.mappings.split(';').map(line => line.split(',').filter(segment => segment !== '').map(segment => {
    // esbuild maps every segment to a source: four numbers (five with a name, not kept).
    const [column, source, sourceLine, sourceColumn] = decodeSegment(segment) as [number, number, number, number]
    from.source += source
    from.line += sourceLine
    from.column += sourceColumn
    const index = kept.indexOf(from.source)
    // A segment of a left-out source stays, unmapped: else the previous one would stretch over its code.
    if (index === -1) return encodeNumber(column)
    const text = [column, index - to.source, from.line - to.line, from.column - to.column].map(encodeNumber).join('')
    Object.assign(to, { source: index, line: from.line, column: from.column })
    return text
  }).join(',')).join(';')
  return {
    ...map,
    sources: kept.map(index => map.sources[index]!),
    names: [],
    mappings
  }
}
