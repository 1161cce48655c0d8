// Headers every suite parses: precompiled once (tests/CMakeLists.txt) and reused by all of them.
// Only system and library headers: a project header here would rebuild every suite when it changes.
#pragma once
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
