// Crash and fault injection for tests of real processes.
//
// fault_point(name) is called at interesting moments (before a rename, after a chunk is
// written, ...). With the environment variable DISTD_FAULT unset it does nothing. Otherwise:
//   DISTD_FAULT=kill:NAME:N     SIGKILL this process at the N-th hit of point NAME (1-based)
//   DISTD_FAULT=kill:*:N        SIGKILL at the N-th hit of any point
// Tests use it to stop a sync at chosen points and check that nothing unverified is visible.
#pragma once

namespace distd {

void fault_point(const char* name);

}  // namespace distd
