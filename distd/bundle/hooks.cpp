#include "distd/bundle/hooks.h"

namespace distd::bundle {

std::vector<RequestHook>& request_hooks() {
  static std::vector<RequestHook> hooks;
  return hooks;
}

std::vector<ExportHook>& export_hooks() {
  static std::vector<ExportHook> hooks;
  return hooks;
}

std::vector<ImportHook>& import_hooks() {
  static std::vector<ImportHook> hooks;
  return hooks;
}

}  // namespace distd::bundle
