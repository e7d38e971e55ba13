// User story: a hostile or broken ELF file never harms the target (issue 12). `ld.so` loads files
// whose section headers are malformed (it reads only the program headers), and the agent reads
// every object the process loads and every patch file: a `.dynamic` section header with
// sh_entsize = 0 (once a division by zero: SIGFPE) and a build-id note with n_descsz = 0xfffffffd
// (once a 32-bit wrap of its padding: a read far past the note, SIGBUS) must each be refused as a
// patch with one `graft: <what>: <why>` line, and be ignored as a plugin, the target alive and
// unchanged; a good patch loads afterwards.
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

using Bytes = std::string;

Bytes read_all(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_all(const std::string &path, const Bytes &b) {
    std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
    chmod(path.c_str(), 0755);
}

struct Section {
    size_t header;  // file offset of its section header
    Elf64_Shdr sh;
};

std::vector<Section> sections(const Bytes &b) {
    std::vector<Section> v;
    Elf64_Ehdr eh;
    if (b.size() < sizeof eh) return v;
    std::memcpy(&eh, b.data(), sizeof eh);
    for (size_t i = 0; i < eh.e_shnum; i++) {
        Section s{eh.e_shoff + i * sizeof(Elf64_Shdr), {}};
        if (s.header + sizeof s.sh > b.size()) break;
        std::memcpy(&s.sh, b.data() + s.header, sizeof s.sh);
        v.push_back(s);
    }
    return v;
}

// The two corruptions of the issue, made on a copy of a good file by parsing its headers.
enum class Corruption { kDynamicEntsize0, kBuildIdDescszWraps };

const char *name_of(Corruption c) {
    return c == Corruption::kDynamicEntsize0 ? "dynamic_entsize0" : "note_descsz";
}

bool corrupt(Bytes &b, Corruption c) {
    for (auto &s : sections(b)) {
        if (c == Corruption::kDynamicEntsize0 && s.sh.sh_type == SHT_DYNAMIC) {
            const uint64_t zero = 0;
            std::memcpy(&b[s.header + offsetof(Elf64_Shdr, sh_entsize)], &zero, sizeof zero);
            return true;
        }
        if (c != Corruption::kBuildIdDescszWraps || s.sh.sh_type != SHT_NOTE) continue;
        for (size_t off = s.sh.sh_offset; off + sizeof(Elf64_Nhdr) <= s.sh.sh_offset + s.sh.sh_size;) {
            Elf64_Nhdr nh;
            std::memcpy(&nh, b.data() + off, sizeof nh);
            if (nh.n_type == NT_GNU_BUILD_ID && std::memcmp(b.data() + off + sizeof nh, "GNU", 4) == 0) {
                const uint32_t wraps = 0xfffffffdu;
                std::memcpy(&b[off + offsetof(Elf64_Nhdr, n_descsz)], &wraps, sizeof wraps);
                return true;
            }
            off += sizeof nh + ((nh.n_namesz + 3) & ~3u) + ((nh.n_descsz + 3) & ~3u);
        }
    }
    return false;
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/graft-malformed-elf-XXXXXX";
        path = mkdtemp(tmpl) ? tmpl : "/tmp";
    }
    ~TempDir() {
        if (path != "/tmp") run({"rm", "-rf", path});
    }
};

