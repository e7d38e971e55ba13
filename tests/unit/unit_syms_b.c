volatile int unit_b;
__attribute__((noinline)) static int helper(int x) { return x - unit_b; }
__attribute__((noinline)) int call_b(int x) { return helper(x); }
