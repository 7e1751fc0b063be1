import { describe, expect, it } from "vitest";
import { moveFocus, scrollToShow, windowOf } from "./virtual";

describe("windowOf", () => {
  it("draws the rows in view and spaces the rest", () => {
    const w = windowOf(1000, 4000, 800, 40, 5);
    expect(w).toEqual({ start: 95, end: 125, before: 3800, after: 875 * 40 });
    expect(w.before + (w.end - w.start) * 40 + w.after).toBe(1000 * 40);
  });
  it("stays inside the list at both ends", () => {
    expect(windowOf(1000, 0, 800, 40, 5)).toMatchObject({ start: 0, end: 25, before: 0 });
    expect(windowOf(1000, 1e9, 800, 40, 5)).toMatchObject({ start: 1000, end: 1000, after: 0 });
    expect(windowOf(3, 0, 800, 40)).toEqual({ start: 0, end: 3, before: 0, after: 0 });
    expect(windowOf(0, 0, 800, 40)).toEqual({ start: 0, end: 0, before: 0, after: 0 });
  });
});

describe("moveFocus", () => {
  it("moves by one, a page, or to an end, and never leaves the list", () => {
    expect(moveFocus(-1, "ArrowDown", 10, 5)).toBe(0);
    expect(moveFocus(3, "ArrowDown", 10, 5)).toBe(4);
    expect(moveFocus(9, "ArrowDown", 10, 5)).toBe(9);
    expect(moveFocus(0, "ArrowUp", 10, 5)).toBe(0);
    expect(moveFocus(3, "PageDown", 10, 5)).toBe(8);
    expect(moveFocus(8, "PageDown", 10, 5)).toBe(9);
    expect(moveFocus(3, "PageUp", 10, 5)).toBe(0);
    expect(moveFocus(4, "End", 10, 5)).toBe(9);
    expect(moveFocus(4, "Home", 10, 5)).toBe(0);
    // The list shrank under the focus (a filter).
    expect(moveFocus(50, "ArrowUp", 10, 5)).toBe(8);
  });
  it("ignores other keys and empty lists", () => {
    expect(moveFocus(1, "a", 10, 5)).toBeNull();
    expect(moveFocus(-1, "ArrowDown", 0, 5)).toBeNull();
  });
});

describe("scrollToShow", () => {
  it("scrolls as little as it can", () => {
    expect(scrollToShow(10, 40, 0, 800)).toBe(0);
    expect(scrollToShow(30, 40, 0, 800)).toBe(440);
    expect(scrollToShow(2, 40, 400, 800)).toBe(80);
  });
});
