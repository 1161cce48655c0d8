// The installer (distd/regional/installer.h), the only code that puts files at their final
// paths, on real files in a temporary directory: the bytes and modes it installs, how it replaces
// an old file, and what it refuses (a mismatch, a symbolic link in the way, a file where a
// directory belongs, a staging directory inside the tree, a path that could leave the tree).
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "distd/regional/installer.h"
#include "manifest/digest.h"
#include "manifest/error.h"
#include "tests/support/test_support.h"

using namespace distd;
using distd::test::exists;
using distd::test::read_file;
using distd::test::TempDir;
using distd::test::write_file;

namespace {

// A channel's tree and its staging directory side by side (one file system), and the installer.
struct Site {
  TempDir d{"installer"};
  std::string root = d / "tree";
  std::string staging = d / "staging";
  Installer inst{root, staging};

  // Writes bytes to the staged file `name`; returns its path.
  std::string stage(const std::string& name, const std::string& bytes) const {
    std::string p = inst.staged(name);
    write_file(p, bytes);
    return p;
  }
  std::string at(const std::string& rel) const { return root + "/" + rel; }
};

uint32_t mode_of(const std::string& path) {
  struct stat st {};
  BOOST_REQUIRE_MESSAGE(::lstat(path.c_str(), &st) == 0, "no file " << path);
  return st.st_mode & 07777;
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  BOOST_REQUIRE_MESSAGE(::lstat(path.c_str(), &st) == 0, "no file " << path);
  return st.st_ino;
}

// The distd::Error that fn throws; fails the test when it throws none.
template <class Fn>
Error error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  BOOST_FAIL("no distd::Error was thrown");
  return Error(Errc::internal, "unreachable");
}

}  // namespace

namespace distd {
std::ostream& operator<<(std::ostream& o, Errc c) { return o << errc_name(c); }
}  // namespace distd

BOOST_AUTO_TEST_CASE(constructor_creates_both_directories) {
  Site s;
  BOOST_TEST(std::filesystem::is_directory(s.root));
  BOOST_TEST(std::filesystem::is_directory(s.staging));
  BOOST_TEST(mode_of(s.staging) == 0700u);  // staged bytes are nobody else's business
  Installer slashes(s.root + "/", s.staging + "//");
  BOOST_TEST(slashes.root() == s.root);
  BOOST_TEST(slashes.staging() == s.staging);
  BOOST_TEST(slashes.staged("x.part") == s.staging + "/x.part");
  BOOST_TEST(slashes.final_path("a/b") == s.root + "/a/b");
}

BOOST_AUTO_TEST_CASE(constructor_refuses_staging_inside_the_tree) {
  TempDir d("installer");
  const std::string root = d / "tree";
  Error inside = error_of([&] { Installer(root, root + "/.staging"); });
  BOOST_TEST(inside.code() == Errc::usage);
  BOOST_TEST(inside.what() ==
             "the staging directory '" + root + "/.staging' lies inside the channel's tree '" + root + "'");
  Error same = error_of([&] { Installer(root, root + "/"); });
  BOOST_TEST(same.code() == Errc::usage);
  BOOST_TEST(!exists(root + "/.staging"));  // refused before anything was created
}

BOOST_AUTO_TEST_CASE(verified_staged_file_is_installed_with_its_mode) {
  Site s;
  const std::string bytes = "#!/bin/sh\necho hello\n";
  std::string sp = s.stage("run.part", bytes);
  BOOST_CHECK_NO_THROW(s.inst.verify(sp, digest_bytes(bytes), bytes.size(), "bin/tools/run.sh"));
  s.inst.install(sp, "bin/tools/run.sh", 0755);
  BOOST_TEST(read_file(s.at("bin/tools/run.sh")) == bytes);
  BOOST_TEST(mode_of(s.at("bin/tools/run.sh")) == 0755u);
  BOOST_TEST(std::filesystem::is_directory(s.at("bin/tools")));  // parents created
  BOOST_TEST(!exists(sp));                                        // renamed, not copied
  BOOST_TEST(test::file_digest_hex(s.at("bin/tools/run.sh")) == digest_hex(digest_bytes(bytes)));
}

