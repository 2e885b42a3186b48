/**
 * Group commit: callers submit one item each and wait for its result. A batch is written one
 * event-loop turn after its first item arrived (`setImmediate`), so every request already read
 * from the sockets in that turn joins it, and items that arrive while a batch is being written go
 * together in the next one. Under load this turns many small writes into few large ones (PGlite in
 * particular pays per statement, not per row, and blocks the loop while it works); when idle the
 * wait is one turn of the loop, microseconds.
 */
export interface GroupCommit<Item, Result> {
  /** Resolves with the item's result once its batch is written; rejects with the batch's error. */
  submit(item: Item): Promise<Result>;
  /** Resolves when everything submitted so far is written (or failed). */
  drain(): Promise<void>;
}

export interface GroupCommitOptions<Item, Result> {
  /** Writes a batch; must return one result per item, in order, or throw for the whole batch. */
  readonly write: (items: readonly Item[]) => Promise<readonly Result[]>;
  /** Largest batch written at once. */
  readonly maxBatch: number;
}

interface Waiting<Item, Result> {
  readonly item: Item;
  readonly resolve: (result: Result) => void;
  readonly reject: (error: unknown) => void;
}

export function createGroupCommit<Item, Result>(options: GroupCommitOptions<Item, Result>): GroupCommit<Item, Result> {
  let queue: Array<Waiting<Item, Result>> = [];
  let writing: Promise<void> | undefined;

  const writeNext = async (): Promise<void> => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (queue.length > 0) {
      const batch = queue.slice(0, options.maxBatch);
      queue = queue.slice(batch.length);
      try {
        const results = await options.write(batch.map((w) => w.item));
        if (results.length !== batch.length) throw new Error(`group commit: ${results.length} results for ${batch.length} items`);
        batch.forEach((w, i) => w.resolve(results[i] as Result));
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    writing = undefined;
  };

  return {
    submit(item) {
      return new Promise<Result>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        writing ??= writeNext();
      });
    },
    async drain() {
      while (writing) await writing;
    },
  };
}
