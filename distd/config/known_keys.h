// Every key distd reads from distd.toml (docs/config.md), so that a key it does not know — a
// typo, a key of another version — is refused with the closest known one instead of leaving a
// default silently in force. tests/test_config_keys.cpp checks this list against docs/config.md.
#pragma once

#include <string>
#include <vector>

#include <toml++/toml.h>

namespace distd {

// The dotted names of every known key ("hq.listen", "channel.name" for [[channel]] tables,
// "hq.database" for a table), for docs checks.
const std::vector<std::string>& known_config_keys();

// Throws Error{usage} "config FILE line N: unknown key 'hq.lisen' (did you mean 'hq.listen'?)"
// for the first key of `table` that is not known, or a known table given as a value.
void check_known_keys(const toml::table& table, const std::string& file);

// The candidate nearest to word by edit distance, when near enough to be a typo; "" otherwise.
// (Also for distctl's unknown commands.)
std::string nearest_word(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace distd
