/** Benchmark results as a markdown report and an SVG bar chart. */
import { HOSTILE_BROKERS, VARIANTS, type HostileBrokerName, type HostileCounts, type HostileOutcome, type HostileRow, type HostileSkipped, type Results, type Ratio, type Spread, type Variant } from './results.js'
import { median, spread } from './stats.js'
import { SENDER_PROPERTY } from '../src/plugin/headers.js'

const num = (n: number): string => n.toLocaleString('en-US')
const check = (ok: boolean): string => ok ? 'yes' : '**no**'
const cpu = (seconds: number | undefined): string => seconds?.toFixed(2) ?? '?'

// One broker's luck moves a block's ratio by a few percent, so the median
// of a handful of blocks cannot settle a 3% question. With fewer than five
// blocks a verdict is given only where every block clears the goal, or
// every block misses it, by more than `noise`: how far the A/A control's
// blocks strayed from 1 in the same comparison.
const SETTLING_BLOCKS = 5
export function verdict (x: Spread, meets: (ratio: number) => boolean, noise = 0): string {
  if (x.blocks.length >= SETTLING_BLOCKS) return check(meets(x.median))
  if (x.blocks.every((v) => meets(v - noise) && meets(v + noise))) return 'yes'
  if (x.blocks.every((v) => !meets(v - noise) && !meets(v + noise))) return '**no**'
  return `not settled by ${x.blocks.length} blocks (run \`--long\`)`
}

const range = (x: Spread): string => `${x.median.toFixed(3)}× (${x.min.toFixed(3)}–${x.max.toFixed(3)})`
const stack = (r: Results): string => `MQTT ${r.protocol.mqtt} clients on Aedes ${r.protocol.aedes}`

