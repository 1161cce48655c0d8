// distd's version, from CMakeLists.txt's project(VERSION): one place for --version, the HTTP
// server's /status, the centers' status reports and HQ's distd_build_info metric.
#pragma once

namespace distd {

const char* distd_version();  // "0.1.0"

}  // namespace distd
