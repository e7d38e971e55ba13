volatile int unit_a;
__attribute__((noinline)) static int helper(int x) { return x + unit_a; }
__attribute__((noinline)) int global_fn(int x) { return helper(x) * 2; }
int call_b(int);
int main(int argc, char **argv) { (void)argv; return global_fn(argc) + call_b(argc) > 1000; }
