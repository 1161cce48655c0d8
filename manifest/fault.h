// Crash and fault injection for tests of real processes.
//
// fault_point(name) is called at interesting moments (before a rename, after a chunk is
// written, ...). With the environment variable DISTD_FAULT unset it does nothing. Otherwise:
//   DISTD_FAULT=kill:NAME:N     SIGKILL this process at the N-th hit of point NAME (1-based)
//   DISTD_FAULT=kill:*:N        SIGKILL at the N-th hit of any point
//   DISTD_FAULT=powercut:NAME:N a simulated power cut at the N-th hit of NAME (or of any point,
//   DISTD_FAULT=powercut:*:N    with *): the process first forgets every write of its own not yet
//                               made durable through the file seam, then SIGKILLs itself.
// kill -9 keeps the page cache, so a kill test cannot see a missing fsync; a power cut does.
// The power-cut model, what it forgets and what it does not model: manifest/powercut.h.
// Optional with powercut: DISTD_POWERCUT_DIR, a directory on the same file system for the hard
// links that keep replaced files until their rename is durable (default /tmp); DISTD_POWERCUT_LOG,
// a file the cut appends what it undid to (for tests and debugging).
// Tests use it to stop a sync at chosen points and check that nothing unverified is visible.
#pragma once

namespace distd {

void fault_point(const char* name);

}  // namespace distd
