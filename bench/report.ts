/** Benchmark results as a markdown report and an SVG bar chart. */
import { VARIANTS, type Results, type Variant } from './results.js'

const num = (n: number): string => n.toLocaleString('en-US')
const check = (ok: boolean): string => ok ? 'yes' : '**no**'

export function markdown (r: Results): string {
  const out: string[] = []
  out.push(`Command: \`${r.command}\` · ${r.date.slice(0, 10)} · ${r.machine.cpus} × ${r.machine.model} · Node ${r.machine.node}`)
  const t = r.traffic
  out.push(`${t.payloadBytes}-byte payloads, a window of ${t.window} messages in flight per pair, ${t.warmupMs / 1000} s warm-up. ` +
    `Side by side: ${t.rounds} rounds of ${t.durationMs / 1000} s, variants taking turns, rounds summed` +
    (r.mode === 'quick' ? ' (a quick look: on a busy 2-core machine one second of traffic varies by ±10%; `--long` gives the figures to quote).' : '.') +
    ` Idle clients and cluster: runs of ${t.steadyMs / 1000} s.`, '')

  out.push('**Targets**', '', '| target | measured | goal | met |', '|---|---|---|---|')
  for (const x of r.ratios) {
    out.push(`| P2P vs plain pub/sub per broker CPU-second, QoS ${x.qos}, ${x.pairs} pairs | ${x.p2pVsPlain.toFixed(2)}× | ≥ 1.00× | ${check(x.p2pVsPlain >= 1)} |`)
  }
  for (const x of r.ratios) {
    out.push(`| pub/sub with plugin vs without, QoS ${x.qos}, ${x.pairs} pairs | ${x.pluginVsPlain.toFixed(2)}× | ≥ 0.97× | ${check(x.pluginVsPlain >= 0.97)} |`)
  }
  for (const x of r.idle) {
    out.push(`| P2P with ${num(x.idleClients)} idle clients vs none, QoS ${x.qos} (msg/s; per CPU-second) | ${x.messagesPerSecondRatio.toFixed(2)}×; ${x.perCpuSecondRatio.toFixed(2)}× | ≥ 0.90× | ${check(Math.min(x.messagesPerSecondRatio, x.perCpuSecondRatio) >= 0.9)} |`)
  }
  const m = r.memory
  const cluster = r.cluster ?? []
  const third = Math.max(...cluster.map((c) => c.thirdNodeFraction))
  if (cluster.length > 0) out.push(`| cluster: node 3's CPU ÷ receiving node's, worst run (targeted routing) | ${third.toFixed(3)} | ≤ 0.05 | ${check(third <= 0.05)} |`)
  for (const qos of [0, 1]) {
    const runs = cluster.filter((c) => c.qos === qos).sort((a, b) => a.idleClients - b.idleClients)
    const first = runs[0]
    const last = runs[runs.length - 1]
    if (first === undefined || last === undefined || first === last) continue
    const growth = last.redisCpuMicrosecondsPerMessage / first.redisCpuMicrosecondsPerMessage
    out.push(`| cluster: Redis CPU per message, ${num(last.idleClients)} vs ${num(first.idleClients)} idle clients, QoS ${qos} | ${growth.toFixed(2)}× | ≤ 1.10× | ${check(growth <= 1.1)} |`)
  }
  if (m !== null) out.push(`| memory per connected client, plugin vs plain (${num(m.pluginBytesPerClient)} B vs ${num(m.plainBytesPerClient)} B) | ${m.ratio.toFixed(2)}× | ≤ 1.10× | ${check(m.ratio <= 1.1)} |`)
  out.push('')

  if (r.throughput.length > 0) {
    out.push('**Throughput** (one broker; messages per second received, and per second of broker CPU)', '',
      '| QoS | pairs | traffic | msg/s | msg per broker CPU-s | p50 ms | p99 ms | lost |', '|---|---|---|---|---|---|---|---|')
    for (const c of r.throughput) {
      const x = c.all
      out.push(`| ${c.qos} | ${c.pairs} | ${VARIANTS[c.variant]} | ${num(x.messagesPerSecond)} | ${num(x.perCpuSecond)} | ${x.latencyMs.p50} | ${x.latencyMs.p99} | ${x.lost} |`)
    }
    out.push('')
  }

  if (r.cluster !== null) {
    out.push('**Cluster** (3 nodes, one Redis; senders on node 1, receivers on node 2, idle clients spread over all three)', '',
      '| idle clients | QoS | msg/s | node 1 / 2 / 3 CPU s | node 3 ÷ node 2 | Redis µs CPU per msg | p50 ms | p99 ms | lost |', '|---|---|---|---|---|---|---|---|---|')
    for (const c of r.cluster) {
      const [n1, n2, n3] = c.cpuSeconds
      out.push(`| ${num(c.idleClients)} | ${c.qos} | ${num(c.messagesPerSecond)} | ${n1} / ${n2} / ${n3} | ${c.thirdNodeFraction.toFixed(3)} | ${c.redisCpuMicrosecondsPerMessage} | ${c.latencyMs.p50} | ${c.latencyMs.p99} | ${c.lost} |`)
    }
    out.push('')
  }

  if (r.topicParsing.length > 0) {
    out.push('**Topic parsing** (ns per topic, one core)', '', '| mode | topic | ns |', '|---|---|---|')
    for (const t of r.topicParsing) out.push(`| ${t.mode} | ${t.kind}: \`${t.topic}\` | ${t.nsPerTopic} |`)
  }
  return out.join('\n') + '\n'
}

