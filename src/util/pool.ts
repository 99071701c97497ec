/**
 * `items.map(work)` with at most `limit` calls in flight, results in the
 * items' order. For per-domain libvirt calls: the binding runs each on one of
 * libuv's 4 threads, so 4 at a time overlap their round trips without queueing
 * hundreds of requests (or, on the virsh backend, starting hundreds of processes).
 * The first failure rejects the whole; calls already started still finish.
 */
export async function mapPooled<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