export function markdown (r: Results): string {
  const out: string[] = []
  out.push(`Command: \`${r.command}\` · ${r.date.slice(0, 10)} · ${r.machine.cpus} × ${r.machine.model} · Node ${r.machine.node} · ${stack(r)}`, '')
  if (r.protocol.mqtt === '5') {
    // what sets these ratios apart from the 3.1.1 ones, and is meant to be in them
    out.push(`**MQTT 5 on Aedes ${r.protocol.aedes}**: every broker under test runs on Aedes 2 and every client speaks MQTT 5, so the ratios are the plugin's cost and savings there. ` +
      `A P2P target is handed each message with the \`${SENDER_PROPERTY}\` user property the broker stamps on it, which P2P pays for here and not in MQTT 3.1.1.`, '')
  }
  const t = r.traffic
  const where = r.placement === null
    ? 'on cores the scheduler picked (no taskset here)'
    : `pinned to core ${r.placement.brokers}, with the load generator on core ${r.placement.driver}`
  out.push(`${t.payloadBytes}-byte payloads, a window of ${t.window} messages in flight per pair. ` +
    `Per QoS and pair count, ${t.blocks} blocks of fresh broker processes, one per variant, ${where}: ` +
    `${t.warmupMs / 1000} s warm-up, ${t.rounds} round${t.rounds === 1 ? '' : 's'} of ${t.durationMs / 1000} s with all of them side by side, then each alone for ${t.aloneMs / 1000} s. ` +
    'A ratio compares messages per broker CPU-second side by side, block by block, against plain pub/sub (the mean of the block\'s two plain brokers): ' +
    'the median of the blocks, and (lowest–highest).' +
    (r.mode === 'quick' ? ' A quick look: `--long` has the figures to quote.' : ''), '')

  out.push('**Targets**', '', '| target | measured | goal | met |', '|---|---|---|---|')
  const noise = (x: Ratio): number => Math.max(...x.controlVsPlain.blocks.map((b) => Math.abs(b - 1)))
  for (const x of r.ratios) {
    out.push(`| P2P vs plain pub/sub per broker CPU-second, QoS ${x.qos}, ${x.pairs} pairs | ${range(x.p2pVsPlain)} | ≥ 1.00× | ${verdict(x.p2pVsPlain, (v) => v >= 1, noise(x))} |`)
  }
  for (const x of r.ratios) {
    out.push(`| pub/sub with plugin vs without, QoS ${x.qos}, ${x.pairs} pairs | ${range(x.pluginVsPlain)} | ≥ 0.97× | ${verdict(x.pluginVsPlain, (v) => v >= 0.97, noise(x))} |`)
  }
  for (const x of r.ratios) {
    out.push(`| A/A control: one plain broker vs the other, QoS ${x.qos}, ${x.pairs} pairs | ${range(x.controlVsPlain)} | none: the method's own noise | — |`)
  }
  for (const x of r.idle) {
    const ratios = `${range(x.messagesPerSecondRatio)}; ${range(x.perCpuSecondRatio)}`
    // a block meets the goal when both of its ratios do
    const worst = x.messagesPerSecondRatio.blocks.map((m, b) => Math.min(m, x.perCpuSecondRatio.blocks[b] as number))
    const both = spread(worst)
    if (x.route === 'p2p') {
      out.push(`| P2P with ${num(x.idleClients)} idle clients vs none, QoS ${x.qos} (msg/s; per broker CPU-second) | ${ratios} | ≥ 0.90× | ${verdict(both, (v) => v >= 0.9)} |`)
    } else {
      out.push(`| reference: plain Aedes pub/sub with ${num(x.idleClients)} idle clients vs none, QoS ${x.qos} (msg/s; per broker CPU-second) | ${ratios} | none: the host's own cost | — |`)
    }
  }
  const cluster = r.cluster ?? []
  // An idle node's own housekeeping (timers, a collection) lands in some
  // runs and not others: the median run is the verdict, the worst is shown
  // beside it.
  const third = cluster.flatMap((c) => [c.with.thirdNodeFraction, c.without.thirdNodeFraction])
  if (third.length > 0) {
    const typical = median(third)
    out.push(`| cluster: node 3's CPU ÷ receiving node's, median run (worst) (targeted routing) | ${typical.toFixed(3)} (${Math.max(...third).toFixed(3)}) | ≤ 0.05 | ${check(typical <= 0.05)} |`)
  }
  for (const c of cluster) {
    out.push(`| cluster: Redis CPU per message, ${num(c.idleClients)} idle clients vs none, QoS ${c.qos} | ${c.redisPerMessageRatio.toFixed(2)}× | ≤ 1.10× | ${check(c.redisPerMessageRatio <= 1.1)} |`)
  }
  const m = r.memory
  if (m !== null) {
    out.push(`| memory per connected client (RSS), plugin vs plain (${num(m.pluginBytesPerClient)} B vs ${num(m.plainBytesPerClient)} B) | ${range(m.ratio)} | ≤ 1.10× | ${verdict(m.ratio, (v) => v <= 1.1)} |`)
    out.push(`| JavaScript heap per connected client, plugin vs plain (${num(m.pluginHeapBytesPerClient)} B vs ${num(m.plainHeapBytesPerClient)} B) | ${range(m.heapRatio)} | none: steadier than RSS, without native memory | — |`)
  }
  if (r.hostile !== null) out.push(...hostileTargets(r.hostile.rows))
  out.push('')

  if (r.throughput.length > 0) {
    out.push('**Throughput** (messages per broker CPU-second side by side, pooled over the blocks; then each broker alone: messages per second received, per broker CPU-second, latency)', '',
      '| QoS | pairs | traffic | side by side: msg per broker CPU-s | alone: msg/s | alone: msg per broker CPU-s | p50 ms | p99 ms | lost |', '|---|---|---|---|---|---|---|---|---|')
    for (const c of r.throughput) {
      const alone = c.aloneAll
      const lost = c.togetherAll.lost + (alone?.lost ?? 0)
      const solo = alone === null ? '— | — | — | —' : `${num(alone.messagesPerSecond)} | ${num(alone.perCpuSecond)} | ${alone.latencyMs.p50} | ${alone.latencyMs.p99}`
      out.push(`| ${c.qos} | ${c.pairs} | ${VARIANTS[c.variant]} | ${num(c.togetherAll.perCpuSecond)} | ${solo} | ${lost} |`)
    }
    out.push('')
  }

  if (r.idle.length > 0) {
    out.push(`**Idle clients** (per block, four fresh brokers side by side: P2P through the plugin and plain Aedes pub/sub, each with the idle clients and without; pooled over ${t.idleBlocks} block${t.idleBlocks === 1 ? '' : 's'})`, '',
      '| QoS | pairs | traffic | idle clients | msg/s | msg per broker CPU-s | p50 ms | p99 ms | lost |', '|---|---|---|---|---|---|---|---|---|')
    for (const x of r.idle) {
      const traffic = x.route === 'p2p' ? VARIANTS.p2p : VARIANTS.plain
      for (const [count, run] of [[x.idleClients, x.with], [0, x.without]] as const) {
        out.push(`| ${x.qos} | ${x.pairs} | ${traffic} | ${num(count)} | ${num(run.messagesPerSecond)} | ${num(run.perCpuSecond)} | ${run.latencyMs.p50} | ${run.latencyMs.p99} | ${run.lost} |`)
      }
    }
    out.push('')
  }

  if (r.cluster !== null) {
    out.push(`**Cluster** (two clusters side by side, each of 3 nodes and its own Redis, one holding idle clients spread over its nodes; senders on node 1, receivers on node 2; ${t.rounds} round${t.rounds === 1 ? '' : 's'} of ${t.steadyMs / 1000} s)`, '',
      '| QoS | idle clients | msg/s | node 1 / 2 / 3 CPU s | node 3 ÷ node 2 | Redis µs CPU per msg | p50 ms | p99 ms | lost |', '|---|---|---|---|---|---|---|---|---|')
    for (const c of r.cluster) {
      for (const [count, side] of [[c.idleClients, c.with], [0, c.without]] as const) {
        const [n1, n2, n3] = side.cpuSeconds
        out.push(`| ${c.qos} | ${num(count)} | ${num(side.messagesPerSecond)} | ${cpu(n1)} / ${cpu(n2)} / ${cpu(n3)} | ${side.thirdNodeFraction.toFixed(3)} | ${side.redisCpuMicrosecondsPerMessage} | ${side.latencyMs.p50} | ${side.latencyMs.p99} | ${side.lost} |`)
      }
    }
    out.push('')
  }

  if (r.topicParsing.length > 0) {
    out.push('**Topic parsing** (ns per topic, one core)', '', '| mode | topic | ns |', '|---|---|---|')
    for (const t of r.topicParsing) out.push(`| ${t.mode} | ${t.kind}: \`${t.topic}\` | ${t.nsPerTopic} |`)
    out.push('')
  }

  if (r.hostile !== null) out.push(...hostileTable(r.hostile.rows, r.hostile.bound))
  return out.join('\n') + '\n'
}

