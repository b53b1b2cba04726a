// The this-cpu build's warm-up (src/snapshot.ts) swallows its failures, since a failed warm-up only
// costs a colder start; so this test is what says it still drives every verb it names.
import { describe, expect, it } from 'vitest';
import { warmUp } from '../src/snapshot.js';

describe('the snapshot’s warm-up runs the public verbs on throwaway input without a failure', () => {
  it('the main plugin’s ADD plan in every mode, vnet-ipam’s ADD, CHECK and DEL, one child process', async () => {
    expect(await warmUp()).toEqual([]);
  });
});
