'use strict';
// Sequential steps inside one node:test test: each step is a subtest; once
// one fails, the rest are skipped (they depend on it) instead of failing
// with follow-on errors.

// onFail(name, error), if given, runs when a step fails (e.g. a screenshot).
function stepper(t, onFail) {
  let broken = null;
  return async function step(name, fn) {
    await t.test(name, async (st) => {
      if (broken) {
        st.skip(`after failed step "${broken}"`);
        return;
      }
      try {
        await fn(st);
      } catch (e) {
        broken = name;
        if (onFail) await Promise.resolve(onFail(name, e)).catch(() => {});
        throw e;
      }
    });
  };
}

/**
 * WAIT is how long any one expectation of the end-to-end tests (a frame, a
 * response, an element on a page) may take before the test fails. It only
 * bounds a hung test, nothing asserts how fast anything is: generous,
 * because CI's 2 cores may be loaded many times over (with 15 s, steps of
 * the console test took 28 s at load 30 and whole files ran past the
 * per-test limit).
 */
const WAIT = 60000;

/** Polls fn until it returns a truthy value or timeoutMs passes. */
async function eventually(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ': ' + last.message : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

module.exports = { stepper, eventually, WAIT };
