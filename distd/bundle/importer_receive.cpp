#include "distd/bundle/importer_impl.h"

namespace distd::bundle::import_detail {

bool Importer::should_receive(size_t i, size_t k) {
  Rx& x = rx_[i];
  if (x.s == Rx::pending && !needed(ix_.items[i])) {
    x.s = Rx::unneeded;
    res_.unneeded_items++;
    return false;
  }
  if (x.next != k) {  // an earlier piece never came
    x.s = Rx::broken;
    x.why = "an earlier part of it is missing";
    discard_file(rx_file(i));
    return false;
  }
  return true;
}

bool Importer::needed(const Item& it) const {
  if (is_manifest_kind(it.kind)) return true;
  if (it.kind == ItemKind::zpack)
    return std::any_of(it.packed.begin(), it.packed.end(), [&](auto& m) { return needs_content(it, m.digest); });
  return needs_content(it, it.kind == ItemKind::object ? it.digest : it.target);
}

bool Importer::needs_content(const Item& it, const Digest& d) const {
  auto f = needs_.find(d);
  if (f == needs_.end()) return false;
  for (auto& [c, idx] : f->second) {
    const PlanItem& p = c->items[idx];
    if (p.state == ItemState::installed || c->queued[idx]) continue;
    if (!is_delta_kind(it.kind)) return true;
    if (p.action == Action::delta && p.basis_digest == it.basis) return true;
  }
  return false;
}

// Reads volume v: checks its header, refuses what the signed index does not list for it, and
// takes each listed member; whatever of the volume's pieces did not arrive is marked broken.
void Importer::read_volume(uint32_t v) {
  cur_volume_ = v;
  UniqueFd fd;
  std::unique_ptr<archive, ArchiveFree> a;
  if (!open_volume(v, &fd, &a)) return;
  if (!read_volume_header(a.get(), v)) return;
  std::set<std::string> seen;
  std::string last = "its header";
  for (;;) {
    cur_bytes_ = static_cast<uint64_t>(archive_filter_bytes(a.get(), -1));
    progress();
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return volume_damaged(a.get(), v, "member '" + last + "'");
    const char* pn = archive_entry_pathname(e);
    std::string mname = pn ? pn : "";
    uint64_t size = 0;
    if (!accept_member(e, v, mname, seen, &size)) continue;
    last = mname;
    bool fatal = false;
    take_member(a.get(), v, mname, size, &fatal);
    if (fatal) return volume_damaged(a.get(), v, "the start of member '" + mname + "'");
  }
  settle();
  mark_rest(v, "volume " + std::to_string(v) + " lacks it");
}

// Marks broken, for reason, each piece of volume v that has not arrived and is still wanted.
void Importer::mark_rest(uint32_t v, const std::string& reason) {
  for (auto [i, k] : vol_pieces_[v]) {
    Rx& r = rx_[i];
    if (r.s == Rx::broken || r.s == Rx::unneeded || r.s == Rx::complete || r.next > k) continue;
    if (r.s == Rx::receiving) discard_file(rx_file(i));
    r.s = Rx::broken;
    r.why = reason;
  }
}

// Opens volume v as a tar stream (*fd, *a). Returns false, reported and its pieces marked, when
// the volume is missing, longer than signed, unreadable or not a tar file.
bool Importer::open_volume(uint32_t v, UniqueFd* fd, std::unique_ptr<archive, ArchiveFree>* a) {
  const std::string name = volume_file(v);
  const std::string path = dir_ + "/" + name;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    res_.missing_volumes.push_back(v);
    log("volume " + std::to_string(v) + " (" + name + ") is missing");
    mark_rest(v, "volume " + std::to_string(v) + " (" + name + ") is missing");
    return false;
  }
  const uint64_t signed_size = ix_.volume_bytes[v - 1];
  if (static_cast<uint64_t>(st.st_size) > signed_size) {
    res_.refused_volumes.push_back(v);
    problem(Errc::corrupt, "volume " + std::to_string(v) + " (" + name + ") is " + std::to_string(st.st_size) +
                               " bytes, more than the " + std::to_string(signed_size) +
                               " the signed index allows: refused (something was added to it)");
    mark_rest(v, "volume " + std::to_string(v) + " was refused");
    return false;
  }
  *fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!*fd) {
    res_.missing_volumes.push_back(v);
    log("volume " + std::to_string(v) + " (" + name + ") cannot be read: " + std::strerror(errno));
    mark_rest(v, "volume " + std::to_string(v) + " cannot be read");
    return false;
  }
  a->reset(archive_read_new());
  archive_read_support_format_tar(a->get());
  if (archive_read_open_fd(a->get(), fd->get(), 1 << 20) != ARCHIVE_OK) {
    res_.truncated_volumes.push_back(v);
    log("volume " + std::to_string(v) + " (" + name + ") is not a readable tar file");
    mark_rest(v, "volume " + std::to_string(v) + " is not a readable tar file");
    return false;
  }
  return true;
}