// The new version replaces the old one in a single rename: the final path is the staged inode,
// and a reader that had the old file open still reads the old bytes whole.
BOOST_AUTO_TEST_CASE(install_replaces_the_old_file_in_one_rename) {
  Site s;
  write_file(s.at("course/notes.txt"), "version 1");
  std::ifstream reader(s.at("course/notes.txt"));
  std::string sp = s.stage("notes.part", "version 2, longer");
  ino_t staged = inode_of(sp);
  s.inst.verify(sp, digest_bytes("version 2, longer"), 17, "course/notes.txt");
  s.inst.install(sp, "course/notes.txt", 0640);
  BOOST_TEST(inode_of(s.at("course/notes.txt")) == staged);
  BOOST_TEST(read_file(s.at("course/notes.txt")) == "version 2, longer");
  BOOST_TEST(mode_of(s.at("course/notes.txt")) == 0644u);  // file_modes = "safe"
  std::string old((std::istreambuf_iterator<char>(reader)), std::istreambuf_iterator<char>());
  BOOST_TEST(old == "version 1");
}

// verify() is what stands between received bytes and the tree: a mismatch throws, so nothing
// is installed and the old file stays as it was.
BOOST_AUTO_TEST_CASE(mismatch_is_refused_and_the_old_file_stays) {
  Site s;
  write_file(s.at("doc.txt"), "old version");
  std::string sp = s.stage("doc.part", "new version");  // 11 bytes, not the signed ones

  const Digest signed_digest = digest_bytes("signed vers");  // also 11 bytes
  Error wrong = error_of([&] { s.inst.verify(sp, signed_digest, 11, "doc.txt"); });
  BOOST_TEST(wrong.code() == Errc::mismatch);
  BOOST_TEST(wrong.what() == "'doc.txt': the received bytes do not match the signed digest (got " +
                                 digest_hex(digest_bytes("new version")).substr(0, 16) + "..., signed " +
                                 digest_hex(signed_digest).substr(0, 16) + "...)");

  Error longer = error_of([&] { s.inst.verify(sp, digest_bytes("new version"), 10, "doc.txt"); });
  BOOST_TEST(longer.code() == Errc::mismatch);
  BOOST_TEST(longer.what() == "'doc.txt': received 11 bytes, the manifest signs 10");
  Error shorter = error_of([&] { s.inst.verify(sp, digest_bytes("new version"), 12, "doc.txt"); });
  BOOST_TEST(shorter.what() == "'doc.txt': received 11 bytes, the manifest signs 12");

  BOOST_TEST(read_file(s.at("doc.txt")) == "old version");
  BOOST_TEST(read_file(sp) == "new version");  // the caller discards it
}

BOOST_AUTO_TEST_CASE(verify_refuses_a_staged_symlink) {
  Site s;
  write_file(s.d / "elsewhere", "abc");
  std::string sp = s.inst.staged("link.part");
  BOOST_REQUIRE(::symlink((s.d / "elsewhere").c_str(), sp.c_str()) == 0);
  Error e = error_of([&] { s.inst.verify(sp, digest_bytes("abc"), 3, "f"); });
  BOOST_TEST(e.code() == Errc::io);  // not even opened (O_NOFOLLOW), let alone hashed
  BOOST_TEST(std::string(e.what()).find("cannot open staged file '" + sp + "'") == 0);
}

