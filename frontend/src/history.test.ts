import { describe, expect, it } from "vitest";
import { History } from "./history";

describe("History (undo/redo)", () => {
  it("undoes and redoes in order", () => {
    const h = new History("a");
    h.push("b");
    h.push("c");
    expect(h.present).toBe("c");
    expect(h.undo()).toBe("b");
    expect(h.undo()).toBe("a");
    expect(h.undo()).toBeUndefined();
    expect(h.present).toBe("a");
    expect(h.redo()).toBe("b");
    expect(h.redo()).toBe("c");
    expect(h.redo()).toBeUndefined();
  });

  it("forgets the redo steps when a new edit is made", () => {
    const h = new History(1);
    h.push(2);
    h.push(3);
    h.undo();
    h.push(4);
    expect(h.canRedo).toBe(false);
    expect(h.undo()).toBe(2);
  });

  it("merges pushes with the same key into one step (typing in one field)", () => {
    const h = new History("");
    h.push("a", "field:x");
    h.push("ab", "field:x");
    h.push("abc", "field:x");
    expect(h.undo()).toBe("");
    expect(h.redo()).toBe("abc");
  });

  it("keeps separate steps for different keys, and after an undo", () => {
    const h = new History("0");
    h.push("1", "x");
    h.push("2", "y");
    h.push("3", "y");
    expect(h.undo()).toBe("1");
    h.push("4", "x"); // after an undo, the same key starts a new step
    h.push("5", "x");
    expect(h.undo()).toBe("1");
    expect(h.undo()).toBe("0");
  });

  it("never merges into the initial state", () => {
    const h = new History("start");
    h.push("a", "k");
    expect(h.canUndo).toBe(true);
    expect(h.undo()).toBe("start");
  });

  it("keeps at most `limit` undo steps", () => {
    const h = new History(0, 3);
    for (let i = 1; i <= 10; i++) h.push(i);
    expect([h.undo(), h.undo(), h.undo(), h.undo()]).toEqual([9, 8, 7, undefined]);
  });

  it("reset starts over with no steps", () => {
    const h = new History("a");
    h.push("b");
    h.reset("z");
    expect(h.present).toBe("z");
    expect(h.canUndo).toBe(false);
    expect(h.canRedo).toBe(false);
  });
});
