// CPU work for examples/compute.ts: each export runs on a worker thread.
export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}