BOOST_AUTO_TEST_CASE(install_refuses_to_go_through_a_symlinked_directory) {
  Site s;
  std::string outside = s.d / "outside";
  std::filesystem::create_directories(outside);
  BOOST_REQUIRE(::symlink(outside.c_str(), s.at("linked").c_str()) == 0);
  std::string sp = s.stage("f.part", "payload");
  Error one = error_of([&] { s.inst.install(sp, "linked/f.txt", 0644); });
  BOOST_TEST(one.code() == Errc::unsafe_path);
  BOOST_TEST(one.what() == "'" + s.at("linked") + "' is a symbolic link; refusing to install through it");
  Error many = error_of([&] { s.inst.install_many({{sp, "linked/deeper/f.txt", 0644}}); });
  BOOST_TEST(many.code() == Errc::unsafe_path);
  BOOST_TEST(std::filesystem::is_empty(outside));  // nothing written through the link
  BOOST_TEST(read_file(sp) == "payload");
}

BOOST_AUTO_TEST_CASE(a_path_that_could_leave_the_tree_is_refused_by_every_method) {
  Site s;
  std::string sp = s.stage("f.part", "payload");
  write_file(s.d / "victim", "keep me");
  const Digest d = digest_bytes("payload");
  for (std::string rel : {"../victim", "a/../../victim", "/etc/passwd", "", "a//b", "./f"}) {
    BOOST_TEST_CONTEXT("rel '" << rel << "'") {
      Error e = error_of([&] { s.inst.install(sp, rel, 0644); });
      BOOST_TEST(e.code() == Errc::unsafe_path);
      BOOST_TEST(std::string(e.what()).find("installing into " + s.root + ": path ") == 0, e.what());
      BOOST_TEST(error_of([&] { s.inst.install_many({{sp, rel, 0644}}); }).code() == Errc::unsafe_path);
      BOOST_TEST(error_of([&] { s.inst.remove(rel); }).code() == Errc::unsafe_path);
      BOOST_TEST(error_of([&] { s.inst.stage_copy(rel, s.inst.staged("c.part"), d, 7); }).code() == Errc::unsafe_path);
      BOOST_TEST(error_of([&] { s.inst.final_matches(rel, d, 7); }).code() == Errc::unsafe_path);
    }
  }
  BOOST_TEST(read_file(s.d / "victim") == "keep me");
  BOOST_TEST(read_file(sp) == "payload");  // the staged file is still there to retry or clean
}

BOOST_AUTO_TEST_CASE(install_refuses_a_file_where_a_directory_belongs) {
  Site s;
  write_file(s.at("course"), "a file, not a directory");
  std::string sp = s.stage("x.part", "x");
  Error e = error_of([&] { s.inst.install(sp, "course/x", 0644); });
  BOOST_TEST(e.code() == Errc::io);
  BOOST_TEST(e.what() == "'" + s.at("course") + "' is a file where the new version has a directory");
  BOOST_TEST(read_file(s.at("course")) == "a file, not a directory");
  BOOST_TEST(exists(sp));
}

BOOST_AUTO_TEST_CASE(install_many_puts_every_file_in_place_with_its_mode) {
  Site s;
  write_file(s.at("three"), "old three");
  std::vector<Installer::Staged> files = {{s.stage("1.part", "one"), "a/one", 0644},
                                          {s.stage("2.part", "two"), "a/b/two", 0600},
                                          {s.stage("3.part", "three"), "three", 0755}};
  s.inst.install_many(files);
  BOOST_TEST(read_file(s.at("a/one")) == "one");
  BOOST_TEST(read_file(s.at("a/b/two")) == "two");
  BOOST_TEST(read_file(s.at("three")) == "three");
  BOOST_TEST(mode_of(s.at("a/one")) == 0644u);
  BOOST_TEST(mode_of(s.at("a/b/two")) == 0644u);  // file_modes = "safe"
  BOOST_TEST(mode_of(s.at("three")) == 0755u);
  for (const auto& f : files) BOOST_TEST(!exists(f.staged));
  BOOST_CHECK_NO_THROW(s.inst.install_many({}));
}