const MB = 1024 * 1024
/** Bytes as megabytes (MiB): a decimal below 10. */
export function megabytes (bytes: number): string {
  const mb = bytes / MB
  return `${Math.abs(mb) < 10 ? mb.toFixed(1) : num(Math.round(mb))} MB`
}
const growth = (bytes: number): string => `${bytes < 0 ? '−' : '+'}${megabytes(Math.abs(bytes))}`

/**
 * The line that says why a broker died, from how it ended (exit code or
 * signal, then the end of its stderr): the error Node printed, else the
 * first line.
 */
export function deathCause (ended: string): string {
  const colon = ended.indexOf(': ')
  const how = colon === -1 ? ended : ended.slice(0, colon)
  const stderr = colon === -1 ? '' : ended.slice(colon + 2)
  const error = /^(?:[A-Z]\w*Error\b|FATAL ERROR:).*$/m.exec(stderr)?.[0] ?? stderr.split('\n')[0]?.trim() ?? ''
  return error === '' ? how : `${error} (${how})`
}

/** What the CLI broker's limits counted, in words. */
export function countedText (counts: HostileCounts | null): string {
  if (counts === null) return '—'
  const parts = [
    ...Object.entries(counts.limits).map(([limit, n]) => `${limit} ×${num(n)}`),
    ...Object.entries(counts.dropped).map(([reason, n]) => `dropped ${reason} ×${num(n)}`)
  ]
  return parts.length === 0 ? 'nothing' : parts.join(', ')
}