const COLORS: Record<Variant, string> = { plain: '#8c8c8c', plugin: '#4e79a7', p2p: '#f28e2b' }

/** Grouped bars: messages per broker CPU-second, per QoS and pair count. */
export function chart (r: Results): string {
  const groups = [...new Set(r.throughput.map((c) => `${c.qos}/${c.pairs}`))]
  const variants = Object.keys(VARIANTS) as Variant[]
  const max = Math.max(...r.throughput.map((c) => c.all.perCpuSecond))
  const top = Math.ceil(max / 10_000) * 10_000
  const width = 640
  const height = 320
  const left = 70
  const bottom = 260
  const plotHeight = 220
  const groupWidth = (width - left - 20) / groups.length
  const barWidth = groupWidth / (variants.length + 1)
  const y = (v: number): number => bottom - (v / top) * plotHeight
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  parts.push('<rect width="100%" height="100%" fill="#fff"/>')
  parts.push(`<text x="${left}" y="20" font-size="14">Messages per broker CPU-second (${r.mode} run, higher is better)</text>`)
  for (let i = 0; i <= 4; i++) {
    const v = (top / 4) * i
    parts.push(`<line x1="${left}" x2="${width - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`)
    parts.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${num(v)}</text>`)
  }
  groups.forEach((group, g) => {
    const [qos, pairs] = group.split('/')
    const x0 = left + g * groupWidth + barWidth / 2
    variants.forEach((variant, v) => {
      const cell = r.throughput.find((c) => `${c.qos}/${c.pairs}` === group && c.variant === variant)
      if (cell === undefined) return
      const value = cell.all.perCpuSecond
      parts.push(`<rect x="${x0 + v * barWidth}" y="${y(value)}" width="${barWidth - 2}" height="${bottom - y(value)}" fill="${COLORS[variant]}"><title>${VARIANTS[variant]}: ${num(value)}</title></rect>`)
    })
    parts.push(`<text x="${x0 + (barWidth * variants.length) / 2}" y="${bottom + 18}" text-anchor="middle">QoS ${qos}, ${pairs} pairs</text>`)
  })
  variants.forEach((variant, v) => {
    const x = left + v * 190
    parts.push(`<rect x="${x}" y="${height - 30}" width="12" height="12" fill="${COLORS[variant]}"/>`)
    parts.push(`<text x="${x + 18}" y="${height - 20}">${VARIANTS[variant]}</text>`)
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
