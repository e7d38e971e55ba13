// Symbol files the user names (`graft load --symbols FILE`): an unstripped build of an object the
// process runs stripped, for the static functions a patch replaces. A file is used for an object
// only when it is provably that object's code: the same build-id, or else every allocated section
// (code, read-only data, data, dynamic symbols, unwind tables: everything the loader maps but the
// build-id note) identical in name, address, size and bytes to the running object's file. A
// rebuild from the same source with the same compiler and flags passes the second test even
// though its debug information, and so its build-id, differ (Debian's memcached rebuilt with
// dpkg-buildpackage does).
#pragma once
#include <string>
#include <vector>

#include "agent/process/symbols.hpp"

namespace graft {

// Adds files to the list tried for stripped objects, for the life of the process, after checking
// that each one opens as an x86-64 ELF file with a symbol table. Drops cached symbols of stripped
// objects so that the next lookup tries them. False, with *err naming the file and the reason,
// and nothing added, if any file fails.
bool user_symbols_add(const std::vector<std::string> &paths, std::string *err);

// Called with g_sym_cache_mutex held (symbols.cpp), for a stripped object `sf` whose debug
// directories gave nothing: the first named file that is provably its build, whose .symtab then
// replaces sf's symbols (sf->symbols_from says which and how it was proved). When files were named
// but none is, sf->symbols_refused says why for each, for the error a missing symbol gives.
void user_symbols_apply(SymbolFile *sf);

// What user_symbols_apply decided since the last call ("symbols of 'PATH' from 'FILE' (how it was
// proved)"), for the log and the answer to the load that caused it. Takes g_sym_cache_mutex.
std::vector<std::string> user_symbols_take_notes();

// Compares the allocated sections of two ELF files (descriptors the caller owns, read with
// pread). True when they are identical except for SHT_NOTE sections; *detail is then a phrase
// naming what was compared, else the first difference.
bool same_code_and_data(int fd_a, const std::string &name_a, int fd_b, const std::string &name_b,
                        std::string *detail);

}  // namespace graft
