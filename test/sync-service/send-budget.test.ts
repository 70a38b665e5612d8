// The service-wide budget of queued subscription bytes: room while under the
// bound, and the connections turned away woken, in order, once half has left.
import { describe, expect, it } from 'vitest';
import { SendBudget } from '../../helpers/sync-service/outbox.ts';

describe('the shared send budget', () => {
  it('has room only while less than its bound waits', () => {
    const budget = new SendBudget(1000);
    expect(budget.hasRoom).toBe(true);
    budget.adjust(999);
    expect(budget.hasRoom).toBe(true);
    budget.adjust(1);
    expect(budget.hasRoom).toBe(false);
  });

  it('wakes the connections turned away, in the order they came, once half of the bound has left', () => {
    const budget = new SendBudget(1000);
    budget.adjust(1000);
    const woken: string[] = [];
    budget.wait(() => woken.push('first'));
    budget.wait(() => woken.push('second'));
    const forgotten = () => woken.push('gone');
    budget.wait(forgotten);
    budget.forget(forgotten);
    budget.adjust(-400);
    expect(woken).toEqual([]);
    budget.adjust(-200);
    expect(woken).toEqual(['first', 'second']);
    budget.adjust(-100);
    expect(woken).toEqual(['first', 'second']);
  });
});