// HQ's modes do not arrive world-writable or setuid ([regional] file_modes, docs/config.md).
BOOST_AUTO_TEST_CASE(installed_modes_follow_the_file_modes_policy) {
  struct Case {
    uint32_t signed_mode, safe, as_signed;
  };
  for (Case c : {Case{0644, 0644, 0644}, Case{0666, 0644, 0666}, Case{0600, 0644, 0600}, Case{0777, 0755, 0777},
                 Case{0700, 0755, 0700}, Case{04755, 0755, 0755}, Case{07777, 0755, 0777}, Case{0, 0644, 0}}) {
    BOOST_TEST(installed_mode(c.signed_mode, FileModes::safe) == c.safe);
    BOOST_TEST(installed_mode(c.signed_mode, FileModes::as_signed) == c.as_signed);
  }
  Site s;
  std::string sp = s.stage("w.part", "w");
  s.inst.install(sp, "world-writable", 0666);
  BOOST_TEST(mode_of(s.at("world-writable")) == 0644u);
  Installer keep(s.root, s.staging, FileModes::as_signed);
  std::string sp2 = s.stage("x.part", "x");
  keep.install_many({{sp2, "setuid", 04750}});
  BOOST_TEST(mode_of(s.at("setuid")) == 0750u);
}

BOOST_AUTO_TEST_CASE(stage_copy_keeps_only_a_verified_copy) {
  Site s;
  const std::string content = "course content";
  write_file(s.at("src.bin"), content);
  std::string sp = s.inst.staged("c0.copy");
  BOOST_TEST(s.inst.stage_copy("src.bin", sp, digest_bytes(content), content.size()));
  BOOST_TEST(read_file(sp) == content);
  BOOST_TEST(read_file(s.at("src.bin")) == content);  // the source stays
  // Not the signed bytes, longer or shorter than signed: false, and no staged file is left.
  std::string bad = s.inst.staged("c1.copy");
  BOOST_TEST(!s.inst.stage_copy("src.bin", bad, digest_bytes("other content!"), content.size(), false));
  BOOST_TEST(!exists(bad));
  BOOST_TEST(!s.inst.stage_copy("src.bin", bad, digest_bytes("course"), 6));
  BOOST_TEST(!exists(bad));
  BOOST_TEST(!s.inst.stage_copy("src.bin", bad, digest_bytes(content + "!"), content.size() + 1));
  BOOST_TEST(!exists(bad));
  // A missing source, or a symbolic link as the source: false.
  BOOST_TEST(!s.inst.stage_copy("gone.bin", bad, digest_bytes(content), content.size()));
  BOOST_TEST(!exists(bad));
  BOOST_REQUIRE(::symlink(s.at("src.bin").c_str(), s.at("link.bin").c_str()) == 0);
  BOOST_TEST(!s.inst.stage_copy("link.bin", bad, digest_bytes(content), content.size()));
  BOOST_TEST(!exists(bad));
}

BOOST_AUTO_TEST_CASE(final_matches_only_the_signed_bytes_in_a_regular_file) {
  Site s;
  write_file(s.at("f"), "abc");
  BOOST_TEST(s.inst.final_matches("f", digest_bytes("abc"), 3));
  BOOST_TEST(!s.inst.final_matches("f", digest_bytes("abd"), 3));
  BOOST_TEST(!s.inst.final_matches("f", digest_bytes("abc"), 4));
  BOOST_TEST(!s.inst.final_matches("missing", digest_bytes("abc"), 3));
  BOOST_REQUIRE(::symlink(s.at("f").c_str(), s.at("l").c_str()) == 0);
  BOOST_TEST(!s.inst.final_matches("l", digest_bytes("abc"), 3));
  std::filesystem::create_directories(s.at("dir"));
  BOOST_TEST(!s.inst.final_matches("dir", digest_bytes(""), 0));
}

