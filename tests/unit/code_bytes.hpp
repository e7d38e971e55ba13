// A "function" for the unit tests of code analysis (relocate_test.cpp, stack_height_test.cpp):
// hand-assembled bytes in an aligned array, padded with int3. The analyses only read it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

struct CodeBytes {
    alignas(64) unsigned char b[256];
    size_t size;
    uintptr_t at(size_t off = 0) const { return reinterpret_cast<uintptr_t>(b) + off; }
    // A block 1 MiB away: well within a rel32's reach, never touched.
    uintptr_t block() const { return at() + (1u << 20); }
};

inline CodeBytes code_of(const std::vector<unsigned char> &code) {
    CodeBytes f;
    std::memset(f.b, 0xcc, sizeof f.b);
    std::memcpy(f.b, code.data(), code.size());
    f.size = code.size();
    return f;
}
