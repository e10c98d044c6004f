/** CPU work for the compute figure of bench/net (runs on worker threads). */
export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}