struct MalformedTarget {
    SigpipeBlocked no_sigpipe;
    Target t{prog_path("malformed_elf"), {}, {"GRAFT_SIGNAL_TIMEOUT=600"}};
    std::string pid;
    bool ok = false;
    MalformedTarget() {
        if (t.wait_line("ready") < 0 || !t.wait_agent()) return;
        pid = std::to_string(t.pid());
        ok = true;
    }
    // The program's answer to a command: the first line after it starting with one of `prefixes`.
    std::string ask_line(const std::string &cmd, const std::vector<std::string> &prefixes) {
        size_t from = t.line_count();
        t.send(cmd + "\n");
        if (!t.wait_lines(
                [&](const std::vector<std::string> &ls) {
                    for (size_t i = from; i < ls.size(); i++)
                        for (auto &p : prefixes)
                            if (ls[i].rfind(p, 0) == 0) return true;
                    return false;
                },
                30))
            return "<no answer to " + cmd + ">";
        auto ls = t.lines();
        for (size_t i = from; i < ls.size(); i++)
            for (auto &p : prefixes)
                if (ls[i].rfind(p, 0) == 0) return ls[i];
        return "<no answer to " + cmd + ">";
    }
    std::string tick() { return ask_line("tick", {"value "}); }
    // Alive: it answers; else report how it died.
    void expect_alive(const std::string &when) {
        std::string v = tick();
        if (v.rfind("value ", 0) != 0) {
            int st = t.wait_exit(5);
            FAIL() << "the target died " << when << " (wait status " << st << ", above 128: killed by signal "
                   << st - 128 << ")\n"
                   << t.all_output();
        }
    }
    void good_load_works() {
        Cmd load = graft_cmd({"load", pid, patch_path("malformed_elf_fix"), "--timeout", "60"});
        ASSERT_EQ(load.rc, 0) << load.out << load.err;
        EXPECT_EQ(tick(), "value 2");
        Cmd dis = graft_cmd({"disable", pid, "malformed_elf_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << dis.err;
        EXPECT_EQ(tick(), "value 1");
        Cmd unl = graft_cmd({"unload", pid, "malformed_elf_fix"});
        EXPECT_EQ(unl.rc, 0) << unl.err;
    }
    void quit() {
        t.send("quit\n");
        EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
    }
};

}  // namespace

TEST(MalformedElf, PatchFilesAreRefusedWithOneLine) {
    TempDir dir;
    const Bytes good = read_all(patch_path("malformed_elf_fix"));
    ASSERT_GT(good.size(), sizeof(Elf64_Ehdr));
    for (Corruption c : {Corruption::kDynamicEntsize0, Corruption::kBuildIdDescszWraps}) {
        SCOPED_TRACE(name_of(c));
        MalformedTarget m;
        ASSERT_TRUE(m.ok) << m.t.all_output();
        ASSERT_EQ(m.tick(), "value 1");
        Bytes bad = good;
        ASSERT_TRUE(corrupt(bad, c));
        const std::string file = dir.path + "/" + name_of(c) + ".so";
        write_all(file, bad);
        Cmd load = graft_cmd({"load", m.pid, file, "--timeout", "60"});
        EXPECT_NE(load.rc, 0) << load.out << load.err;
        auto lines = split_lines(load.err);
        ASSERT_EQ(lines.size(), 1u) << "stderr: " << load.err;
        EXPECT_EQ(lines[0].rfind("graft: ", 0), 0u) << lines[0];
        EXPECT_NE(lines[0].find(": ", 7), std::string::npos) << "no '<what>: <why>' in: " << lines[0];
        EXPECT_NE(lines[0].find("malformed"), std::string::npos) << lines[0];
        EXPECT_NE(lines[0].find(std::string(name_of(c)) + ".so"), std::string::npos) << lines[0];
        ASSERT_NO_FATAL_FAILURE(m.expect_alive("after the malformed patch"));
        EXPECT_EQ(m.tick(), "value 1");
        auto st = status(m.t.pid());
        EXPECT_TRUE(st["patches"].empty()) << st.dump();
        ASSERT_NO_FATAL_FAILURE(m.good_load_works());
        m.quit();
    }
}

TEST(MalformedElf, MalformedPluginsDoNotHarmTheTarget) {
    TempDir dir;
    const Bytes good = read_all(prog_path("malformed_elf_plugin.so"));
    ASSERT_GT(good.size(), sizeof(Elf64_Ehdr));
    MalformedTarget m;
    ASSERT_TRUE(m.ok) << m.t.all_output();
    for (Corruption c : {Corruption::kDynamicEntsize0, Corruption::kBuildIdDescszWraps}) {
        SCOPED_TRACE(name_of(c));
        Bytes bad = good;
        ASSERT_TRUE(corrupt(bad, c));
        const std::string file = dir.path + "/plugin_" + name_of(c) + ".so";
        write_all(file, bad);
        // The loader takes it (it reads no section header); the agent reads it as it comes.
        EXPECT_EQ(m.ask_line("open " + file, {"plugin ", "dlopen failed"}), "plugin 42");
        ASSERT_NO_FATAL_FAILURE(m.expect_alive("after dlopen of the malformed plugin"));
        EXPECT_EQ(m.tick(), "value 1");
    }
    // A patch still loads, its transition checking stacks over every mapped object.
    ASSERT_NO_FATAL_FAILURE(m.good_load_works());
    m.quit();
}