// Volume v ends early or is damaged after `after`: settles the member in flight, records the
// volume truncated and marks the pieces it did not deliver.
void Importer::volume_damaged(archive* a, uint32_t v, const std::string& after) {
  settle();
  res_.truncated_volumes.push_back(v);
  std::string msg = "volume " + std::to_string(v) + " (" + volume_file(v) + ") ends early or is damaged after " +
                    after + " (" + (archive_error_string(a) ? archive_error_string(a) : "?") + ")";
  log(msg);
  mark_rest(v, "volume " + std::to_string(v) + " is truncated or damaged");
}

// Reads the volume header member. Returns false, reported and the volume's pieces marked, when
// it is damaged or does not say this bundle, volume v.
bool Importer::read_volume_header(archive* a, uint32_t v) {
  archive_entry* e = nullptr;
  int r = archive_read_next_header(a, &e);
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
    volume_damaged(a, v, "its start");
    return false;
  }
  const char* pn = archive_entry_pathname(e);
  std::string text;
  if (pn && std::string(pn) == kVolumeHeaderMember && archive_entry_filetype(e) == AE_IFREG &&
      archive_entry_size(e) > 0 && archive_entry_size(e) < 512) {
    text.resize(static_cast<size_t>(archive_entry_size(e)));
    if (archive_read_data(a, text.data(), text.size()) != static_cast<la_ssize_t>(text.size())) {
      volume_damaged(a, v, "its start");
      return false;
    }
  }
  if (text != volume_header_text(ix_.bundle_id, v)) {
    std::string other;
    auto b = text.find("bundle ");
    if (b != std::string::npos) other = text.substr(b + 7, 32);
    res_.refused_volumes.push_back(v);
    problem(Errc::mismatch,
            "volume " + std::to_string(v) + " (" + volume_file(v) + ") " +
                (other.size() == 32 && other != ix_.bundle_id
                     ? "belongs to another bundle (" + other + "), not to bundle " + ix_.bundle_id
                     : "is not volume " + std::to_string(v) + " of bundle " + ix_.bundle_id) +
                ": refused");
    mark_rest(v, "volume " + std::to_string(v) + " was refused (from another bundle)");
    return false;
  }
  return true;
}

