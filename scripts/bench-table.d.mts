export function withBenchTable(text: string, table: string): string;
export function writeBenchTable(file: string, table: string): string;
