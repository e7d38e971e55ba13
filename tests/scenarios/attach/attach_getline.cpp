// A single-threaded C++ program idle in std::getline(std::cin), as a small service reading
// requests from a pipe is: its only thread is blocked in read() under libstdc++'s stdio filebuf,
// which refills the C library's FILE buffer through __uflow directly (no getc frame). `graft
// attach` borrows that thread (no thread ever runs) and the line it was waiting for must still
// arrive whole.
#include <iostream>
#include <string>

extern "C" __attribute__((noinline)) int work() {
    return 1;
}

int main() {
    std::cout << "ready" << std::endl;
    for (std::string line; std::getline(std::cin, line);) {
        if (line == "tick")
            std::cout << "work " << work() << std::endl;
        else if (line == "quit")
            return 0;
        else
            std::cout << "echo " << line << std::endl;
    }
    return 0;
}
