// Whether two builds of a function differ only in immediate operands (`graft diff`'s test for a
// change of __LINE__ alone: `mov $29,%edx` before an __assert_fail call became `mov $30,%edx`).
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace graft::arch {

// `a` and `b` (each `len` bytes of code) decode to the same instructions with the same lengths,
// the same bytes outside immediate operands; every pair of immediates that differ is appended to
// *pairs (old, new). False when they differ in anything else, or do not decode.
bool differ_only_in_immediates(const uint8_t *a, const uint8_t *b, size_t len,
                               std::vector<std::pair<int64_t, int64_t>> *pairs);

}  // namespace graft::arch
