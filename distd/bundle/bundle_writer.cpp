#include "distd/bundle/bundle_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "manifest/error.h"
#include "manifest/fault.h"
#include "manifest/fs.h"

namespace distd::bundle {

namespace {

void remove_old_bundle(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> doomed;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == kIndexFile || (n.rfind("distd-bundle-", 0) == 0 && n.size() > 4 && n.substr(n.size() - 4) == ".tar") ||
        n.rfind("distd-answers-", 0) == 0)
      doomed.push_back(n);
  }
  ::closedir(d);
  for (auto& n : doomed) discard_file(dir + "/" + n);
  // An older bundle's key records (a stick is rewritten whole; the directory itself stays).
  std::string keys = dir + "/" + kKeysDir;
  struct stat st {};
  if (::lstat(keys.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  for (auto& n : list_dir(keys))
    if (n.size() > 5 && n.substr(n.size() - 5) == ".keys") discard_file(keys + "/" + n);
}

}  // namespace

uint64_t write_index(const std::string& dir, const Index& ix, const SecretKey& sk,
                     const std::vector<std::string>& key_records, const std::vector<StickFile>& extras,
                     std::vector<std::string>* written) {
  make_dirs(dir, 0755);
  remove_old_bundle(dir);
  // Before the index: a center that follows them can verify the index as soon as it is there.
  if (!key_records.empty()) make_dirs(dir + "/" + kKeysDir, 0755);
  for (size_t k = 0; k < key_records.size(); ++k) write_file_atomic(stick_key_record(dir, k + 2), key_records[k], 0644);
  std::string index_text = sign_text(render_index_body(ix), sk);
  write_file_atomic(dir + "/" + kIndexFile, index_text, 0644);
  for (auto& f : extras) {
    if (f.name.rfind("distd-", 0) != 0 || !is_safe_name(f.name)) continue;
    write_file_atomic(dir + "/" + f.name, f.data, 0644);
    written->push_back(f.name);
  }
  return index_text.size();
}

void BundleVolumeWriter::write_item(const Item& it, const std::string& source) {
  UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open", source, errno);
  for (const Piece& p : it.pieces) {
    open_volume(p.volume);
    vol_->begin(p.member, p.size);
    size_t id = next_id_++;
    pipe_.begin(id, UniqueFd(), std::string(), -1);
    uint64_t left = p.size, off = p.offset;
    while (left) {
      char* buf = pipe_.buffer();
      ssize_t n = ::pread(fd.get(), buf, std::min<uint64_t>(left, pipe_.buffer_size()), static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) {
        pipe_.commit(0);
        continue;
      }
      if (n <= 0) throw Error(Errc::mismatch, "'" + source + "' became shorter during the export", "export again");
      vol_->write(buf, static_cast<size_t>(n));
      pipe_.commit(static_cast<size_t>(n));
      left -= static_cast<uint64_t>(n);
      off += static_cast<uint64_t>(n);
      done_ += static_cast<uint64_t>(n);
      if (progress_) progress_(done_, total_);
    }
    pipe_.end();
    pending_.push_back(Pending{id, &p.digest, &source});
    if (pending_.size() > kMaxPending) check_oldest();
  }
}

void BundleVolumeWriter::finish() {
  check_all();
  open_volume(static_cast<uint32_t>(ix_.volume_bytes.size()));
  vol_->close();
}

void BundleVolumeWriter::check_oldest() {
  Pending pd = pending_.front();
  pending_.pop_front();
  if (pipe_.take(pd.id).digest != *pd.digest)
    throw Error(Errc::mismatch,
                "'" + *pd.source + "' in HQ's store does not match its digest (damaged on disk); the bundle is incomplete",
                "republish the channel to repair the store, then export again");
  fault_point("bundle_after_piece");
}

void BundleVolumeWriter::check_all() {
  while (!pending_.empty()) check_oldest();
}

void BundleVolumeWriter::open_volume(uint32_t v) {
  while (cur_ < v) {
    if (vol_) {
      check_all();
      vol_->close();
      fault_point("bundle_after_volume");
    }
    ++cur_;
    vol_ = std::make_unique<TarVolumeWriter>(dir_ + "/" + volume_file(cur_), ix_.created);
    vol_->add(kVolumeHeaderMember, volume_header_text(ix_.bundle_id, cur_));
  }
}

}  // namespace distd::bundle
