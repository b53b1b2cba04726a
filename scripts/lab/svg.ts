// A lab's layout as a picture: the VNet on top, the nodes under it, each node's pods under the
// node; a box per namespace, a small box ("chip") per interface on the box's edge, a line per
// veth pair, a bar per bridge with a line to each of its ports, and the path of one packet in
// colour, numbered hop by hop. Pure: what was read from the namespaces (scripts/lab/picture.ts)
// in, SVG text out, written here by hand (no library). Every text in it comes from the kernel or
// the lab, so every text is escaped, and a character XML cannot hold is shown as \xNN.

export interface Chip {
  /** The interface's name, as the kernel has it. */
  name: string;
  /** What the chip shows under the name: its MAC, its addresses. */
  lines: string[];
  /** The bridge it is a port of. */
  master?: string;
  /** The other end of a veth pair, when that end is drawn. */
  peer?: { ns: string; name: string };
}

export interface NsBox {
  ns: string;
  title: string;
  /** The interfaces, less the bridges (drawn as bars inside the box). */
  chips: Chip[];
  bridges: Chip[];
  /** Text blocks, each under a heading (e.g. `ip route`). */
  text: { heading: string; lines: string[] }[];
  /** The blocks side by side instead of one under the other (a wide box). */
  columns?: boolean;
}

export interface Hop {
  ns: string;
  /** The interface the packet came in by, and the one it leaves by. */
  in?: string;
  out?: string;
  /** Bridges the packet crossed in this namespace. */
  bridges: string[];
  text: string;
}

export interface Picture {
  title: string;
  notes: string[];
  vnet: NsBox;
  nodes: NsBox[];
  /** Each pod's column is under the node its eth0's peer is in. */
  pods: NsBox[];
  path: Hop[];
}

const FONT = 11;
const CW = 6.7; // the width of one character of an 11px monospace font, a little generous
const LH = 14;
const PAD = 10;
const GAP = 24; // between boxes side by side
const LINK = 56; // the height of a veth line between two boxes
const PATH = '#d9480f';

/** The characters XML 1.0 can hold. */
const xmlChar = (c: number) => c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);

/** Text for an SVG text node or attribute: markup characters escaped, control and other non-XML characters shown as \xNN (or \uNNNN). */
export function esc(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += '&quot;';
    else if (ch === "'") out += '&apos;';
    // Tabs and line ends would be folded by the renderer: shown, like every control character.
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (!xmlChar(c)) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}

/** The width a text takes, in code points (what the renderer draws), not UTF-16 units. */
const width = (s: string) => [...s].length * CW;
const textW = (lines: string[]) => Math.max(0, ...lines.map(width));

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

interface PlacedChip extends Rect {
  ns: string;
  chip: Chip;
  /** Where a line to another box leaves the chip: its top or bottom edge's middle. */
  edge: 'top' | 'bottom';
}

/** How far a node's text stays right of its edge: clear of the lanes its NIC ports come down by, to their bridge. */
const textIndent = (top: Chip[]) => {
  let x = 0;
  let indent = 0;
  for (const c of top) {
    if (c.master) indent = x + chipSize(c).w / 2 + 12;
    x += chipSize(c).w + 8;
  }
  return indent;
};
const chipSize = (c: Chip) => ({ w: textW([c.name, ...c.lines]) + 12, h: (1 + c.lines.length) * LH + 6 });
const COLGAP = 40;
const boxTextH = (b: NsBox) =>
  (1 + (b.columns ? Math.max(0, ...b.text.map((t) => 1 + t.lines.length)) : b.text.reduce((n, t) => n + 1 + t.lines.length, 0))) * LH;
const boxTextW = (b: NsBox) =>
  b.columns
    ? Math.max(width(b.title), b.text.reduce((w, t) => w + textW([t.heading, ...t.lines]) + COLGAP, -COLGAP))
    : textW([b.title, ...b.text.flatMap((t) => [t.heading, ...t.lines])]);

