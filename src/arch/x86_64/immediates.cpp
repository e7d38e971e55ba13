#include "arch/x86_64/immediates.hpp"

#include <Zydis/Zydis.h>

#include <cstring>

namespace graft::arch {

bool differ_only_in_immediates(const uint8_t *a, const uint8_t *b, size_t len,
                               std::vector<std::pair<int64_t, int64_t>> *pairs) {
    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    size_t off = 0;
    while (off < len) {
        ZydisDecodedInstruction ia, ib;
        if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, nullptr, a + off, len - off, &ia)) ||
            !ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, nullptr, b + off, len - off, &ib)) ||
            ia.length != ib.length || ia.mnemonic != ib.mnemonic)
            return false;
        if (std::memcmp(a + off, b + off, ia.length) != 0) {
            // Outside the immediates, the same bytes.
            uint8_t ma[ZYDIS_MAX_INSTRUCTION_LENGTH], mb[ZYDIS_MAX_INSTRUCTION_LENGTH];
            std::memcpy(ma, a + off, ia.length);
            std::memcpy(mb, b + off, ib.length);
            for (int k = 0; k < 2; k++) {
                const auto &ra = ia.raw.imm[k], &rb = ib.raw.imm[k];
                if (ra.size != rb.size || ra.offset != rb.offset) return false;
                if (!ra.size) continue;
                // A branch's displacement is where code lies, not a constant of the source.
                if ((ra.is_relative || rb.is_relative) && ra.value.s != rb.value.s) return false;
                std::memset(ma + ra.offset, 0, ra.size / 8);
                std::memset(mb + rb.offset, 0, rb.size / 8);
                if (ra.value.s != rb.value.s) pairs->push_back({ra.value.s, rb.value.s});
            }
            if (std::memcmp(ma, mb, ia.length) != 0) return false;
        }
        off += ia.length;
    }
    return true;
}

}  // namespace graft::arch