BOOST_AUTO_TEST_CASE(remove_deletes_the_file_and_the_directories_it_emptied) {
  Site s;
  write_file(s.at("a/b/c.txt"), "c");
  write_file(s.at("a/keep.txt"), "keep");
  s.inst.remove("a/b/c.txt");
  BOOST_TEST(!exists(s.at("a/b/c.txt")));
  BOOST_TEST(!exists(s.at("a/b")));
  BOOST_TEST(read_file(s.at("a/keep.txt")) == "keep");
  s.inst.remove("a/keep.txt");
  BOOST_TEST(!exists(s.at("a")));
  BOOST_TEST(std::filesystem::is_directory(s.root));  // the tree itself stays
  BOOST_CHECK_NO_THROW(s.inst.remove("never-there.txt"));
}

// A directory link planted in the tree (deep or at its top) pointing outside it: no method
// reaches through it. Before manifest/beneath.h, remove() deleted the file outside the tree.
BOOST_AUTO_TEST_CASE(no_method_reaches_through_a_directory_link_in_the_tree) {
  Site s;
  std::string outside = s.d / "outside";
  write_file(outside + "/victim.txt", "not yours");
  write_file(s.at("a/real.txt"), "real");
  BOOST_REQUIRE(::symlink(outside.c_str(), s.at("a/linked").c_str()) == 0);
  BOOST_REQUIRE(::symlink(outside.c_str(), s.at("top").c_str()) == 0);
  Digest d = digest_bytes("not yours");
  for (std::string rel : {"a/linked/victim.txt", "top/victim.txt"}) {
    BOOST_TEST_CONTEXT(rel) {
      Error e = error_of([&] { s.inst.remove(rel); });
      BOOST_TEST(e.code() == Errc::unsafe_path);
      BOOST_TEST(std::string(e.what()).find("is a symbolic link; refusing to delete through it") != std::string::npos,
                 e.what());
      BOOST_TEST(!s.inst.final_matches(rel, d, 9));  // not read through the link
      BOOST_TEST(!s.inst.stage_copy(rel, s.inst.staged("copy"), d, 9));
      BOOST_TEST(!s.inst.open_in_tree(rel));
    }
  }
  BOOST_TEST(read_file(outside + "/victim.txt") == "not yours");
  BOOST_TEST(read_file(s.at("a/real.txt")) == "real");
  // The last component as a link: remove() takes the link away, never its target.
  BOOST_REQUIRE(::symlink((outside + "/victim.txt").c_str(), s.at("a/file-link").c_str()) == 0);
  BOOST_TEST(!s.inst.open_in_tree("a/file-link"));
  s.inst.remove("a/file-link");
  BOOST_TEST(!std::filesystem::is_symlink(s.at("a/file-link")));
  BOOST_TEST(read_file(outside + "/victim.txt") == "not yours");
  // A link swapped in for a directory after the file was installed: the same refusal.
  write_file(s.at("b/f.txt"), "f");
  std::filesystem::remove_all(s.at("b"));
  BOOST_REQUIRE(::symlink(outside.c_str(), s.at("b").c_str()) == 0);
  BOOST_TEST(error_of([&] { s.inst.remove("b/victim.txt"); }).code() == Errc::unsafe_path);
  BOOST_TEST(exists(outside + "/victim.txt"));
}

BOOST_AUTO_TEST_CASE(clean_staging_keeps_only_the_named_files) {
  Site s;
  s.stage("aa.part", "1");
  s.stage("bb.part", "2");
  s.stage("c3.copy", "3");
  s.inst.clean_staging({"bb.part", "not-there"});
  BOOST_TEST(!exists(s.inst.staged("aa.part")));
  BOOST_TEST(read_file(s.inst.staged("bb.part")) == "2");
  BOOST_TEST(!exists(s.inst.staged("c3.copy")));
  s.inst.clean_staging({});
  BOOST_TEST(std::filesystem::is_empty(s.staging));
}
