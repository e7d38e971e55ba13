#include "diff/object_dwarf.hpp"

#include <elfutils/libdwfl.h>

namespace graft::diff {

bool for_each_unit(const std::string &path, const std::function<void(Dwarf_Die *)> &f) {
    static char *debuginfo_path = nullptr;
    Dwfl_Callbacks cb{};
    cb.find_debuginfo = dwfl_standard_find_debuginfo;
    cb.section_address = dwfl_offline_section_address;
    cb.debuginfo_path = &debuginfo_path;
    Dwfl *dwfl = dwfl_begin(&cb);
    if (!dwfl) return false;
    Dwfl_Module *m = dwfl_report_offline(dwfl, "", path.c_str(), -1);
    dwfl_report_end(dwfl, nullptr, nullptr);
    Dwarf_Addr bias = 0;
    Dwarf *dw = m ? dwfl_module_getdwarf(m, &bias) : nullptr;
    Dwarf_Off off = 0, next = 0;
    size_t hsize = 0;
    while (dw && dwarf_nextcu(dw, off, &next, &hsize, nullptr, nullptr, nullptr) == 0) {
        Dwarf_Die cu;
        if (dwarf_offdie(dw, off + hsize, &cu)) f(&cu);
        off = next;
    }
    dwfl_end(dwfl);
    return dw != nullptr;
}

}  // namespace graft::diff
