/** Words of PromQL that are not metric names: operators and grouping keywords. */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan'])

/**
 * The metric names a PromQL expression reads: what is left once strings, label matchers, ranges,
 * grouping clauses, numbers and function names are taken out. Enough for the expressions of our
 * rules and dashboard, not a parser.
 */
export function metricNames (expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
  const names = new Set<string>()
  for (const match of bare.matchAll(/(?<![\w.$])[a-zA-Z_:][\w:]*/g)) {
    const followedBy = bare.slice(match.index + match[0].length)
    if (/^\s*\(/.test(followedBy) || KEYWORDS.has(match[0].toLowerCase())) continue
    names.add(match[0])
  }
  return [...names]
}

/** The sample names of a scrape in the text format (histograms as their _bucket, _sum and _count). */
export function sampleNames (text: string): Set<string> {
  const names = new Set<string>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    names.add(/^[a-zA-Z_:][\w:]*/.exec(line)![0])
  }
  return names
}
