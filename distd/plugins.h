// The composition of the engines: which plug into which. The center's sync (distd/regional/)
// defines extension points and names no engine above it; this file wires the course engine
// (distd/course/) and the database replica (distd/replica/) into them. The forum outbox will plug
// in here too.
//
//   after-install steps   course::after_install (rebuild the .mbz of each course that arrived)
//   priority providers    files the replica references but the disk lacks; the published
//                         courses' filedir files (both for the moodledata channel)
//   daemon health checks  the replica's health (IO/SQL threads, lag, the profile's findings)
//   report sections       "replica" (health and lag) and "outbox" (posts waiting for HQ) in the
//                         status report a center sends HQ (regional/status_report.h)
#pragma once

namespace distd {

// Registers every plug-in once (later calls do nothing). Both mains call it first thing.
// Thread-safety: safe to call from any thread; the first call completes before any returns.
void register_plugins();

}  // namespace distd
