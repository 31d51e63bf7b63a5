// Undo/redo over whole graph snapshots (graphs are small; snapshots keep it obviously right).
// Pushes with the same `key` in a row merge into one step, so typing a word in a field is one
// undo, not one per keystroke.

export class History<T> {
  private past: T[] = [];
  private future: T[] = [];
  private lastKey: string | null = null;

  constructor(
    private current: T,
    private readonly limit = 200,
  ) {}

  get present(): T {
    return this.current;
  }

  get canUndo(): boolean {
    return this.past.length > 0;
  }

  get canRedo(): boolean {
    return this.future.length > 0;
  }

  /** Record a new state. */
  push(state: T, key: string | null = null): void {
    if (key !== null && key === this.lastKey && this.past.length > 0) {
      this.current = state; // same edit continued
      this.future = [];
      return;
    }
    this.past.push(this.current);
    if (this.past.length > this.limit) this.past.shift();
    this.current = state;
    this.future = [];
    this.lastKey = key;
  }

  undo(): T | undefined {
    const previous = this.past.pop();
    if (previous === undefined) return undefined;
    this.future.push(this.current);
    this.current = previous;
    this.lastKey = null;
    return previous;
  }

  redo(): T | undefined {
    const next = this.future.pop();
    if (next === undefined) return undefined;
    this.past.push(this.current);
    this.current = next;
    this.lastKey = null;
    return next;
  }

  /** Start again from `state` with no undo steps (after loading a version). */
  reset(state: T): void {
    this.past = [];
    this.future = [];
    this.current = state;
    this.lastKey = null;
  }
}
