// Types of graph-types.mjs, for src/graphTypes.test.ts.
export function graphTypes(schemaText?: string): Promise<string>;
export function committedTypes(): string;
