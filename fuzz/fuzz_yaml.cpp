// libFuzzer target: YAML task configs and templates as m4forge reads them
// (parse_yaml: yaml-cpp, then the core-schema typing and the expansion bounds).
// Only m4::Error may leave it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/yaml_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json j = m4::parse_yaml(text, "fuzz.yaml");
    if (j.dump().size() == 0xdeadbeef) return 1;  // keeps the result observable
  } catch (const m4::Error&) {
  }
  try {
    m4::parse_yaml_value(text, "fuzz override");
  } catch (const m4::Error&) {
  }
  return 0;
}