// Checks member e (named mname) of volume v against the signed index: a safe path, a regular
// file, listed for this volume, not seen before (recorded in seen), of the signed size (*size).
// Returns false when it is refused (reported; a member of the wrong size also breaks its item).
bool Importer::accept_member(archive_entry* e, uint32_t v, const std::string& mname, std::set<std::string>& seen,
                             uint64_t* size) {
  std::string where = "volume " + std::to_string(v) + ": entry " + quote_path(mname);
  auto ft = archive_entry_filetype(e);
  if (mname.empty() || mname[0] == '/' || !unsafe_path_reason(mname).empty()) {
    problem(Errc::unsafe_path, where + " has an unsafe path (" +
                                   (mname.empty() ? std::string("empty") : mname[0] == '/' ? "absolute" : unsafe_path_reason(mname)) +
                                   "): refused, nothing written");
    return false;
  }
  if (archive_entry_hardlink(e)) {
    problem(Errc::unsupported, where + " is a hard link: refused (bundles hold regular files only)");
    return false;
  }
  if (ft == AE_IFLNK || archive_entry_symlink(e)) {
    problem(Errc::unsupported, where + " is a symbolic link: refused (bundles hold regular files only)");
    return false;
  }
  if (ft != AE_IFREG) {
    problem(Errc::unsupported, where + " is not a regular file (a device, directory or FIFO): refused");
    return false;
  }
  auto m = member_.find(mname);
  if (m == member_.end() || ix_.items[m->second.first].pieces[m->second.second].volume != v) {
    problem(Errc::corrupt, where + " is not listed for this volume in the signed index: refused");
    return false;
  }
  if (!seen.insert(mname).second) {
    problem(Errc::corrupt, where + " appears twice: the duplicate is refused");
    return false;
  }
  *size = archive_entry_size_is_set(e) ? static_cast<uint64_t>(archive_entry_size(e)) : UINT64_MAX;
  const Piece& p = ix_.items[m->second.first].pieces[m->second.second];
  if (*size != p.size) {
    problem(Errc::mismatch, where + " says it has " + std::to_string(*size) + " bytes, the signed index says " +
                                std::to_string(p.size) + ": refused");
    Rx& x = rx_[m->second.first];
    if (x.s == Rx::receiving) discard_file(rx_file(m->second.first));
    if (x.s != Rx::unneeded) x.s = Rx::broken, x.why = "its member in volume " + std::to_string(v) + " was refused";
    return false;
  }
  return true;
}

// The member read before is checked against its signed digest once its hashing and writing
// are done (on the second thread), and passed on as the serial code did it.
void Importer::settle() {
  if (!flight_) return;
  Flight f = std::move(*flight_);
  flight_.reset();
  MemberPipe::Result r = pipe_->take(f.item);
  const Item& it = ix_.items[f.item];
  Rx& x = rx_[f.item];
  std::string file = rx_file(f.item);
  if (f.end == Flight::damaged || f.end == Flight::too_long) {
    discard_file(file);
    x.s = Rx::broken;
    x.why = f.end == Flight::damaged ? "volume " + std::to_string(f.volume) + " is truncated or damaged"
                                     : "a member is longer than signed";
    return;
  }
  res_.bytes_read += f.got;
  if (f.got != f.size || r.size != f.size || r.digest != it.pieces[0].digest) {
    discard_file(file);
    x.s = Rx::broken;
    x.why = "it did not match its signed digest";
    problem(Errc::mismatch, "volume " + std::to_string(f.volume) + ": entry '" + f.name +
                                "' does not match its signed digest (damaged or altered): refused, nothing installed from it");
    return;
  }
  x.next = 1;
  x.s = Rx::complete;
  on_complete(f.item);
}

void Importer::take_member(archive* a, uint32_t v, const std::string& name, uint64_t size, bool* fatal) {
  auto [i, k] = member_.at(name);
  const Item& it = ix_.items[i];
  if (it.pieces.size() > 1) {
    settle();
    return take_pieces(a, v, name, size, fatal);
  }
  Rx& x = rx_[i];
  if (x.s == Rx::broken || x.s == Rx::unneeded || x.s == Rx::complete) return;  // skipped by next_header
  if (!is_manifest_kind(it.kind) && !prepared_) {
    settle();
    prepare();
  }
  std::optional<Digest> target;
  if (!is_manifest_kind(it.kind)) target = it.kind == ItemKind::object ? it.digest : it.target;
  if (flight_ && target && flight_->target == target) settle();  // it may make this one unneeded
  if (!should_receive(i, k)) return;
  x.s = Rx::receiving;
  if (!pipe_) pipe_ = std::make_unique<MemberPipe>();
  // Created, hashed and written on the second thread (write-back started there too, so that the
  // batch's syncfs finds little left to do); nothing reaches a final path before settle()
  // verified it.
  pipe_->begin_new_file(i, rx_file(i));
  Flight f;
  f.item = i;
  f.volume = v;
  f.name = name;
  f.size = size;
  f.target = std::move(target);
  for (;;) {
    char* b = pipe_->buffer();
    la_ssize_t n = archive_read_data(a, b, pipe_->buffer_size());
    if (n < 0) {
      pipe_->commit(0);
      f.end = Flight::damaged;
      *fatal = true;
      break;
    }
    if (n == 0) {
      pipe_->commit(0);
      break;
    }
    if (f.got + static_cast<uint64_t>(n) > size) {  // libarchive keeps to the header's size; belt and braces
      pipe_->commit(0);
      f.end = Flight::too_long;
      break;
    }
    pipe_->commit(static_cast<size_t>(n));
    f.got += static_cast<uint64_t>(n);
    cur_bytes_ = static_cast<uint64_t>(archive_filter_bytes(a, -1));
    progress();
  }
  pipe_->end();
  settle();  // the member before this one: its bytes are hashed and written by now, or nearly
  flight_ = std::move(f);
  if (*fatal) settle();
}

