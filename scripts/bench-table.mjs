// Where `scripts/bench.mjs --readme` puts its table: between the lines `<!-- bench -->` and
// `<!-- /bench -->` of scripts/README.md (its Speed section). Apart from the bench so that a test
// can check it without running one (test/bench-table.test.ts).
import { readFileSync, writeFileSync } from 'node:fs';

/** The bench's table in place of the block's old content; a file without the block is an error, and is left as it was. */
export function withBenchTable(text, table) {
  const block = /^<!-- bench -->\n[\s\S]*?^<!-- \/bench -->$/m;
  if (!block.test(text)) throw new Error('no <!-- bench --> … <!-- /bench --> block (each marker on a line of its own)');
  return text.replace(block, () => `<!-- bench -->\n${table.trimEnd()}\n<!-- /bench -->`);
}

/** Writes the table into the file's block; returns the file. */
export function writeBenchTable(file, table) {
  let next;
  try {
    next = withBenchTable(readFileSync(file, 'utf8'), table);
  } catch (err) {
    throw new Error(`${file}: ${err.message}`);
  }
  writeFileSync(file, next);
  return file;
}