const skipped = (x: HostileOutcome | HostileSkipped): x is HostileSkipped => 'skipped' in x
const sentText = (x: HostileOutcome): string => `${megabytes(x.sent.bytes)}, ${num(x.sent.messages)} msg in ${x.sent.seconds.toFixed(1)} s`

function growthText (x: HostileOutcome): string {
  const grew = `${growth(x.rss.peak - x.rss.before)} (peak ${megabytes(x.rss.peak)})`
  const cut = x.error === undefined ? '' : ` (attack cut short: ${x.error})`
  return x.died === null ? grew + cut : `${grew}, then **died**: ${deathCause(x.died)}`
}

/** One line per attack, for the bench's progress. */
export function hostileSummary (row: HostileRow): string {
  const one = (x: HostileOutcome | HostileSkipped): string => skipped(x) ? 'does not apply' : `${growthText(x)} for ${sentText(x)}`
  return (Object.keys(HOSTILE_BROKERS) as HostileBrokerName[]).map((b) => `${HOSTILE_BROKERS[b]} ${one(row[b])}`).join('; ')
}

function hostileTargets (rows: HostileRow[]): string[] {
  const out: string[] = []
  const attacked = rows.flatMap((row) => skipped(row.cli) ? [] : [{ attack: row.attack, x: row.cli }])
  const died = attacked.filter(({ x }) => x.died !== null).map(({ attack }) => `\`${attack}\``)
  out.push(`| hostile clients: ${HOSTILE_BROKERS.cli} lives through every attack | ${died.length === 0 ? `${attacked.length} of ${attacked.length}` : `died in ${died.join(', ')}`} | all | ${check(died.length === 0)} |`)
  const away = attacked.find(({ attack }) => attack === 'redis-away')?.x.measured
  if (away?.answerMs !== undefined) {
    const answered = away.unanswered === 0
    out.push(`| hostile clients: a client connecting while Redis is away is answered (the slower node) | ${answered ? `${num(away.answerMs)} ms` : 'no answer'} | ≤ 2 s | ${check(answered && away.answerMs <= 2000)} |`)
  }
  return out
}

/** What else each broker's attack measured; named by broker where both have something to say. */
function notesText (row: HostileRow): string {
  const of = (b: HostileBrokerName): string[] => { const x = row[b]; return skipped(x) ? [] : x.notes }
  const named = of('plain').length > 0
  const all = (Object.keys(HOSTILE_BROKERS) as HostileBrokerName[]).flatMap((b) => of(b).map((note) => named ? `${HOSTILE_BROKERS[b]}: ${note}` : note))
  return all.length === 0 ? '—' : all.join('; ')
}

export function hostileTable (rows: HostileRow[], bound: { bytes: number, ms: number }): string[] {
  const out = [
    `**Hostile clients: broker RSS growth** (a fresh broker per attack, every limit at its default; each attack stops at ${megabytes(bound.bytes)} sent or ${bound.ms / 1000} s, whichever comes first; ` +
      'RSS read from /proc every 100 ms from the start of the attack to a second after it: growth is the peak less the start)',
    '',
    `| attack | ${HOSTILE_BROKERS.plain}: sent | ${HOSTILE_BROKERS.plain}: RSS growth | ${HOSTILE_BROKERS.cli}: sent | ${HOSTILE_BROKERS.cli}: RSS growth | counted by ${HOSTILE_BROKERS.cli} | also measured |`,
    '|---|---|---|---|---|---|---|'
  ]
  for (const row of rows) {
    const { plain, cli } = row
    const plainCells = skipped(plain) ? `does not apply | ${plain.skipped}` : `${sentText(plain)} | ${growthText(plain)}`
    const cliCells = skipped(cli) ? `does not apply | ${cli.skipped} | —` : `${sentText(cli)} | ${growthText(cli)} | ${countedText(cli.counted)}`
    out.push(`| \`${row.attack}\`: ${row.what} | ${plainCells} | ${cliCells} | ${notesText(row)} |`)
  }
  out.push('')
  return out
}