void Importer::take_pieces(archive* a, uint32_t v, const std::string& name, uint64_t size, bool* fatal) {
  auto [i, k] = member_.at(name);
  const Item& it = ix_.items[i];
  const Piece& p = it.pieces[k];
  Rx& x = rx_[i];
  if (x.s == Rx::broken || x.s == Rx::unneeded || x.s == Rx::complete) return;  // skipped by next_header
  if (!is_manifest_kind(it.kind) && !prepared_) prepare();
  if (!should_receive(i, k)) return;
  std::string file = rx_file(i);
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (k == 0 ? O_TRUNC : O_APPEND), 0600));
  if (!fd) throw_errno("cannot create staged file", file, errno);
  if (k == 0 && it.pieces.size() > 1) whole_ = Hasher();
  x.s = Rx::receiving;
  Hasher h;
  std::vector<char>& buf = buf_;  // one buffer for all members (a fresh 1 MiB each costs a memset)
  uint64_t got = 0;
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0) {
      discard_file(file);
      x.s = Rx::broken;
      x.why = "volume " + std::to_string(v) + " is truncated or damaged";
      *fatal = true;
      return;
    }
    if (n == 0) break;
    if (got + static_cast<uint64_t>(n) > size) {  // libarchive keeps to the header's size; belt and braces
      discard_file(file);
      x.s = Rx::broken;
      x.why = "a member is longer than signed";
      return;
    }
    write_all(fd.get(), std::string_view(buf.data(), static_cast<size_t>(n)), file);
    h.update(buf.data(), static_cast<size_t>(n));
    if (it.pieces.size() > 1) whole_.update(buf.data(), static_cast<size_t>(n));
    got += static_cast<uint64_t>(n);
    cur_bytes_ = static_cast<uint64_t>(archive_filter_bytes(a, -1));
    progress();
  }
  res_.bytes_read += got;
  if (got != size || h.finish() != p.digest) {
    discard_file(file);
    x.s = Rx::broken;
    x.why = "it did not match its signed digest";
    problem(Errc::mismatch, "volume " + std::to_string(v) + ": entry '" + name +
                                "' does not match its signed digest (damaged or altered): refused, nothing installed from it");
    return;
  }
  // Start writing the verified bytes back now (asynchronously), so that the batch's syncfs finds
  // little left to do: the disk works while the next members are read and hashed.
  if (!is_manifest_kind(it.kind)) ::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  x.next = static_cast<uint32_t>(k + 1);
  if (x.next < it.pieces.size()) return;
  if (it.pieces.size() > 1 && whole_.finish() != it.digest) {
    discard_file(file);
    x.s = Rx::broken;
    x.why = "its parts do not add up to its signed digest";
    problem(Errc::mismatch, "item '" + it.pieces[0].member + "': its parts do not add up to the signed digest: refused");
    return;
  }
  fd = UniqueFd();
  x.s = Rx::complete;
  on_complete(i);
}

}  // namespace distd::bundle::import_detail