export function pictureSvg(p: Picture): string {
  const head: string[] = []; // the title and the notes
  const texts: string[] = []; // the boxes' text blocks
  const chips = new Map<string, PlacedChip>(); // `${ns}\0${name}`
  const bars = new Map<string, Rect>(); // `${ns}\0${bridge}`
  const key = (ns: string, name: string) => `${ns}\u0000${name}`;
  const nodeOf = (pod: NsBox) => pod.chips.find((c) => c.peer && p.nodes.some((n) => n.ns === c.peer!.ns))?.peer!.ns;

  // Columns: a node and the pods under it.
  const cols = p.nodes.map((n) => {
    const pods = p.pods.filter((x) => nodeOf(x) === n.ns);
    const podW = pods.map((x) => Math.max(boxTextW(x), ...x.chips.map((c) => chipSize(c).w)) + 2 * PAD);
    const podsSpan = podW.reduce((a, b) => a + b, 0) + GAP * Math.max(0, pods.length - 1);
    const top = n.chips.filter((c) => !c.peer || !p.pods.some((x) => x.ns === c.peer!.ns));
    const brW = textW(n.bridges.flatMap((b) => [b.name, ...b.lines]));
    const nodeW = Math.max(PAD + textIndent(top) + boxTextW(n) + PAD, PAD + brW + 2 * PAD, PAD + top.reduce((a, c) => a + chipSize(c).w + 8, 0));
    return { node: n, pods, podW, podsSpan, top, w: Math.max(nodeW, podsSpan) };
  });
  const orphans = p.pods.filter((x) => !nodeOf(x));
  const M = 16;
  const totalW = Math.max(cols.reduce((a, c) => a + c.w, 0) + GAP * Math.max(0, cols.length - 1), boxTextW(p.vnet) + 2 * PAD, 400);

  // The title and the notes.
  let y = M + FONT + 2;
  head.push(`<text x="${M}" y="${y}" class="t">${esc(p.title)}</text>`);
  for (const note of p.notes) {
    y += LH;
    head.push(`<text x="${M}" y="${y}" class="n">${esc(note)}</text>`);
  }
  y += LH;

  // Text blocks of a box, from (x, y) down.
  const textBlock = (b: NsBox, x0: number, y0: number) => {
    let ty = y0 + FONT;
    let x = x0;
    texts.push(`<text x="${n(x)}" y="${n(ty)}" class="b">${esc(b.title)}</text>`);
    const top = ty;
    for (const t of b.text) {
      ty += LH;
      texts.push(`<text x="${n(x)}" y="${n(ty)}" class="h">${esc(t.heading)}</text>`);
      for (const l of t.lines) {
        ty += LH;
        texts.push(`<text x="${n(x)}" y="${n(ty)}">${esc(l)}</text>`);
      }
      if (b.columns) {
        x += textW([t.heading, ...t.lines]) + COLGAP;
        ty = top;
      }
    }
  };
  const placeChip = (ns: string, c: Chip, x: number, cy: number, edge: 'top' | 'bottom') => {
    const s = chipSize(c);
    const r: PlacedChip = { ns, chip: c, x, y: cy - s.h / 2, w: s.w, h: s.h, edge };
    chips.set(key(ns, c.name), r);
    return r;
  };

  // Where chips go, column by column: the x of each pod, then the node's bottom chips above them.
  const vnetTop = y + 8;
  const vnetBottomChips = p.vnet.chips.filter((c) => c.peer && p.nodes.some((n) => n.ns === c.peer!.ns));
  const vnetChipH = Math.max(0, ...vnetBottomChips.map((c) => chipSize(c).h));
  const vnetBarH = p.vnet.bridges.length ? p.vnet.bridges.length * (chipSize(p.vnet.bridges[0]!).h + 8) + 16 : 0;
  const vnetH = PAD + boxTextH(p.vnet) + 8 + vnetBarH + vnetChipH / 2 + 4;
  const nodeTop = vnetTop + vnetH + vnetChipH / 2 + LINK;
  const nodeTopChipH = Math.max(0, ...cols.flatMap((c) => c.top.map((t) => chipSize(t).h)));
  const nodeBotChipH = Math.max(0, ...p.nodes.flatMap((n) => n.chips.filter((c) => !cols.some((k) => k.top.includes(c))).map((c) => chipSize(c).h)));
  const nodeTextH = Math.max(...cols.map((c) => boxTextH(c.node)));
  const nodeBarH = Math.max(0, ...p.nodes.map((n) => (n.bridges.length ? n.bridges.length * (Math.max(...n.bridges.map((b) => chipSize(b).h)) + 8) + 20 : 12)));
  const nodeH = nodeTopChipH / 2 + 10 + nodeTextH + nodeBarH + nodeBotChipH / 2 + 4;
  const podTop = nodeTop + nodeH + nodeBotChipH / 2 + LINK;
  const podChipH = Math.max(0, ...p.pods.flatMap((x) => x.chips.map((c) => chipSize(c).h)));
  const podH = podChipH / 2 + 6 + Math.max(0, ...p.pods.map(boxTextH)) + PAD;

  const boxes: { r: Rect; cls: string }[] = [];
  let cx = M;
  for (const col of cols) {
    const n = col.node;
    const nr = { x: cx, y: nodeTop, w: col.w, h: nodeH };
    boxes.push({ r: nr, cls: 'node' });
    // Top chips (the node's NIC), left to right; the text right of them.
    let tx = cx + PAD;
    for (const c of col.top) tx += placeChip(n.ns, c, tx, nodeTop, 'top').w + 8;
    textBlock(n, cx + PAD + textIndent(col.top), nodeTop + nodeTopChipH / 2 + 8);
    // Pods, centred under the node; each pod's eth0 on its top edge, its node-side peer above it.
    let px = cx + (col.w - col.podsSpan) / 2;
    col.pods.forEach((pod, j) => {
      const w = col.podW[j]!;
      boxes.push({ r: { x: px, y: podTop, w, h: podH }, cls: 'pod' });
      let chipX = px + PAD;
      for (const c of pod.chips) {
        const s = chipSize(c);
        const pc = placeChip(pod.ns, c, pod.chips.length === 1 ? px + (w - s.w) / 2 : chipX, podTop, 'top');
        chipX += s.w + 8;
        const peer = c.peer && n.chips.find((x) => x.name === c.peer!.name && c.peer!.ns === n.ns);
        if (peer) placeChip(n.ns, peer, pc.x + pc.w / 2 - chipSize(peer).w / 2, nodeTop + nodeH, 'bottom');
      }
      textBlock(pod, px + PAD, podTop + podChipH / 2 + 6);
      px += w + GAP;
    });
    // Node chips that lead nowhere drawn: along the bottom edge, right of the rest.
    let bx = cx + col.w - PAD;
    for (const c of n.chips.filter((x) => !chips.has(key(n.ns, x.name)))) {
      bx -= chipSize(c).w;
      placeChip(n.ns, c, bx, nodeTop + nodeH, 'bottom');
      bx -= 8;
    }
    // The bridge: a bar under the text, wide enough to reach over each of its ports.
    let by = nodeTop + nodeTopChipH / 2 + 8 + nodeTextH + 8;
    for (const b of n.bridges) {
      const ports = n.chips.filter((c) => c.master === b.name).map((c) => chips.get(key(n.ns, c.name))!);
      const x0 = cx + PAD;
      const right = Math.max(x0 + chipSize(b).w, ...ports.map((r) => r.x + r.w / 2 + 14));
      const r = { x: x0, y: by, w: right - x0, h: chipSize(b).h };
      bars.set(key(n.ns, b.name), r);
      by += r.h + 8;
    }
    cx += col.w + GAP;
  }
  for (const pod of orphans) {
    // A pod whose node is not drawn: at the end of the pod row.
    const w = Math.max(boxTextW(pod), ...pod.chips.map((c) => chipSize(c).w)) + 2 * PAD;
    boxes.push({ r: { x: cx, y: podTop, w, h: podH }, cls: 'pod' });
    let chipX = cx + PAD;
    for (const c of pod.chips) chipX += placeChip(pod.ns, c, chipX, podTop, 'top').w + 8;
    textBlock(pod, cx + PAD, podTop + podChipH / 2 + 6);
    cx += w + GAP;
  }
  const W = Math.max(totalW + 2 * M, cx - GAP + M);

  // The VNet: all the way across, its ports on its bottom edge above the node's NIC they lead to.
  const vr = { x: M, y: vnetTop, w: W - 2 * M, h: vnetH };
  boxes.unshift({ r: vr, cls: 'vnet' });
  textBlock(p.vnet, M + PAD, vnetTop + PAD - 4);
  let free = M + vr.w - PAD;
  for (const c of p.vnet.chips) {
    const s = chipSize(c);
    const below = c.peer && chips.get(key(c.peer.ns, c.peer.name));
    if (below) placeChip(p.vnet.ns, c, below.x + below.w / 2 - s.w / 2, vnetTop + vnetH, 'bottom');
    else {
      free -= s.w;
      placeChip(p.vnet.ns, c, free, vnetTop + vnetH, 'bottom');
      free -= 8;
    }
  }
  let vby = vnetTop + PAD + boxTextH(p.vnet) + 4;
  for (const b of p.vnet.bridges) {
    const ports = p.vnet.chips.filter((c) => c.master === b.name).map((c) => chips.get(key(p.vnet.ns, c.name))!);
    const x0 = M + PAD;
    const right = Math.max(x0 + chipSize(b).w, ...ports.map((r) => r.x + r.w / 2 + 14));
    bars.set(key(p.vnet.ns, b.name), { x: x0, y: vby, w: right - x0, h: chipSize(b).h });
    vby += chipSize(b).h + 8;
  }

  // The path, as sets: chips it passes, veth lines and bridge-to-port lines it takes.
  const onPath = new Set<string>();
  const hopOf = new Map<string, number>();
  const barLinks = new Set<string>();
  p.path.forEach((h, i) => {
    for (const name of [h.in, h.out]) if (name) onPath.add(key(h.ns, name));
    const at = h.out ?? h.in;
    if (at) hopOf.set(key(h.ns, at), i + 1);
    for (const b of h.bridges) for (const port of [h.in, h.out]) if (port) barLinks.add(`${key(h.ns, b)}\u0000${port}`);
  });
  const lineOnPath = (a: PlacedChip, b: PlacedChip) => {
    const i = p.path.findIndex((h) => h.ns === a.ns && h.out === a.chip.name);
    const j = p.path.findIndex((h) => h.ns === b.ns && h.out === b.chip.name);
    const next = (k: number, c: PlacedChip) => k >= 0 && p.path[k + 1]?.ns === c.ns && p.path[k + 1]?.in === c.chip.name;
    return next(i, b) || next(j, a);
  };

  // Lines first, boxes over them: veth pairs, then each bridge to its ports.
  const lines: string[] = [];
  const drawn = new Set<string>();
  for (const a of chips.values()) {
    const peer = a.chip.peer && chips.get(key(a.chip.peer.ns, a.chip.peer.name));
    if (!peer || drawn.has(key(peer.ns, peer.chip.name))) continue;
    drawn.add(key(a.ns, a.chip.name));
    const [u, d] = a.y < peer.y ? [a, peer] : [peer, a];
    const hot = lineOnPath(a, peer);
    lines.push(`<line x1="${n(u.x + u.w / 2)}" y1="${n(u.y + u.h)}" x2="${n(d.x + d.w / 2)}" y2="${n(d.y)}" class="${hot ? 'ph' : 'l'}"/>`);
    lines.push(`<text x="${n(u.x + u.w / 2 + 5)}" y="${n((u.y + u.h + d.y) / 2 + 4)}" class="s">veth</text>`);
  }
  for (const [k, bar] of bars) {
    const [ns, bridge] = k.split('\u0000') as [string, string];
    for (const c of chips.values()) {
      if (c.ns !== ns || c.chip.master !== bridge) continue;
      const hot = barLinks.has(`${k}\u0000${c.chip.name}`);
      const x = c.x + c.w / 2;
      // A port above the bar (the node's NIC) comes down its left lane; one below, straight down.
      const [y1, y2] = c.y < bar.y ? [c.y + c.h, bar.y] : [bar.y + bar.h, c.y];
      lines.push(`<line x1="${n(x)}" y1="${n(y1)}" x2="${n(x)}" y2="${n(y2)}" class="${hot ? 'ph' : 'l'}"/>`);
    }
  }

  const out: string[] = [];
  for (const { r, cls } of boxes) out.push(`<rect x="${n(r.x)}" y="${n(r.y)}" width="${n(r.w)}" height="${n(r.h)}" rx="6" class="${cls}"/>`);
  out.push(...lines);
  for (const [k, r] of bars) {
    const [ns, bridge] = k.split('\u0000') as [string, string];
    const b = [p.vnet, ...p.nodes].find((x) => x.ns === ns)!.bridges.find((x) => x.name === bridge)!;
    out.push(`<rect x="${n(r.x)}" y="${n(r.y)}" width="${n(r.w)}" height="${n(r.h)}" rx="3" class="br"/>`);
    out.push(chipText(b, r.x + 6, r.y));
  }
  for (const c of chips.values()) {
    out.push(`<rect x="${n(c.x)}" y="${n(c.y)}" width="${n(c.w)}" height="${n(c.h)}" rx="3" class="${onPath.has(key(c.ns, c.chip.name)) ? 'ch' : 'c'}"/>`);
    out.push(chipText(c.chip, c.x + 6, c.y));
  }
  // Hop numbers: on the chip the packet leaves by (or, at the end, arrives by).
  for (const [k, i] of hopOf) {
    const c = chips.get(k);
    if (!c) continue;
    out.push(`<circle cx="${n(c.x - 2)}" cy="${n(c.y + 2)}" r="8" class="m"/><text x="${n(c.x - 2)}" y="${n(c.y + 6)}" class="mt">${i}</text>`);
  }
  // The legend: each hop, as the tables read it.
  let ly = podTop + podH + 28;
  if (p.path.length) {
    out.push(`<text x="${M}" y="${n(ly)}" class="b">${esc('The path of one packet (numbered where it leaves each namespace):')}</text>`);
    p.path.forEach((h, i) => {
      ly += LH;
      out.push(`<text x="${M}" y="${n(ly)}"><tspan class="pk">${i + 1}.</tspan> ${esc(h.text)}</text>`);
    });
  }
  const legendW = M + Math.max(0, ...p.path.map((h, i) => width(`${i + 1}. ${h.text}`))) + M;
  const Wt = Math.max(W, legendW, width(p.title) * 1.1 + 2 * M, textW(p.notes) + 2 * M);
  const H = ly + M;
  const style = [
    `text{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,'DejaVu Sans Mono',monospace;font-size:${FONT}px;fill:#1f2328}`,
    `.t{font-size:${FONT + 3}px;font-weight:bold}`,
    '.n{fill:#57606a}',
    '.b{font-weight:bold}',
    '.h{fill:#6e7781;font-style:italic}',
    '.s{font-size:9px;fill:#8c959f}',
    '.vnet{fill:#eef6ff;stroke:#54aeff}',
    '.node{fill:#f6f8fa;stroke:#8c959f}',
    '.pod{fill:#fff8e6;stroke:#d4a72c}',
    '.c{fill:#ffffff;stroke:#57606a}',
    `.ch{fill:#fff4ed;stroke:${PATH};stroke-width:2}`,
    '.br{fill:#dafbe1;stroke:#2da44e}',
    '.l{stroke:#57606a;stroke-width:1.5}',
    `.ph{stroke:${PATH};stroke-width:3}`,
    `.m{fill:${PATH}}`,
    '.mt{fill:#ffffff;font-size:10px;font-weight:bold;text-anchor:middle}',
    `.pk{fill:${PATH};font-weight:bold}`,
  ].join('');
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${n(Wt)}" height="${n(H)}" viewBox="0 0 ${n(Wt)} ${n(H)}">`,
    `<style>${style}</style>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...head,
    ...out.slice(0, boxes.length),
    ...texts,
    ...out.slice(boxes.length),
    '</svg>',
    '',
  ].join('\n');
}

/** A chip's or a bar's text: its name in bold, then its lines. */
function chipText(c: Chip, x: number, y: number): string {
  const t = [`<text x="${n(x)}" y="${n(y + LH)}" class="b">${esc(c.name)}</text>`];
  c.lines.forEach((l, i) => t.push(`<text x="${n(x)}" y="${n(y + LH * (i + 2))}">${esc(l)}</text>`));
  return t.join('');
}

const n = (v: number) => String(Math.round(v * 10) / 10);

/**
 * What is wrong with an XML document, for a check of the pictures (no parser is at hand): one
 * root element, names and attributes well formed and quoted, tags balanced, `&` only in a known
 * entity or a character reference to a character XML can hold, no `<` in text or attribute
 * values, no character XML cannot hold. An empty list: well formed.
 */
export function xmlProblems(xml: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  const NAME = /^[A-Za-z_:][A-Za-z0-9_.:-]*/;
  const badText = (s: string, where: string) => {
    for (const ch of s) if (!xmlChar(ch.codePointAt(0)!)) problems.push(`${where}: character U+${ch.codePointAt(0)!.toString(16)} is not allowed in XML`);
    if (s.includes('<')) problems.push(`${where}: a '<' in text`);
    for (const m of s.matchAll(/&([^;\s&<]*)(;?)/g)) {
      const [, ref, semi] = m;
      const num = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(ref ?? '');
      if (!semi || !(['amp', 'lt', 'gt', 'quot', 'apos'].includes(ref!) || (num && xmlChar(num[1] ? parseInt(num[1], 16) : Number(num[2]))))) {
        problems.push(`${where}: '&${ref}${semi}' is not an entity or character reference XML allows`);
      }
    }
  };
  if (xml.startsWith('<?xml')) {
    const end = xml.indexOf('?>');
    if (end < 0) return ['the XML declaration is not closed'];
    i = end + 2;
  }
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (stack.length) badText(text, `text in <${stack[stack.length - 1]}>`);
    else if (text.trim()) problems.push(`text outside the root element: ${JSON.stringify(text.trim().slice(0, 40))}`);
    if (lt < 0) break;
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt + 4);
      if (end < 0) return [...problems, 'a comment is not closed'];
      if (xml.slice(lt + 4, end).includes('--')) problems.push("'--' inside a comment");
      i = end + 3;
      continue;
    }
    if (xml.startsWith('</', lt)) {
      const m = /^<\/([A-Za-z_:][A-Za-z0-9_.:-]*)\s*>/.exec(xml.slice(lt, lt + 200));
      if (!m) return [...problems, `a malformed end tag: ${JSON.stringify(xml.slice(lt, lt + 40))}`];
      const open = stack.pop();
      if (open !== m[1]) problems.push(`</${m[1]}> closes <${open ?? 'nothing'}>`);
      i = lt + m[0].length;
      continue;
    }
    const name = NAME.exec(xml.slice(lt + 1, lt + 200))?.[0];
    if (!name) return [...problems, `a tag without a name: ${JSON.stringify(xml.slice(lt, lt + 40))}`];
    // Attributes, one by one (a quoted value may hold '>'), then '/>' or '>'.
    const attr = /\s+([A-Za-z_:][A-Za-z0-9_.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/y;
    const end = /\s*(\/?)>/y;
    let j = lt + 1 + name.length;
    const seen = new Set<string>();
    for (;;) {
      end.lastIndex = j;
      const e = end.exec(xml);
      if (e) {
        if (!stack.length) roots++;
        if (!e[1]) stack.push(name);
        i = end.lastIndex;
        break;
      }
      attr.lastIndex = j;
      const a = attr.exec(xml);
      if (!a) return [...problems, `<${name}>: not an attribute (name="value") nor the tag's end: ${JSON.stringify(xml.slice(j, j + 40))}`];
      if (seen.has(a[1]!)) problems.push(`<${name}>: attribute ${a[1]} twice`);
      seen.add(a[1]!);
      badText(a[2] ?? a[3] ?? '', `<${name} ${a[1]}>`);
      j = attr.lastIndex;
    }
  }
  if (stack.length) problems.push(`not closed: <${stack.join('>, <')}>`);
  if (roots !== 1) problems.push(`${roots} root elements, not one`);
  return problems;
}