const COLORS: Record<Exclude<Variant, 'plain'>, string> = { control: '#8c8c8c', plugin: '#4e79a7', p2p: '#f28e2b' }
const LEGEND: Record<keyof typeof COLORS, string> = {
  control: 'A/A control: one plain broker vs the other',
  plugin: VARIANTS.plugin,
  p2p: VARIANTS.p2p
}

/**
 * Each variant against plain pub/sub per broker CPU-second: a dot at the
 * median of the blocks, a whisker from the lowest to the highest.
 */
export function chart (r: Results): string {
  const variants = Object.keys(COLORS) as Array<keyof typeof COLORS>
  const spread = (x: Ratio, variant: keyof typeof COLORS): Spread =>
    variant === 'p2p' ? x.p2pVsPlain : variant === 'plugin' ? x.pluginVsPlain : x.controlVsPlain
  const all = r.ratios.flatMap((x) => variants.flatMap((v) => [spread(x, v).min, spread(x, v).max]))
  const low = Math.min(0.9, Math.floor(Math.min(...all) * 20) / 20)
  const high = Math.max(1.1, Math.ceil(Math.max(...all) * 20) / 20)
  const width = 640
  const height = 340
  const left = 60
  const top = 40
  const bottom = 260
  const groupWidth = (width - left - 20) / r.ratios.length
  const step = groupWidth / (variants.length + 1)
  const y = (v: number): number => bottom - ((v - low) / (high - low)) * (bottom - top)
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  parts.push('<rect width="100%" height="100%" fill="#fff"/>')
  parts.push(`<text x="${left}" y="20" font-size="14">Messages per broker CPU-second, against plain Aedes pub/sub (${r.mode} run)</text>`)
  for (let v = low; v <= high + 1e-9; v += 0.05) {
    const at = y(v)
    parts.push(`<line x1="${left}" x2="${width - 20}" y1="${at}" y2="${at}" stroke="${Math.abs(v - 1) < 1e-9 ? '#444' : '#e4e4e4'}"/>`)
    parts.push(`<text x="${left - 6}" y="${at + 4}" text-anchor="end">${v.toFixed(2)}×</text>`)
  }
  // the plugin's budget on ordinary traffic
  parts.push(`<line x1="${left}" x2="${width - 20}" y1="${y(0.97)}" y2="${y(0.97)}" stroke="#4e79a7" stroke-dasharray="4 3"/>`)
  r.ratios.forEach((x, g) => {
    const x0 = left + g * groupWidth
    variants.forEach((variant, v) => {
      const s = spread(x, variant)
      const cx = x0 + step * (v + 1)
      parts.push(`<line x1="${cx}" x2="${cx}" y1="${y(s.min)}" y2="${y(s.max)}" stroke="${COLORS[variant]}" stroke-width="2"/>`)
      parts.push(`<circle cx="${cx}" cy="${y(s.median)}" r="5" fill="${COLORS[variant]}"><title>${LEGEND[variant]}: ${range(s)}</title></circle>`)
    })
    parts.push(`<text x="${x0 + groupWidth / 2}" y="${bottom + 18}" text-anchor="middle">QoS ${x.qos}, ${x.pairs} pairs</text>`)
  })
  variants.forEach((variant, v) => {
    const row = bottom + 40 + v * 16
    parts.push(`<circle cx="${left + 6}" cy="${row - 4}" r="5" fill="${COLORS[variant]}"/>`)
    parts.push(`<text x="${left + 18}" y="${row}">${LEGEND[variant]}</text>`)
  })
  parts.push(`<line x1="${width - 230}" x2="${width - 200}" y1="${bottom + 36}" y2="${bottom + 36}" stroke="#4e79a7" stroke-dasharray="4 3"/>`)
  parts.push(`<text x="${width - 194}" y="${bottom + 40}">0.97×: the plugin's budget</text>`)
  // an MQTT 5 chart must not pass for the 3.1.1 one
  if (r.protocol.mqtt === '5') parts.push(`<text x="${width - 230}" y="${bottom + 72}" font-weight="bold">MQTT 5, Aedes ${r.protocol.aedes}</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
