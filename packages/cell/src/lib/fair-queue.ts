/**
 * Runs at most `concurrency` tasks at once. Tasks that must wait are queued per key (the client
 * address) and served round-robin across keys, so one busy key cannot starve the others: a key
 * with one waiting task is served after at most one task of every other waiting key.
 * Waiting is bounded, per key and in total; beyond either bound the task is refused at once
 * (`refuse()` builds the error) instead of queueing for ever.
 */
export class FairQueue {
  private running = 0;
  private waitingTotal = 0;
  /** Waiting tasks per key; the Map's insertion order is the round-robin order. */
  private readonly waiting = new Map<string, Array<() => void>>();

  constructor(
    readonly concurrency: number,
    readonly maxWaitingPerKey: number,
    readonly maxWaiting: number,
    private readonly refuse: () => Error,
  ) {
    if (!(concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
  }

  /** How many tasks run now and how many wait (for tests and the bench). */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waitingTotal };
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    if (this.running < this.concurrency && this.waitingTotal === 0) return this.start(task);
    const queue = this.waiting.get(key);
    if (this.waitingTotal >= this.maxWaiting || (queue?.length ?? 0) >= this.maxWaitingPerKey) {
      return Promise.reject(this.refuse());
    }
    return new Promise<T>((resolve, reject) => {
      const job = () => void this.start(task).then(resolve, reject);
      if (queue) queue.push(job);
      else this.waiting.set(key, [job]);
      this.waitingTotal++;
    });
  }

  private start<T>(task: () => Promise<T>): Promise<T> {
    this.running++;
    let result: Promise<T>;
    try {
      result = task();
    } catch (err) {
      result = Promise.reject(err);
    }
    return result.finally(() => {
      this.running--;
      this.next();
    });
  }

  /** Starts the first key's oldest task, then moves that key to the back of the line. */
  private next(): void {
    while (this.running < this.concurrency) {
      const first = this.waiting.entries().next();
      if (first.done) return;
      const [key, queue] = first.value;
      const job = queue.shift()!;
      this.waiting.delete(key);
      if (queue.length > 0) this.waiting.set(key, queue);
      this.waitingTotal--;
      job();
    }
  }
}
